"""A umockdev test bed that lets tests plug fake USB devices into real libudev.

The labeller under test is a separate process: it watches uevents with a pyudev
``Monitor.from_netlink(context, source='kernel')`` and reads sysfs files below its
``--sysfs-root``. This module builds a realistic USB sysfs tree (an xHCI controller, a
USB 2 and a USB 3 root hub with their ``peer`` port links, hubs, devices and their
first interface) and sends uevents to every process started with :func:`child_env`.

Design, and the traps that shaped it (umockdev 0.17.16, Debian 12):

NB: ``UMockdev.Testbed.uevent()`` only works in a process that runs under the
preload library: the sender looks the device up with libudev, which otherwise reads
the real ``/sys`` and only prints "No such device" to stderr. The same goes for the
parent check of ``add_device()``. The preload must be in place when the process
starts (``LD_PRELOAD``), so the real ``UMockdev.Testbed`` lives in a small agent
process (this very file run as a script) and pytest stays a plain process; the
:class:`Testbed` here forwards calls to it over JSON lines on a pipe.

NB: the agent runs Debian's ``/usr/bin/python3`` with Debian's ``python3-gi``, so the
project's virtualenv needs no ``gi``: nothing to compile, no PyGObject pin.

NB: ``add_device()`` announces ``add`` to every listener by itself; calling
``uevent(dev, 'add')`` afterwards delivers a second ``add`` (another SEQNUM). A real
kernel repeats nothing, but a consumer must still treat ``add`` as idempotent.

NB: ``remove`` must be sent *before* the directory is deleted: umockdev cannot
announce a device it cannot find. So removal goes the kernel's way (device_del drops
the attribute files, announces ``remove``, then deletes the directory): a child that
reads ``idVendor`` on ``remove`` finds nothing, though the bare directory may last a
few milliseconds more. Consumers must use the event's own properties.

NB: umockdev's ``remove_device()`` deletes the device's directory tree but only the
``bus/usb/devices`` link of the device itself; children are removed first here so
that no dangling link is left behind.

NB: each listening socket is ``$UMOCKDEV_DIR/event<fd>``, named after the listener's
file descriptor number, and binding unlinks any previous one: two preloaded processes
whose monitor sockets get the same fd number steal each other's events without a
word. Run one listening process per test bed (or shift its fd numbers).

NB: events reach only the listeners bound when they are sent: wait for the child to
be ready (:meth:`Testbed.wait_for_listeners`) before plugging anything.

NB: for the consumer, not the bed: with ``source='kernel'`` libudev filters in user
space, so a dropped message (the interface ``add`` here, as with a real kernel) makes
``Monitor.poll()`` return None; ``iter(monitor.poll, None)`` then ends the loop.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

# Debian's interpreter, which carries python3-gi and the UMockdev typelib (see
# scripts/install-system-deps); the agent runs isolated (-I) from the test virtualenv.
SYSTEM_PYTHON = "/usr/bin/python3"
# The library umockdev-wrapper preloads; the dynamic loader finds it by soname.
PRELOAD_LIBRARY = "libumockdev-preload.so.0"
# How long the agent may take to start or to answer one call.
AGENT_TIMEOUT_S = 10.0
# Actions libudev accepts; an unknown one is dropped by the receiving monitor.
UEVENT_ACTIONS = ("add", "remove", "change", "move", "online", "offline", "bind", "unbind")

# The xHCI controller every bed has, and its two root hubs: bus 1 is the USB 2 half,
# bus 2 the SuperSpeed half of the same connectors.
CONTROLLER_SYSPATH = "/sys/devices/pci0000:00/0000:00:14.0"
HIGH_SPEED_BUS = 1
SUPER_SPEED_BUS = 2
ROOT_HUB_PORTS = 4
# usb1-portN <-> usb2-portM pairs; FIELD-NOTES section 2 saw usb1-port4 <-> usb2-port3
# (``1-4.4.3`` came back as ``2-3.4.3``). usb1-port3 is a USB 2 only connector here.
DEFAULT_ROOT_PEERS: Mapping[int, int] = {1: 1, 2: 2, 4: 3}
HUB_PORTS = 4
# What the agent's libudev needs to announce a device whose attributes are gone.
KEPT_ON_REMOVE = frozenset({"uevent", "subsystem"})
# Char major of /dev/bus/usb nodes (Documentation/admin-guide/devices.txt).
USB_DEVICE_MAJOR = 189
# Devices per bus in the minor number space of that major.
USB_MINORS_PER_BUS = 128

PORT_PATTERN = re.compile(r"(\d+)-(\d+(?:\.\d+)*)")
MX_ID_PATTERN = re.compile(r"[0-9A-F]{18}")


class TestbedError(RuntimeError):
    """A call to the umockdev agent failed; the message names the call."""

    __test__ = False  # not a test class, despite the name


class TestbedUnavailable(TestbedError):
    """umockdev, its typelib or its preload library is missing on this machine."""


@dataclasses.dataclass(frozen=True)
class UsbIdentity:
    """What a USB device says about itself: descriptors and strings, as sysfs shows them."""

    vendor_id: int
    product_id: int
    bcd_device: int
    manufacturer: str | None
    product: str | None
    serial: str | None
    speed: str  # Mbit/s exactly as the ``speed`` file spells it: "12", "480", "5000"
    bcd_usb: int
    device_class: tuple[int, int, int]  # class, subclass, protocol of the device
    interface_class: tuple[int, int, int]  # the same for interface 0
    num_endpoints: int
    max_power_ma: int
    self_powered: bool = False

    @property
    def uevent_product(self) -> str:
        """The ``PRODUCT`` uevent property: ``%x/%x/%x``, no leading zeros (kernel usb_uevent)."""
        return f"{self.vendor_id:x}/{self.product_id:x}/{self.bcd_device:x}"


# An NCS2 before a program loads firmware into it (FIELD-NOTES section 2).
IDLE_NCS2 = UsbIdentity(
    vendor_id=0x03E7, product_id=0x2485, bcd_device=0x0001,
    manufacturer="Movidius Ltd.", product="Movidius MyriadX", serial="03e72485",
    speed="480", bcd_usb=0x0200, device_class=(0, 0, 0), interface_class=(0xFF, 0x11, 0xFF),
    num_endpoints=2, max_power_ma=500,
)

# An unrelated device: a Logitech Unifying receiver, full speed, no serial string.
LOGITECH_RECEIVER = UsbIdentity(
    vendor_id=0x046D, product_id=0xC52B, bcd_device=0x1211,
    manufacturer="Logitech", product="USB Receiver", serial=None,
    speed="12", bcd_usb=0x0200, device_class=(0, 0, 0), interface_class=(0x03, 0x01, 0x01),
    num_endpoints=1, max_power_ma=98,
)

_USB2_HUB = UsbIdentity(
    vendor_id=0x05E3, product_id=0x0610, bcd_device=0x6060,
    manufacturer="GenesysLogic", product="USB2.1 Hub", serial=None,
    speed="480", bcd_usb=0x0210, device_class=(9, 0, 2), interface_class=(9, 0, 2),
    num_endpoints=1, max_power_ma=100,
)
_USB3_HUB = dataclasses.replace(
    _USB2_HUB, product_id=0x0620, product="USB3.1 Hub", speed="5000", bcd_usb=0x0310,
    device_class=(9, 0, 3), interface_class=(9, 0, 0), max_power_ma=0, self_powered=True,
)
_ROOT_HUBS = {
    HIGH_SPEED_BUS: dataclasses.replace(
        _USB2_HUB, vendor_id=0x1D6B, product_id=0x0002, bcd_device=0x0601,
        manufacturer="Linux 6.1.0-28-amd64 xhci-hcd", product="xHCI Host Controller",
        serial="0000:00:14.0", bcd_usb=0x0200, device_class=(9, 0, 1), max_power_ma=0,
    ),
    SUPER_SPEED_BUS: dataclasses.replace(
        _USB3_HUB, vendor_id=0x1D6B, product_id=0x0003, bcd_device=0x0601,
        manufacturer="Linux 6.1.0-28-amd64 xhci-hcd", product="xHCI Host Controller",
        serial="0000:00:14.0", bcd_usb=0x0300, device_class=(9, 0, 3),
    ),
}


def booted_ncs2(mx_id: str) -> UsbIdentity:
    """An NCS2 after firmware boot: 03e7:f63b, its MX ID as serial, on a SuperSpeed bus.

    bcdDevice, bcdUSB and the power figure are assumptions: FIELD-NOTES records only the
    ids, the strings, the speed, self-power and the ``ff/00/00`` interface with 6 endpoints.
    """
    if not MX_ID_PATTERN.fullmatch(mx_id):
        raise ValueError(f"an MX ID is 18 upper-case hex digits, got {mx_id!r}")
    return dataclasses.replace(
        IDLE_NCS2, product_id=0xF63B, manufacturer="Intel Corporation",
        product="VSC Loopback Device", serial=mx_id, speed="5000", bcd_usb=0x0300,
        interface_class=(0xFF, 0x00, 0x00), num_endpoints=6, max_power_ma=0,
        self_powered=True,
    )


@dataclasses.dataclass(frozen=True)
class UsbDevice:
    """One device in the bed: its sysfs name (``1-4.2``), path and bus address."""

    sys_name: str
    syspath: str  # as the preloaded world sees it: /sys/devices/...
    busnum: int
    devnum: int
    identity: UsbIdentity
    interfaces: tuple[str, ...]  # syspaths of its interfaces

    @property
    def devpath(self) -> str:
        """The ``DEVPATH`` uevent property: the syspath without ``/sys``."""
        return self.syspath[len("/sys"):]

    @property
    def devname(self) -> str:
        """The ``DEVNAME`` uevent property, relative to /dev as the kernel sends it."""
        return f"bus/usb/{self.busnum:03d}/{self.devnum:03d}"


def child_env(testbed: Testbed, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a child needs to see the bed: ``UMOCKDEV_DIR`` plus the preload.

    Under it ``/sys`` is the bed's tree for libudev and for a plain ``open()`` alike, and
    a netlink uevent socket becomes a listener of the bed.
    """
    env = dict(os.environ if base is None else base)
    env["UMOCKDEV_DIR"] = str(testbed.root_dir)
    earlier = env.get("LD_PRELOAD")
    env["LD_PRELOAD"] = f"{PRELOAD_LIBRARY}:{earlier}" if earlier else PRELOAD_LIBRARY
    return env


