"""From USB devices to compute sticks: classification, ordering and indices.

Indices must not depend on the order in which sticks were plugged or booted, so devices
are ordered by the physical connector they sit in. A booted stick is the same accelerator
as an idle one and keeps its connector's index; cameras that share the Myriad's USB ids
are listed but never counted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, NamedTuple

from nfd_hook import catalogue, labels, sysfs

USB_DEVICES = os.path.join("bus", "usb", "devices")


class SysfsError(Exception):
    """The USB bus cannot be read at all: the node's state is unknown."""


class Stick(NamedTuple):
    """One Movidius device found on the bus, with what we know of it."""

    usb: sysfs.UsbDevice
    connector: str
    state: str
    model: catalogue.Model | None
    # Why a Movidius device is not counted; None for a counted compute stick.
    excluded: str | None

    @property
    def counted(self) -> bool:
        return self.excluded is None

    @property
    def full_name(self) -> str:
        return self.model.full_name if self.model else ""

    @property
    def capabilities(self) -> tuple[str, ...]:
        return self.model.capabilities if self.model else ()

    def as_dict(self, index: int | None) -> dict[str, Any]:
        """The device record of the JSON output."""
        usb = self.usb
        return {
            "index": index,
            "port": usb.port,
            "connector": self.connector,
            "vendor_id": usb.vendor_id,
            "product_id": usb.product_id,
            "state": self.state,
            "model": self.model.name if self.model else None,
            "full_name": self.full_name or None,
            "capabilities": list(self.capabilities),
            "busnum": usb.busnum,
            "devnum": usb.devnum,
            "speed": usb.speed,
            "manufacturer": usb.manufacturer,
            "product": usb.product,
            "serial": usb.serial,
            "counted": self.counted,
            "excluded_reason": self.excluded,
        }


class Discovery(NamedTuple):
    """The result of one scan: every Movidius device, and what went wrong on the way."""

    sticks: tuple[Stick, ...]
    warnings: tuple[str, ...]
    # False when sysfs has no USB bus at all (no USB support in this kernel).
    has_usb_bus: bool

    @property
    def counted(self) -> tuple[Stick, ...]:
        """The compute sticks, in index order."""
        return tuple(stick for stick in self.sticks if stick.counted)

    def feature_labels(self) -> dict[str, str]:
        return labels.feature_labels(self.counted)

    def name_annotations(self) -> dict[str, str]:
        return labels.name_annotations(self.counted)

    def records(self) -> list[dict[str, Any]]:
        """Every device record, counted ones with their index, in connector order."""
        counted = self.counted
        lone = len(counted) == 1
        records = []
        for stick in self.sticks:
            index = None
            if stick.counted and not lone:
                index = counted.index(stick)
            records.append(stick.as_dict(index))
        return records


def classify(usb: sysfs.UsbDevice, connector: str) -> Stick:
    """What a Movidius USB device is, from the catalogue and its own strings."""
    identity = catalogue.IDENTITIES.get(usb.product_id)
    if identity is None:
        return Stick(usb, connector, "unknown", None, "unknown Movidius product id")
    if not identity.compute_stick:
        return Stick(usb, connector, identity.state, None, identity.description)
    if identity.model is not None:
        return Stick(usb, connector, identity.state, identity.model, None)
    product = (usb.product or "").lower()
    if product.startswith(catalogue.LUXONIS_PRODUCT_PREFIX):
        return Stick(usb, connector, identity.state, None, "Luxonis camera, not a compute stick")
    return Stick(usb, connector, identity.state, catalogue.booted_model(usb.serial), None)


def _order(stick: Stick) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return sysfs.port_key(stick.connector), sysfs.port_key(stick.usb.port)


def discover(sysfs_root: str = "/sys") -> Discovery:
    """Scan `<sysfs_root>/bus/usb/devices` for Movidius devices.

    Raises SysfsError when the root is not a readable sysfs: a caller that cannot read
    the bus must not report that the node has no stick.
    """
    if not os.path.isdir(os.path.join(sysfs_root, "bus")):
        raise SysfsError(f"{sysfs_root} is not a sysfs mount (no bus/ directory)")
    devices_dir = os.path.join(sysfs_root, USB_DEVICES)
    try:
        ports = sysfs.list_ports(devices_dir)
    except FileNotFoundError:
        if os.path.isdir(os.path.join(sysfs_root, "bus", "usb")):
            raise SysfsError(f"cannot read {devices_dir}: it does not exist") from None
        return Discovery((), (), has_usb_bus=False)
    except OSError as exc:
        raise SysfsError(f"cannot read {devices_dir}: {exc.strerror or exc}") from exc

    sticks: list[Stick] = []
    warnings: list[str] = []
    # The kernel links each device once; a damaged tree may link one twice.
    seen: dict[str, str] = {}
    for port in sorted(ports, key=sysfs.port_key):
        # Most devices are not ours: read one attribute of each, and the rest only of ours.
        try:
            vendor = sysfs.read_vendor(devices_dir, port)
            if vendor != catalogue.VENDOR_MOVIDIUS:
                continue
            usb = sysfs.read_device(devices_dir, port, vendor)
        except sysfs.DeviceError as exc:
            warnings.append(str(exc))
            continue
        real = os.path.realpath(os.path.join(devices_dir, port))
        if real in seen:
            warnings.append(f"skipping USB device {port}: it is device {seen[real]} again")
            continue
        seen[real] = port
        sticks.append(classify(usb, sysfs.connector(devices_dir, port)))
    sticks.sort(key=_order)
    return Discovery(tuple(sticks), tuple(warnings), has_usb_bus=True)


def describe(sticks: Sequence[Stick]) -> str:
    """A short human summary, e.g. `2 sticks: 1-4.2 Myriad X idle, 2-3 Myriad X booted`."""
    parts = [f"{s.usb.port} {s.model.name if s.model else '?'} {s.state}" for s in sticks]
    noun = "stick" if len(sticks) == 1 else "sticks"
    return f"{len(sticks)} {noun}: " + ", ".join(parts) if parts else "no stick"
