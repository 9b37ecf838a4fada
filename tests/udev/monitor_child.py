"""A labeller-shaped child for the test bed tests: it prints what it sees as JSON lines.

``--watch``: a pyudev netlink monitor filtered like the labeller's (subsystem ``usb``,
device type ``usb_device``); one line ``{"ready": true}`` once it is bound, then one line
per event. ``--list``: the entries of ``<sysfs-root>/bus/usb/devices`` and, for each
that has them, ``idVendor`` and ``idProduct``, read with plain ``open()``.

NB: ``iter(monitor.poll, None)``, the loop pyudev's documentation shows, ends at the
first message the filter drops (with ``source='kernel'`` libudev filters in user space,
e.g. the ``add`` of an interface, and then reports EAGAIN, which pyudev turns into
None). The loop here treats None as "nothing this time".

NB: the monitor must be bound before the bed sends anything: events go only to the
listeners present at that moment, so the parent waits for the ready line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pyudev


def watch(source: str, sysfs_root: Path) -> None:
    """Print every usb_device event, with the fields the tests compare."""
    context = pyudev.Context()
    monitor = pyudev.Monitor.from_netlink(context, source=source)
    monitor.filter_by(subsystem="usb", device_type="usb_device")
    monitor.start()
    print(json.dumps({"ready": True}), flush=True)

    while True:
        device = monitor.poll()
        received_ns = time.monotonic_ns()
        if device is None:
            continue  # a message the filter dropped; see the module NB
        properties = device.properties
        print(json.dumps({
            "action": device.action,
            "sys_name": device.sys_name,
            "product": properties.get("PRODUCT"),
            "busnum": properties.get("BUSNUM"),
            "devnum": properties.get("DEVNUM"),
            "devname": properties.get("DEVNAME"),
            "seqnum": properties.get("SEQNUM"),
            # On remove the attribute files are gone already, as with a real kernel.
            "has_id_vendor": (sysfs_root / device.device_path.lstrip("/") / "idVendor")
            .is_file(),
            "received_ns": received_ns,
        }), flush=True)


def list_devices(sysfs_root: Path) -> None:
    """Print the bus/usb/devices entries and the ids of those that are devices."""
    devices = sysfs_root / "bus" / "usb" / "devices"
    names = sorted(os.listdir(devices))
    ids = {}
    for name in names:
        vendor = devices / name / "idVendor"
        if vendor.is_file():
            product = (devices / name / "idProduct").read_text().strip()
            ids[name] = [vendor.read_text().strip(), product]
    print(json.dumps({"entries": names, "ids": ids}), flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sysfs-root", type=Path, default=Path("/sys"))
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--watch", choices=("kernel", "udev"), metavar="SOURCE")
    mode.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        list_devices(args.sysfs_root)
    else:
        watch(args.watch, args.sysfs_root)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
