"""The umockdev test bed drives real libudev in a child process, as the labeller will be.

The child is tests/udev/monitor_child.py, started with ``child_env(bed)``; every wait
on it has a deadline, none is a fixed sleep.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.testbed import (
    IDLE_NCS2,
    LOGITECH_RECEIVER,
    Testbed,
    TestbedError,
    TestbedUnavailable,
    booted_ncs2,
    child_env,
)

MONITOR_CHILD = Path(__file__).with_name("monitor_child.py")
# Generous for a loaded 2-core CI machine; an event normally arrives within 1 ms.
EVENT_DEADLINE_S = 10.0
MX_ID = "1844301011C7B50F00"


class Child:
    """A monitor_child.py process whose JSON lines can be awaited with a deadline."""

    def __init__(self, bed: Testbed, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(MONITOR_CHILD), *args], env=child_env(bed),
            stdout=subprocess.PIPE, text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def next(self) -> dict[str, Any]:
        """The next line the child printed, parsed."""
        try:
            line = self._lines.get(timeout=EVENT_DEADLINE_S)
        except queue.Empty:
            pytest.fail(f"the child printed nothing for {EVENT_DEADLINE_S} s")
        message: dict[str, Any] = json.loads(line)
        return message

    def events(self, count: int) -> list[tuple[str, str, str]]:
        """The next ``count`` events as (action, PRODUCT, sys_name)."""
        return [(e["action"], e["product"], e["sys_name"]) for e in
                (self.next() for _ in range(count))]

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def bed() -> Iterator[Testbed]:
    with Testbed() as testbed:
        yield testbed


@pytest.fixture
def start_child(bed: Testbed) -> Iterator[Callable[..., Child]]:
    children: list[Child] = []

    def start(*args: str) -> Child:
        child = Child(bed, *args)
        children.append(child)
        return child

    yield start
    for child in children:
        child.stop()


@pytest.fixture
def watcher(bed: Testbed, start_child: Callable[..., Child]) -> Child:
    """A kernel-source monitor child that is bound and ready to hear the bed."""
    bed.add_hub("1-4")  # before the child listens: hubs give no events to expect
    child = start_child("--watch", "kernel", "--sysfs-root", str(bed.sysfs_root))
    assert child.next() == {"ready": True}
    return child


@pytest.mark.parametrize("source", ["kernel", "udev"])
def test_child_hears_plug_unplug_and_plug_in_order(
    bed: Testbed, start_child: Callable[..., Child], source: str
) -> None:
    bed.add_hub("1-4")
    child = start_child("--watch", source)
    assert child.next() == {"ready": True}

    stick = bed.add_usb_device("1-4.2", IDLE_NCS2)
    bed.remove_device(stick)
    receiver = bed.add_usb_device("1-3", LOGITECH_RECEIVER)
    bed.uevent(receiver, "change")  # a last event: nothing unexpected came before it

    assert child.events(7) == [
        ("add", "3e7/2485/1", "1-4.2"),
        ("bind", "3e7/2485/1", "1-4.2"),
        ("unbind", "3e7/2485/1", "1-4.2"),
        ("remove", "3e7/2485/1", "1-4.2"),
        ("add", "46d/c52b/1211", "1-3"),
        ("bind", "46d/c52b/1211", "1-3"),
        ("change", "46d/c52b/1211", "1-3"),
    ]


def test_add_event_carries_the_bus_address(bed: Testbed, watcher: Child) -> None:
    stick = bed.add_usb_device("1-4.2", IDLE_NCS2, devnum=5)

    event = watcher.next()
    assert (event["action"], event["busnum"], event["devnum"], event["devname"]) == (
        "add", "001", "005", "/dev/bus/usb/001/005")
    assert event["has_id_vendor"]
    assert stick.devname == "bus/usb/001/005"


def test_remove_event_carries_the_properties_of_the_leaving_device(
    bed: Testbed, watcher: Child
) -> None:
    stick = bed.add_usb_device("1-4.2", IDLE_NCS2)
    assert [watcher.next()["action"] for _ in range(2)] == ["add", "bind"]

    bed.remove_device(stick)

    unbind, remove = watcher.next(), watcher.next()
    assert (unbind["action"], remove["action"]) == ("unbind", "remove")
    assert (remove["product"], remove["busnum"], remove["devnum"]) == (
        "3e7/2485/1", "001", f"{stick.devnum:03d}")
    assert not remove["has_id_vendor"]  # stripped before the announcement, not after
    assert not (bed.sysfs_root / "bus/usb/devices/1-4.2").exists()


def test_add_sent_again_reaches_the_child_twice(bed: Testbed, watcher: Child) -> None:
    stick = bed.add_usb_device("1-4.2", IDLE_NCS2)
    bed.uevent(stick, "add")

    events = [watcher.next() for _ in range(3)]
    assert [e["action"] for e in events] == ["add", "bind", "add"]
    assert events[0]["seqnum"] != events[2]["seqnum"]


def test_silent_removal_sends_nothing(bed: Testbed, watcher: Child) -> None:
    stick = bed.add_usb_device("1-4.2", IDLE_NCS2)
    bed.remove_device(stick, announce=False)
    receiver = bed.add_usb_device("1-3", LOGITECH_RECEIVER)

    assert watcher.events(4) == [
        ("add", "3e7/2485/1", "1-4.2"),
        ("bind", "3e7/2485/1", "1-4.2"),
        ("add", "46d/c52b/1211", "1-3"),
        ("bind", "46d/c52b/1211", "1-3"),
    ]
    assert receiver.sys_name == "1-3"


def test_listening_child_shows_up_as_a_listener_socket(
    bed: Testbed, watcher: Child
) -> None:
    assert [path.name for path in bed.wait_for_listeners(1)] != []


@pytest.mark.parametrize("root", ["bed", "/sys"])
def test_child_lists_the_bed_with_plain_reads(
    bed: Testbed, start_child: Callable[..., Child], root: str
) -> None:
    bed.add_usb_device("1-4.2", IDLE_NCS2)
    bed.add_usb_device("2-3.1", booted_ncs2(MX_ID))
    bed.add_usb_device("1-3", LOGITECH_RECEIVER)
    sysfs_root = str(bed.sysfs_root) if root == "bed" else root

    listing = start_child("--list", "--sysfs-root", sysfs_root).next()

    assert listing["entries"] == sorted([
        "usb1", "usb2", "1-0:1.0", "2-0:1.0", "1-4", "1-4:1.0", "2-3", "2-3:1.0",
        "1-4.2", "1-4.2:1.0", "2-3.1", "2-3.1:1.0", "1-3", "1-3:1.0",
    ])
    assert listing["ids"]["1-4.2"] == ["03e7", "2485"]
    assert listing["ids"]["2-3.1"] == ["03e7", "f63b"]
    assert listing["ids"]["1-3"] == ["046d", "c52b"]
    assert listing["ids"]["usb2"] == ["1d6b", "0003"]


def test_sysfs_root_reads_without_the_preload(bed: Testbed) -> None:
    bed.add_usb_device("1-4.2", IDLE_NCS2)
    stick = bed.sysfs_root / "bus" / "usb" / "devices" / "1-4.2"

    attributes = {name: (stick / name).read_text() for name in (
        "idVendor", "idProduct", "bcdDevice", "manufacturer", "product", "serial",
        "busnum", "devpath", "speed", "version", "bDeviceClass")}

    assert attributes == {
        "idVendor": "03e7\n", "idProduct": "2485\n", "bcdDevice": "0001\n",
        "manufacturer": "Movidius Ltd.\n", "product": "Movidius MyriadX\n",
        "serial": "03e72485\n", "busnum": "1\n", "devpath": "4.2\n", "speed": "480\n",
        "version": " 2.00\n", "bDeviceClass": "00\n",
    }
    assert "PRODUCT=3e7/2485/1\n" in (stick / "uevent").read_text()
    assert (stick / "1-4.2:1.0" / "bInterfaceClass").read_text() == "ff\n"


def test_booted_stick_sits_on_the_superspeed_bus(bed: Testbed) -> None:
    booted = bed.add_usb_device("2-3.1", booted_ncs2(MX_ID))
    stick = bed.sysfs_root / "bus" / "usb" / "devices" / "2-3.1"

    assert (stick / "serial").read_text() == f"{MX_ID}\n"
    assert (stick / "speed").read_text() == "5000\n"
    assert (stick / "product").read_text() == "VSC Loopback Device\n"
    assert "BUSNUM=002\n" in (stick / "uevent").read_text()
    assert booted.identity.uevent_product == "3e7/f63b/1"


def test_device_without_a_serial_has_no_serial_file(bed: Testbed) -> None:
    bed.add_usb_device("1-3", LOGITECH_RECEIVER)
    assert not (bed.sysfs_root / "bus/usb/devices/1-3/serial").exists()


def test_mx_id_must_be_18_upper_case_hex_digits() -> None:
    with pytest.raises(ValueError, match="MX ID"):
        booted_ncs2("1844301011c7b50f00")


def test_root_ports_are_peered_like_xhci(bed: Testbed) -> None:
    root_port = bed.sysfs_root / "bus/usb/devices/1-0:1.0/usb1-port4"

    assert os.readlink(root_port / "peer") == "../../../usb2/2-0:1.0/usb2-port3"
    assert (root_port / "peer" / "peer").resolve() == root_port.resolve()
    assert not (bed.sysfs_root / "bus/usb/devices/1-0:1.0/usb1-port3/peer").exists()


def test_hub_ports_are_peered_with_the_superspeed_twin(bed: Testbed) -> None:
    bed.add_hub("1-4")
    hub_port = bed.sysfs_root / "bus/usb/devices/1-4:1.0/1-4-port2"

    twin_port = bed.sysfs_root / "bus/usb/devices/2-3:1.0/2-3-port2"
    assert (hub_port / "peer").resolve() == twin_port.resolve()


def test_removal_leaves_no_dangling_link(bed: Testbed) -> None:
    hub = bed.add_hub("1-4")
    bed.add_usb_device("1-4.2", IDLE_NCS2)
    bed.add_usb_device("2-3.1", booted_ncs2(MX_ID))

    bed.remove_device(hub)

    links = [path for path in bed.sysfs_root.rglob("*") if path.is_symlink()]
    assert [link for link in links if not link.exists()] == []
    assert sorted(os.listdir(bed.sysfs_root / "bus/usb/devices")) == [
        "1-0:1.0", "2-0:1.0", "usb1", "usb2"]


def test_uevent_for_a_removed_device_is_refused(bed: Testbed) -> None:
    stick = bed.add_usb_device("1-4.2", IDLE_NCS2)
    bed.remove_device(stick)

    with pytest.raises(TestbedError, match="no device at"):
        bed.uevent(stick, "remove")


def test_closing_the_bed_deletes_its_tree() -> None:
    with Testbed() as testbed:
        root = testbed.root_dir
        assert (root / "sys" / "devices").is_dir()
    assert not root.exists()


def test_child_env_adds_the_preload_in_front_of_an_existing_one(bed: Testbed) -> None:
    env = child_env(bed, {"LD_PRELOAD": "libother.so", "PATH": "/bin"})

    assert env == {"LD_PRELOAD": "libumockdev-preload.so.0:libother.so", "PATH": "/bin",
                   "UMOCKDEV_DIR": str(bed.root_dir)}


def test_missing_agent_interpreter_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(TestbedUnavailable, match="install-system-deps"):
        Testbed(python=str(tmp_path / "no-python"))
