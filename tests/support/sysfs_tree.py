"""Build sysfs trees shaped like the kernel's, for tests and for the bundled samples.

Device directories live under `devices/pci0000:00/<controller>/usbN/...` and
`bus/usb/devices/<name>` are relative symlinks to them, as on a real machine, so the code
under test follows the same links it follows on a node. Attribute files end in a newline
like the kernel's. The descriptor values come from dumps of real sticks (field notes,
section 2).

Run as a script to (re)write the samples under `examples/sysfs/`:
    python tests/support/sysfs_tree.py examples/sysfs
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

CONTROLLER = os.path.join("devices", "pci0000:00", "0000:00:14.0")

IDLE_NCS2 = {
    "idVendor": "03e7", "idProduct": "2485", "bcdDevice": "0001",
    "manufacturer": "Movidius Ltd.", "product": "Movidius MyriadX", "serial": "03e72485",
    "bDeviceClass": "00", "version": " 2.00", "speed": "480", "bMaxPower": "500mA",
}
IDLE_NCS1 = {
    "idVendor": "03e7", "idProduct": "2150", "bcdDevice": "0001",
    "manufacturer": "Movidius Ltd.", "product": "Movidius MA2X5X", "serial": "03e72150",
    "bDeviceClass": "00", "version": " 2.00", "speed": "480", "bMaxPower": "500mA",
}
KEYBOARD = {
    "idVendor": "046d", "idProduct": "c52b", "bcdDevice": "1211",
    "manufacturer": "Logitech", "product": "USB Receiver",
    "bDeviceClass": "00", "version": " 2.00", "speed": "12", "bMaxPower": "98mA",
}
MX_ID = "14442C10D13EABCE00"


def booted(serial: str = MX_ID, *, speed: str = "5000", product: str = "VSC Loopback Device",
           manufacturer: str = "Intel Corporation") -> dict[str, str]:
    """Attributes of a Myriad after firmware boot (03e7:f63b)."""
    return {
        "idVendor": "03e7", "idProduct": "f63b", "bcdDevice": "0001",
        "manufacturer": manufacturer, "product": product, "serial": serial,
        "bDeviceClass": "00", "version": " 3.00" if speed == "5000" else " 2.00",
        "speed": speed, "bMaxPower": "0mA",
    }


class SysfsTree:
    """A writable fake sysfs rooted at `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bus_dir = root / "bus" / "usb" / "devices"
        self.bus_dir.mkdir(parents=True, exist_ok=True)
        self._devnum: dict[int, int] = {}

    def path(self, name: str) -> Path:
        """The device directory behind `bus/usb/devices/<name>`."""
        return (self.bus_dir / name).resolve()

    def _link(self, name: str, target: Path) -> None:
        link = self.bus_dir / name
        link.symlink_to(os.path.relpath(target, self.bus_dir))

    def _write(self, directory: Path, attrs: Mapping[str, str | bytes]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for key, value in attrs.items():
            data = value if isinstance(value, bytes) else (value + "\n").encode()
            (directory / key).write_bytes(data)

    def root_hub(self, bus: int, *, speed: int, ports: int) -> Path:
        """A root hub `usbN` with its interface and port directories."""
        hub = self.root / CONTROLLER / f"usb{bus}"
        self._devnum[bus] = 1
        self._write(hub, {
            "idVendor": "1d6b", "idProduct": "0003" if speed >= 5000 else "0002",
            "busnum": str(bus), "devnum": "1", "devpath": "0", "speed": str(speed),
            "bDeviceClass": "09", "product": "xHCI Host Controller",
        })
        self._interface_with_ports(hub, f"{bus}-0:1.0", f"usb{bus}", ports)
        self._link(f"usb{bus}", hub)
        return hub

    def _interface_with_ports(self, device: Path, interface: str, stem: str,
                              ports: int) -> None:
        self._write(device / interface, {"bInterfaceClass": "09"})
        for number in range(1, ports + 1):
            (device / interface / f"{stem}-port{number}").mkdir()
        self._link(interface, device / interface)

    def device(self, name: str, attrs: Mapping[str, str | bytes], *,
               interface_class: str = "ff", hub_ports: int = 0) -> Path:
        """A USB device at sysfs name `name` (`1-4.2`), under its parent hub."""
        bus_text, _, chain = name.partition("-")
        bus = int(bus_text)
        parent_name = name.rpartition(".")[0] if "." in chain else f"usb{bus}"
        directory = self.path(parent_name) / name
        self._devnum[bus] = self._devnum.get(bus, 1) + 1
        base: dict[str, str | bytes] = {
            "busnum": str(bus), "devnum": str(self._devnum[bus]), "devpath": chain,
        }
        self._write(directory, {**base, **attrs})
        self._link(name, directory)
        if hub_ports:
            self._interface_with_ports(directory, f"{name}:1.0", name, hub_ports)
        else:
            self._write(directory / f"{name}:1.0", {"bInterfaceClass": interface_class})
            self._link(f"{name}:1.0", directory / f"{name}:1.0")
        return directory

    def hub(self, name: str, *, speed: int, ports: int = 4) -> Path:
        return self.device(name, {
            "idVendor": "05e3", "idProduct": "0626" if speed >= 5000 else "0610",
            "bDeviceClass": "09", "speed": str(speed), "product": "USB Hub",
        }, hub_ports=ports)

    def port_dir(self, hub: str, number: int) -> Path:
        """The directory of port `number` of hub `hub` (`usb2` or `1-4`)."""
        if hub.startswith("usb"):
            return self.path(hub) / f"{hub[3:]}-0:1.0" / f"{hub}-port{number}"
        return self.path(hub) / f"{hub}:1.0" / f"{hub}-port{number}"

    def peer(self, a: tuple[str, int], b: tuple[str, int]) -> None:
        """Link two ports as the USB 2 and SuperSpeed halves of one connector."""
        first, second = self.port_dir(*a), self.port_dir(*b)
        (first / "peer").symlink_to(os.path.relpath(second, first))
        (second / "peer").symlink_to(os.path.relpath(first, second))

    def remove(self, name: str) -> None:
        directory = self.path(name)
        for entry in list(self.bus_dir.iterdir()):
            if entry.name == name or entry.name.startswith(f"{name}:") \
                    or entry.name.startswith(f"{name}."):
                entry.unlink()
        shutil.rmtree(directory)


def xhci(root: Path, ports: int = 4) -> SysfsTree:
    """A tree with one xHCI controller: USB 2 bus 1, SuperSpeed bus 2, twinned ports.

    As on many laptops the twins are not numbered alike: USB 2 port N pairs with
    SuperSpeed port N-1 (port 4 with port 3, as in the field notes' example).
    """
    tree = SysfsTree(root)
    tree.root_hub(1, speed=480, ports=ports + 1)
    tree.root_hub(2, speed=5000, ports=ports)
    for number in range(1, ports + 1):
        tree.peer(("usb1", number + 1), ("usb2", number))
    return tree


def one_idle_stick(root: Path) -> None:
    tree = xhci(root)
    tree.device("1-2", IDLE_NCS2)


def two_sticks_on_hub(root: Path) -> None:
    tree = xhci(root)
    tree.device("1-1", KEYBOARD, interface_class="03")
    tree.hub("1-4", speed=480)
    tree.device("1-4.3", IDLE_NCS2)
    tree.device("1-4.1", IDLE_NCS2)


def booted_on_usb3(root: Path) -> None:
    """An idle stick in USB 2 port 5 and a booted one that moved from port 4 to bus 2."""
    tree = xhci(root)
    tree.device("1-5", IDLE_NCS2)
    tree.device("2-3", booted())


SAMPLES: dict[str, Callable[[Path], None]] = {
    "one-idle-stick": one_idle_stick,
    "two-sticks-on-hub": two_sticks_on_hub,
    "booted-on-usb3": booted_on_usb3,
}


def write_samples(target: Path) -> None:
    for name, build in SAMPLES.items():
        shutil.rmtree(target / name, ignore_errors=True)
        build(target / name)


if __name__ == "__main__":
    write_samples(Path(sys.argv[1]))