def _parse_port(port: str) -> tuple[int, tuple[int, ...]]:
    """Split a sysfs device name like ``1-4.2`` into bus 1 and port chain (4, 2)."""
    match = PORT_PATTERN.fullmatch(port)
    if match is None:
        raise ValueError(f"a port path looks like '1-4.2', got {port!r}")
    return int(match.group(1)), tuple(int(part) for part in match.group(2).split("."))


def _port_name(bus: int, chain: tuple[int, ...]) -> str:
    """The sysfs name of the device at ``chain`` on ``bus``; ``usbN`` for the root hub."""
    return f"{bus}-{'.'.join(map(str, chain))}" if chain else f"usb{bus}"


def _interface_name(bus: int, chain: tuple[int, ...]) -> str:
    """The sysfs name of interface 0 of configuration 1: ``1-4.2:1.0``, ``1-0:1.0``."""
    return f"{bus}-{'.'.join(map(str, chain)) or '0'}:1.0"


class Testbed:
    """A umockdev sysfs tree plus uevents, driven from a plain (unpreloaded) pytest.

    The bed starts with the controller and both root hubs, before any listener exists,
    so their ``add`` events reach nobody. Use it as a context manager or call
    :meth:`close`.
    """

    __test__ = False  # not a test class, despite the name

    def __init__(
        self,
        *,
        root_peers: Mapping[int, int] = DEFAULT_ROOT_PEERS,
        python: str = SYSTEM_PYTHON,
    ) -> None:
        self._root_peers = dict(root_peers)
        self._devices: dict[str, UsbDevice] = {}
        self._next_devnum = {HIGH_SPEED_BUS: 2, SUPER_SPEED_BUS: 2}
        self._agent = self._start_agent(python)
        self._replies: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(self._agent.stdout,), daemon=True).start()
        try:
            self.root_dir = Path(self._receive("start")["root"])
        except TestbedError:
            self._agent.kill()
            self._agent.wait()
            raise

        # The controller and both halves of the root hub, with their peered ports.
        self._call("add_device", "pci", CONTROLLER_SYSPATH[len("/sys/devices/"):], None,
                   ["vendor", "0x8086\n", "device", "0xa36d\n", "class", "0x0c0330\n"],
                   ["DRIVER", "xhci_hcd", "PCI_SLOT_NAME", "0000:00:14.0"])
        for bus in (HIGH_SPEED_BUS, SUPER_SPEED_BUS):
            self._plug(bus, (), _ROOT_HUBS[bus], devnum=1, ports=ROOT_HUB_PORTS)

    @property
    def sysfs_root(self) -> Path:
        """What the child gets as ``--sysfs-root``: the bed's own ``sys`` directory.

        It is a real directory, so it reads the same with or without the preload; under
        the preload a child's ``/sys`` shows the same tree.
        """
        return self.root_dir / "sys"

    def add_hub(self, port: str) -> UsbDevice:
        """Plug a hub at ``port``; on a peered port, its SuperSpeed twin appears too.

        A USB 3 hub in a USB 3 connector shows up twice, once per bus, with its ports
        peered like the root hub's. Listeners get ``add`` (and ``bind``) for each half.
        """
        bus, chain = _parse_port(port)
        if len(chain) > 1 and _port_name(bus, chain[:-1]) not in self._devices:
            self.add_hub(_port_name(bus, chain[:-1]))
        twin = self._twin(bus, chain)
        hub = self._plug(bus, chain, _USB2_HUB if bus == HIGH_SPEED_BUS else _USB3_HUB,
                         ports=HUB_PORTS)
        if twin is not None and _port_name(*twin) not in self._devices:
            twin_identity = _USB3_HUB if twin[0] == SUPER_SPEED_BUS else _USB2_HUB
            self._plug(*twin, twin_identity, ports=HUB_PORTS)
        return hub

    def add_usb_device(
        self, port: str, identity: UsbIdentity, *, devnum: int | None = None
    ) -> UsbDevice:
        """Plug a device at ``port`` (its sysfs name, e.g. ``1-4.2``).

        Missing hubs on the way are plugged first. Listeners get, filtered on
        ``usb_device``, ``add`` then ``bind`` (the generic ``usb`` driver binding, as
        kernels since 4.14 announce it); the interface ``add`` comes in between.
        """
        bus, chain = _parse_port(port)
        if bus not in self._next_devnum:
            raise ValueError(f"the bed has buses 1 and 2 only, got {port!r}")
        if len(chain) > 1 and _port_name(bus, chain[:-1]) not in self._devices:
            self.add_hub(_port_name(bus, chain[:-1]))
        return self._plug(bus, chain, identity, devnum=devnum)

    def remove_device(self, device: UsbDevice, *, announce: bool = True) -> None:
        """Unplug a device and everything behind it, deepest first; a hub with its twin.

        With ``announce`` listeners get, per interface, ``remove``, then ``unbind`` and
        ``remove`` for the device; ``remove`` finds the attribute files gone already
        and the directory about to go (see the module NB).
        Without it the device vanishes silently, like a uevent lost to ENOBUFS.
        """
        for child in [d for d in self._devices.values() if self._is_behind(d, device)]:
            if child.sys_name in self._devices:
                self.remove_device(child, announce=announce)

        # Announce while libudev in the agent can still find the directories, but
        # after the attribute files are gone, as in the kernel's device_del().
        if announce:
            for interface in reversed(device.interfaces):
                self._strip_attributes(interface)
                self.uevent(interface, "remove")
            self.uevent(device, "unbind")
            self._strip_attributes(device.syspath)
            self.uevent(device, "remove")

        for syspath in (*reversed(device.interfaces), device.syspath):
            self._call("remove_device", syspath)
        self._unlink_peers(device)
        # NB: umockdev leaves the /sys/dev/char link behind; the kernel would not.
        minor = (device.busnum - 1) * USB_MINORS_PER_BUS + device.devnum - 1
        (self.sysfs_root / "dev" / "char" / f"{USB_DEVICE_MAJOR}:{minor}").unlink()
        del self._devices[device.sys_name]

        # Both halves of a USB 3 hub leave together.
        twin = self._twin(device.busnum, _parse_port(device.sys_name)[1])
        twin_hub = self._devices.get(_port_name(*twin)) if twin else None
        if twin_hub is not None and twin_hub.identity in (_USB2_HUB, _USB3_HUB):
            self.remove_device(twin_hub, announce=announce)

    def uevent(self, device: UsbDevice | str, action: str) -> None:
        """Send ``action`` for a device (or any syspath) to every bound listener."""
        if action not in UEVENT_ACTIONS:
            raise ValueError(f"libudev drops uevent action {action!r}; use {UEVENT_ACTIONS}")
        syspath = device.syspath if isinstance(device, UsbDevice) else device
        self._call("uevent", syspath, action)

    def listener_sockets(self) -> list[Path]:
        """The uevent sockets of preloaded processes that listen now (``event<fd>``)."""
        return sorted(self.root_dir.glob("event[0-9]*"))

    def wait_for_listeners(self, count: int = 1, timeout: float = 5.0) -> list[Path]:
        """Wait until ``count`` listener sockets exist, e.g. the labeller's monitor."""
        deadline = time.monotonic() + timeout
        while len(sockets := self.listener_sockets()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(sockets)} of {count} listeners after {timeout} s")
            time.sleep(0.01)
        return sockets

    def close(self) -> None:
        """Stop the agent (its Testbed then deletes the tree) and make sure the tree is gone."""
        if self._agent.stdin is not None and not self._agent.stdin.closed:
            self._agent.stdin.close()
        try:
            self._agent.wait(timeout=AGENT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._agent.kill()
            self._agent.wait()
        shutil.rmtree(self.root_dir, ignore_errors=True)

    def __enter__(self) -> Testbed:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _plug(
        self,
        bus: int,
        chain: tuple[int, ...],
        identity: UsbIdentity,
        *,
        devnum: int | None = None,
        ports: int = 0,
    ) -> UsbDevice:
        """Add one device and its interface 0, and send ``bind`` for the device."""
        sys_name = _port_name(bus, chain)
        if sys_name in self._devices:
            raise ValueError(f"port {sys_name} is taken")
        if devnum is None:
            devnum = self._next_devnum[bus]
        self._next_devnum[bus] = max(self._next_devnum[bus], devnum + 1)
        parent = (CONTROLLER_SYSPATH if not chain
                  else self._devices[_port_name(bus, chain[:-1])].syspath)
        syspath = f"{parent}/{sys_name}"

        # The device: umockdev announces "add" by itself (module NB).
        minor = (bus - 1) * USB_MINORS_PER_BUS + devnum - 1
        attributes = _device_attributes(identity, bus, chain, devnum, ports)
        attributes += ["dev", f"{USB_DEVICE_MAJOR}:{minor}\n"]
        properties = [
            "MAJOR", str(USB_DEVICE_MAJOR), "MINOR", str(minor),
            # umockdev wants the /dev/ prefix to link /sys/dev/char; it stores it without.
            "DEVNAME", f"/dev/bus/usb/{bus:03d}/{devnum:03d}",
            "DEVTYPE", "usb_device", "DRIVER", "usb",
            "PRODUCT", identity.uevent_product, "TYPE", _triple(identity.device_class),
            "BUSNUM", f"{bus:03d}", "DEVNUM", f"{devnum:03d}",
        ]
        self._call("add_device", "usb", sys_name, parent, attributes, properties)

        # Interface 0 of configuration 1, then the ports a hub offers.
        interface = f"{syspath}/{_interface_name(bus, chain)}"
        self._call("add_device", "usb", _interface_name(bus, chain), syspath,
                   _interface_attributes(identity), _interface_properties(identity))
        device = UsbDevice(sys_name, syspath, bus, devnum, identity, (interface,))
        self._devices[sys_name] = device
        for number in range(1, ports + 1):
            self._add_port(bus, chain, number)

        self.uevent(device, "bind")
        return device

    def _add_port(self, bus: int, chain: tuple[int, ...], number: int) -> None:
        """Make ``<hub>:1.0/<hub>-port<n>`` and link it with its twin's port, both ways."""
        port_dir = self._port_dir(bus, chain, number)
        port_dir.mkdir()
        (port_dir / "uevent").write_text("DEVTYPE=usb_port\n")
        (port_dir / "connect_type").write_text("hotplug\n")
        twin = self._twin(bus, (*chain, number))
        if twin is None or _port_name(twin[0], twin[1][:-1]) not in self._devices:
            return
        twin_dir = self._port_dir(twin[0], twin[1][:-1], twin[1][-1])
        (port_dir / "peer").symlink_to(os.path.relpath(twin_dir, port_dir))
        (twin_dir / "peer").symlink_to(os.path.relpath(port_dir, twin_dir))

    def _unlink_peers(self, device: UsbDevice) -> None:
        """Drop the twin's ``peer`` links that pointed into a removed hub."""
        bus, chain = _parse_port(device.sys_name)
        twin = self._twin(bus, chain)
        if twin is None or _port_name(*twin) not in self._devices:
            return
        for peer in self._port_dir(*twin, 1).parent.glob("*-port*/peer"):
            if not peer.exists():
                peer.unlink()

    def _strip_attributes(self, syspath: str) -> None:
        """Delete a device's attribute files, keeping what libudev needs to find it."""
        for entry in (self.root_dir / syspath.lstrip("/")).iterdir():
            if entry.name not in KEPT_ON_REMOVE and (entry.is_symlink() or entry.is_file()):
                entry.unlink()

    def _port_dir(self, bus: int, chain: tuple[int, ...], number: int) -> Path:
        """The real directory of port ``number`` of the hub at ``chain``."""
        hub = self._devices[_port_name(bus, chain)]
        name = f"{_port_name(bus, chain)}-port{number}"
        return self.root_dir / hub.interfaces[0].lstrip("/") / name

    def _twin(self, bus: int, chain: tuple[int, ...]) -> tuple[int, tuple[int, ...]] | None:
        """The same connector on the other bus, or None for a USB 2 only root port."""
        if not chain:
            return None
        if bus == HIGH_SPEED_BUS and chain[0] in self._root_peers:
            return SUPER_SPEED_BUS, (self._root_peers[chain[0]], *chain[1:])
        if bus == SUPER_SPEED_BUS:
            for high, low in self._root_peers.items():
                if low == chain[0]:
                    return HIGH_SPEED_BUS, (high, *chain[1:])
        return None

    def _is_behind(self, candidate: UsbDevice, hub: UsbDevice) -> bool:
        """Whether ``candidate`` hangs below ``hub`` in the sysfs tree."""
        return candidate.syspath.startswith(hub.syspath + "/")

    def _start_agent(self, python: str) -> subprocess.Popen[str]:
        """Run this file as the agent, under the preload, in Debian's Python."""
        env = {key: value for key, value in os.environ.items() if key != "UMOCKDEV_DIR"}
        earlier = env.get("LD_PRELOAD")
        env["LD_PRELOAD"] = f"{PRELOAD_LIBRARY}:{earlier}" if earlier else PRELOAD_LIBRARY
        try:
            return subprocess.Popen(
                [python, "-I", __file__, "--agent"], env=env, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )
        except OSError as exc:
            raise TestbedUnavailable(
                f"cannot run {python} for the umockdev agent; run scripts/install-system-deps"
            ) from exc

    def _pump(self, stream: IO[str] | None) -> None:
        """Move the agent's reply lines into a queue, so waits can have a deadline."""
        assert stream is not None
        for line in stream:
            self._replies.put(line)
        self._replies.put("")

    def _receive(self, what: str) -> dict[str, Any]:
        """Take the agent's next reply; its ``error`` becomes an exception."""
        try:
            line = self._replies.get(timeout=AGENT_TIMEOUT_S)
        except queue.Empty:
            raise TestbedError(f"umockdev agent gave no answer to {what}") from None
        if not line:
            raise TestbedUnavailable(
                f"umockdev agent exited during {what} (code {self._agent.poll()}); "
                "is scripts/install-system-deps done? its stderr says more"
            )
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise TestbedError(f"{what}: {reply['error']}")
        return reply

    def _call(self, op: str, *args: object) -> Any:
        """Run one UMockdev.Testbed method in the agent and return its result."""
        assert self._agent.stdin is not None
        self._agent.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self._agent.stdin.flush()
        return self._receive(f"{op}{args!r}").get("result")


def _device_attributes(
    identity: UsbIdentity, bus: int, chain: tuple[int, ...], devnum: int, ports: int
) -> list[str]:
    """sysfs attributes of a usb_device, each formatted like drivers/usb/core/sysfs.c."""
    attributes = [
        "idVendor", f"{identity.vendor_id:04x}\n",
        "idProduct", f"{identity.product_id:04x}\n",
        "bcdDevice", f"{identity.bcd_device:04x}\n",
        "bDeviceClass", f"{identity.device_class[0]:02x}\n",
        "bDeviceSubClass", f"{identity.device_class[1]:02x}\n",
        "bDeviceProtocol", f"{identity.device_class[2]:02x}\n",
        "bNumConfigurations", "1\n",
        "bNumInterfaces", " 1\n",
        "bConfigurationValue", "1\n",
        "bmAttributes", "c0\n" if identity.self_powered else "80\n",
        "bMaxPower", f"{identity.max_power_ma}mA\n",
        "busnum", f"{bus}\n",
        "devnum", f"{devnum}\n",
        "devpath", f"{'.'.join(map(str, chain)) or '0'}\n",
        "speed", f"{identity.speed}\n",
        "version", f"{identity.bcd_usb >> 8:2x}.{identity.bcd_usb & 0xFF:02x}\n",
        "maxchild", f"{ports}\n",
        "authorized", "1\n",
    ]
    for name, value in (("manufacturer", identity.manufacturer),
                        ("product", identity.product), ("serial", identity.serial)):
        if value is not None:  # the file is absent when the device has no such string
            attributes += [name, f"{value}\n"]
    return attributes


def _interface_attributes(identity: UsbIdentity) -> list[str]:
    """sysfs attributes of interface 0, formatted like drivers/usb/core/sysfs.c."""
    klass, subclass, protocol = identity.interface_class
    return [
        "bInterfaceNumber", "00\n", "bAlternateSetting", " 0\n",
        "bNumEndpoints", f"{identity.num_endpoints:02x}\n",
        "bInterfaceClass", f"{klass:02x}\n", "bInterfaceSubClass", f"{subclass:02x}\n",
        "bInterfaceProtocol", f"{protocol:02x}\n",
        "modalias", _modalias(identity) + "\n", "authorized", "1\n",
    ]


def _interface_properties(identity: UsbIdentity) -> list[str]:
    """uevent properties of interface 0 (kernel usb_uevent: PRODUCT, TYPE, INTERFACE)."""
    return [
        "DEVTYPE", "usb_interface", "PRODUCT", identity.uevent_product,
        "TYPE", _triple(identity.device_class),
        "INTERFACE", _triple(identity.interface_class), "MODALIAS", _modalias(identity),
    ]


def _triple(values: tuple[int, int, int]) -> str:
    """Class, subclass and protocol as uevents spell them: decimal, ``255/17/255``."""
    return "/".join(str(value) for value in values)


def _modalias(identity: UsbIdentity) -> str:
    """The interface modalias, e.g. ``usb:v03E7p2485d0001dc00dsc00dp00icFFisc11ipFFin00``."""
    dev = "dc{:02X}dsc{:02X}dp{:02X}".format(*identity.device_class)
    intf = "ic{:02X}isc{:02X}ip{:02X}".format(*identity.interface_class)
    return (f"usb:v{identity.vendor_id:04X}p{identity.product_id:04X}"
            f"d{identity.bcd_device:04X}{dev}{intf}in00")


def _serve(requests: IO[str], replies: IO[str]) -> int:
    """The agent: own one UMockdev.Testbed and run the calls that arrive as JSON lines.

    NB: without the preload the dynamic loader only warns and goes on, and uevents
    would then fail quietly; so the agent checks its own memory map first.
    """
    def reply(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
        if PRELOAD_LIBRARY.split(".so")[0] not in maps.read():
            print(f"umockdev agent: {PRELOAD_LIBRARY} is not loaded", file=sys.stderr)
            return 1
    import gi  # Debian's python3-gi; imported here so the test side never needs it

    gi.require_version("UMockdev", "1.0")
    from gi.repository import UMockdev

    bed = UMockdev.Testbed.new()
    reply({"root": bed.get_root_dir()})
    for line in requests:
        request = json.loads(line)
        op, args = request["op"], request["args"]
        if op == "add_device":
            result = bed.add_device(*args)
            reply({"result": result} if result else {"error": "umockdev refused the device"})
        elif op in ("remove_device", "uevent"):
            # The sender would only print "No such device" for a missing one.
            if not os.path.isdir(args[0]):
                reply({"error": f"no device at {args[0]}"})
                continue
            getattr(bed, op)(*args)
            reply({"result": None})
        else:
            reply({"error": f"unknown call {op!r}"})

    # Dropping the last reference finalizes the Testbed, which deletes its directory.
    del bed
    return 0


if __name__ == "__main__" and sys.argv[1:] == ["--agent"]:
    sys.exit(_serve(sys.stdin, sys.stdout))
