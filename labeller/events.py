"""USB hotplug events from the kernel or udevd, reduced to the ones about Movidius devices.

The default source is the kernel's own uevents: they reach every network namespace owned
by the initial user namespace, so an ordinary pod hears them, while udevd's rebroadcast
exists only in the host's network namespace. Kernel events carry no `ID_*` properties,
and on `remove` the sysfs directory is already gone, so the vendor is read from the
event's own `PRODUCT` property (`3e7/2485/1`).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from typing import Any, NamedTuple

from labeller import metrics
from nfd_hook import catalogue, sysfs

log = logging.getLogger(__name__)

VENDOR_MOVIDIUS = int(catalogue.VENDOR_MOVIDIUS, 16)
# Events handled per loop turn, so that a storm cannot starve the loop's timers.
MAX_EVENTS_PER_TURN = 512


class UsbEvent(NamedTuple):
    action: str
    vendor_id: str
    product_id: str
    port: str


class Overflow(Exception):
    """The kernel dropped events (ENOBUFS): only a rescan can tell what changed."""


def parse_product(product: str | None) -> tuple[int, int] | None:
    """Vendor and product ids from a uevent `PRODUCT` (`3e7/2485/1`), None if garbled."""
    if not product:
        return None
    parts = product.split("/")
    if len(parts) != 3:
        return None
    try:
        vendor, product_id = int(parts[0], 16), int(parts[1], 16)
    except ValueError:
        return None
    if not (0 <= vendor <= 0xFFFF and 0 <= product_id <= 0xFFFF):
        return None
    return vendor, product_id


def classify(device: Any) -> UsbEvent | None:
    """The event if it concerns a Movidius USB device, else None."""
    action = str(device.action or "")
    ids = parse_product(device.properties.get("PRODUCT"))
    relevant = ids is not None and ids[0] == VENDOR_MOVIDIUS
    metrics.UDEV_EVENTS.labels(action=action if action.isalpha() else "other",
                               relevant=str(relevant).lower()).inc()
    if not relevant or ids is None:
        return None
    name = str(device.sys_name or "")
    port = name if sysfs.is_device_name(name) else "?"
    return UsbEvent(action, f"{ids[0]:04x}", f"{ids[1]:04x}", port)


class UsbMonitor:
    """A started pyudev monitor on usb/usb_device events, for the loop's select()."""

    def __init__(self, source: str) -> None:
        import pyudev

        self._monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source=source)
        self._monitor.filter_by(subsystem="usb", device_type="usb_device")
        self._monitor.start()

    def fileno(self) -> int:
        return int(self._monitor.fileno())

    def drain(self) -> Iterator[UsbEvent]:
        """The pending Movidius events; raises Overflow when the kernel dropped some."""
        for _ in range(MAX_EVENTS_PER_TURN):
            try:
                device = self._monitor.poll(timeout=0)
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    raise Overflow() from exc
                raise
            if device is None:
                return
            event = classify(device)
            if event is not None:
                yield event
