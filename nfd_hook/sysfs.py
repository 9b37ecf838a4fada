"""Reading USB devices from sysfs files.

The hook reads `<root>/bus/usb/devices/` itself instead of asking libudev: it then needs no
udev database, runs unchanged in a scratch container, and a test can point it at any tree.
Everything read here comes from a device or from a tree that may be half gone by the time
it is read, so every read is bounded, every error is expected, and one bad device never
stops the scan.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from typing import NamedTuple

# The kernel names a USB device `<bus>-<port>[.<port>...]`; interfaces (`1-2:1.0`) and
# root hubs (`usb1`) have other names and are not devices we report.
_PORT_RE = re.compile(r"[1-9][0-9]{0,2}-[1-9][0-9]{0,2}(\.[1-9][0-9]{0,2}){0,6}")
# The port directory behind a `peer` link: `usb1-port4` (root hub) or `1-4.4-port3`.
_PEER_RE = re.compile(r"(?:usb([0-9]+)|([0-9]+-[0-9.]+))-port([0-9]+)")
_HEX4_RE = re.compile(r"[0-9a-fA-F]{4}")

# sysfs attributes are at most a page; a USB string descriptor at most 126 UTF-16 units.
ATTR_READ_MAX = 4096
STRING_MAX = 126
# Below this speed (Mbit/s) a bus is USB 2 or older; a SuperSpeed bus has a USB 2 twin.
SUPERSPEED_MBPS = 5000


class DeviceError(Exception):
    """A device directory that could not be read; carries the sysfs name."""

    def __init__(self, port: str, reason: str) -> None:
        super().__init__(f"skipping USB device {port}: {reason}")
        self.port = port
        self.reason = reason


class UsbDevice(NamedTuple):
    """The raw facts sysfs gives about one USB device. Strings are sanitised."""

    port: str
    vendor_id: str
    product_id: str
    manufacturer: str | None
    product: str | None
    serial: str | None
    busnum: int | None
    devnum: int | None
    speed: int | None


def clean_string(raw: bytes) -> str:
    """A device string made safe to print anywhere: printable text, bounded.

    Invalid UTF-8 becomes U+FFFD and control characters (newlines included) become
    spaces, so the result holds on one line whatever the device sent.
    """
    text = raw.decode("utf-8", errors="replace").strip()
    text = "".join(c if c.isprintable() else " " for c in text[:STRING_MAX])
    return text.strip()


class NotAnAttribute(OSError):
    """A path where an attribute should be that is not a regular file (a FIFO, a dir)."""


def read_attr(directory: str, name: str) -> bytes | None:
    """The bytes of one attribute file, None when it does not exist.

    NB: opened non-blocking and checked to be a regular file, so that a FIFO or a device
    node in a fake or damaged tree cannot hang the scan; sysfs attributes are regular
    files and ignore O_NONBLOCK.
    """
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotAnAttribute(errno.EINVAL, f"{name} is not a regular file")
        return os.read(fd, ATTR_READ_MAX)
    finally:
        os.close(fd)


def _read_int(directory: str, name: str) -> int | None:
    raw = read_attr(directory, name)
    if raw is None:
        return None
    try:
        # `speed` may read "1.5" or "12"; only whole numbers matter for ordering.
        return int(float(raw.decode("ascii").strip()))
    except (UnicodeDecodeError, ValueError, OverflowError):
        return None


def _read_string(directory: str, name: str) -> str | None:
    raw = read_attr(directory, name)
    return None if raw is None else clean_string(raw)


def _read_id(directory: str, port: str, name: str) -> str:
    raw = read_attr(directory, name)
    if raw is None:
        if not os.path.isdir(directory):
            raise DeviceError(port, "it vanished while being read")
        raise DeviceError(port, f"it has no {name}")
    text = raw.strip()
    if _HEX4_RE.fullmatch(text.decode("ascii", errors="replace")) is None:
        raise DeviceError(port, f"{name} is not a 4-digit hex id")
    return text.decode("ascii").lower()


def is_device_name(name: str) -> bool:
    """True for sysfs names of USB devices (`1-4.2`), false for interfaces and hubs."""
    return _PORT_RE.fullmatch(name) is not None


def list_ports(devices_dir: str) -> list[str]:
    """The device names under `bus/usb/devices`; OSError if the directory is unreadable."""
    with os.scandir(devices_dir) as entries:
        return [entry.name for entry in entries if is_device_name(entry.name)]


def read_vendor(devices_dir: str, port: str) -> str:
    """The vendor id of one device, lower-case hex; DeviceError when unreadable."""
    try:
        return _read_id(os.path.join(devices_dir, port), port, "idVendor")
    except OSError as exc:
        raise DeviceError(port, _os_reason(exc)) from exc


def read_device(devices_dir: str, port: str, vendor_id: str) -> UsbDevice:
    """Every attribute we report of one device; DeviceError when it cannot be read."""
    directory = os.path.join(devices_dir, port)
    try:
        return UsbDevice(
            port=port,
            vendor_id=vendor_id,
            product_id=_read_id(directory, port, "idProduct"),
            manufacturer=_read_string(directory, "manufacturer"),
            product=_read_string(directory, "product"),
            serial=_read_string(directory, "serial"),
            busnum=_read_int(directory, "busnum"),
            devnum=_read_int(directory, "devnum"),
            speed=_read_int(directory, "speed"),
        )
    except OSError as exc:
        raise DeviceError(port, _os_reason(exc)) from exc


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, NotAnAttribute):
        return str(exc.strerror)
    if exc.errno == errno.ELOOP:
        return "its sysfs entry is a symlink loop"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or type(exc).__name__


def port_key(port: str) -> tuple[int, ...]:
    """Sort key that orders `1-2` before `1-10` and a hub's ports after the hub."""
    bus, _, chain = port.partition("-")
    return (int(bus), *(int(part) for part in chain.split(".")))


def connector(devices_dir: str, port: str) -> str:
    """The USB 2 name of the physical connector a device is plugged into.

    xHCI exposes each connector twice, on a USB 2 bus and on a SuperSpeed bus, and a
    stick that boots re-enumerates on the SuperSpeed one (`1-4.4.3` becomes `2-3.4.3`).
    The `peer` link of the port it sits on names the USB 2 twin, so indices follow the
    connector, not the bus. Without a readable link the device's own name is kept.
    """
    bus, _, chain = port.partition("-")
    root_speed = _read_int_quiet(os.path.join(devices_dir, f"usb{bus}"), "speed")
    if root_speed is None or root_speed < SUPERSPEED_MBPS:
        return port
    parent_chain, _, number = chain.rpartition(".")
    if parent_chain:
        hub = f"{bus}-{parent_chain}"
        port_dir = os.path.join(devices_dir, hub, f"{hub}:1.0", f"{hub}-port{number}")
    else:
        port_dir = os.path.join(devices_dir, f"usb{bus}", f"{bus}-0:1.0", f"usb{bus}-port{number}")
    try:
        peer = os.path.basename(os.path.realpath(os.path.join(port_dir, "peer"), strict=True))
    except (OSError, ValueError):
        return port
    match = _PEER_RE.fullmatch(peer)
    if match is None:
        return port
    root_bus, hub, peer_number = match.groups()
    twin = f"{root_bus}-{peer_number}" if root_bus else f"{hub}.{peer_number}"
    return twin if is_device_name(twin) else port


def _read_int_quiet(directory: str, name: str) -> int | None:
    try:
        return _read_int(directory, name)
    except OSError:
        return None
