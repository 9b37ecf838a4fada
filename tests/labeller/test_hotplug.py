"""Hotplug end to end: umockdev sends real uevents through libudev to a running labeller."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.apiserver import FakeApiServer
from support.labeller_proc import LabellerProcess, wait_until
from support.testbed import IDLE_NCS2, LOGITECH_RECEIVER, Testbed, booted_ncs2, child_env

from .conftest import NODE

NAME_X = "Intel Movidius Myriad X VPU"
MX_ID = "14442C10D13EABCE00"
Start = Callable[..., LabellerProcess]


@pytest.fixture
def bed() -> Iterator[Testbed]:
    with Testbed() as testbed:
        yield testbed


@pytest.fixture
def start_on_bed(bed: Testbed, kubeconfig: Path, features_dir: Path
                 ) -> Iterator[Callable[..., LabellerProcess]]:
    started: list[LabellerProcess] = []

    def run(*extra: str, debounce: str = "0.2", grace: str = "3", resync: str = "60"
            ) -> LabellerProcess:
        proc = LabellerProcess([*extra,
            "--node-name", NODE, "--kubeconfig", str(kubeconfig),
            "--sysfs-root", str(bed.sysfs_root), "--features-dir", str(features_dir),
            "--debounce", debounce, "--removal-grace", grace, "--resync-interval", resync,
            # The runtime query (a 68 MB child, tests/openvino_runtime) would stall the
            # loop; umockdev aborts when a listener stops reading during a storm.
            "--openvino", "off",
        ], env=child_env(bed))
        started.append(proc)
        bed.wait_for_listeners(1, timeout=20)
        proc.wait_ready()
        return proc

    yield run
    for proc in started:
        proc.__exit__()


def features(features_dir: Path) -> list[str]:
    return (features_dir / "ncs2").read_text().splitlines()[1:]


def names(api: FakeApiServer) -> dict[str, str]:
    annotations = api.node(NODE)["metadata"].get("annotations", {})
    return {k: v for k, v in annotations.items() if k.startswith("ncs2.intel.com/")}


def writes(labeller: LabellerProcess) -> float:
    return labeller.metric("ncs2_feature_file_writes_total", 'result="ok"') or 0.0


def test_plug_and_unplug_update_file_and_node(
    bed: Testbed, api: FakeApiServer, start_on_bed: Start, features_dir: Path
) -> None:
    labeller = start_on_bed()
    assert features(features_dir) == []

    first = bed.add_usb_device("1-2", IDLE_NCS2)
    assert api.wait_for(lambda s: len(s.patches(NODE)) == 1, timeout=10)
    assert features(features_dir) == ["intel.com/ncs2=1", "ncs2.intel.com/MYRIAD.FP16=true"]
    assert names(api) == {"ncs2.intel.com/MYRIAD.name": NAME_X}

    bed.add_usb_device("1-3", IDLE_NCS2)
    assert api.wait_for(lambda s: len(s.patches(NODE)) == 2, timeout=10)
    assert features(features_dir) == [
        "intel.com/ncs2=2", "ncs2.intel.com/MYRIAD.0.FP16=true",
        "ncs2.intel.com/MYRIAD.1.FP16=true",
    ]
    assert names(api) == {"ncs2.intel.com/MYRIAD.0.name": NAME_X,
                          "ncs2.intel.com/MYRIAD.1.name": NAME_X}

    unplugged = time.monotonic()
    bed.remove_device(first)
    assert api.wait_for(lambda s: len(s.patches(NODE)) == 3, timeout=15)
    assert time.monotonic() - unplugged >= 3.0  # the removal grace
    assert features(features_dir) == ["intel.com/ncs2=1", "ncs2.intel.com/MYRIAD.FP16=true"]
    assert names(api) == {"ncs2.intel.com/MYRIAD.name": NAME_X}

    assert labeller.count("Received a USB add event for 03e7:2485 at 1-2") == 1
    assert labeller.count("Received a USB remove event for 03e7:2485 at 1-2") == 1
    assert labeller.count(r"Discovered MYRIAD\.0: Intel Movidius Myriad X VPU \(FP16\)") == 1
    assert labeller.count("1 of 2 sticks gone from the bus; publishing the removal in 3 s") == 1
    assert labeller.metric("ncs2_sticks", 'model="Myriad X",state="idle"') == 1.0
    assert labeller.metric("ncs2_udev_events_total", 'action="add",relevant="true"') == 2.0
    assert labeller.metric("ncs2_udev_events_total", 'action="bind",relevant="true"') == 2.0
    assert labeller.metric("ncs2_udev_events_total", 'action="remove",relevant="true"') == 1.0
    # The stand-in logs a PATCH before the labeller has read the answer and counted it.
    assert wait_until(lambda: labeller.metric(
        "ncs2_node_reconciles_total", 'result="patched"') == 3.0, 5)
    assert labeller.metric("ncs2_api_requests_total", 'verb="patch",outcome="ok"') == 3.0


def test_boot_re_enumeration_changes_nothing(
    bed: Testbed, api: FakeApiServer, start_on_bed: Start, features_dir: Path
) -> None:
    # USB 2 port 4 and SuperSpeed port 3 are one connector (support.testbed's peers).
    bed.add_usb_device("1-2", IDLE_NCS2)
    idle = bed.add_usb_device("1-4", IDLE_NCS2)
    labeller = start_on_bed(grace="3")
    assert api.wait_for(lambda s: len(s.patches(NODE)) == 1, timeout=10)
    before = features(features_dir)
    inode = os.stat(features_dir / "ncs2").st_ino
    written = writes(labeller)

    # A program loads a model: the stick leaves as 2485 and comes back as f63b on the
    # SuperSpeed bus a moment later, as OpenVINO sees it happen.
    bed.remove_device(idle)
    assert labeller.wait_for_log("1 of 2 sticks gone from the bus", timeout=10)
    bed.add_usb_device("2-3", booted_ncs2(MX_ID))
    assert labeller.wait_for_log("2 sticks on the bus again before the removal grace", 10)
    time.sleep(3.5)  # past the grace, nothing may happen

    assert len(api.patches(NODE)) == 1
    assert features(features_dir) == before == [
        "intel.com/ncs2=2", "ncs2.intel.com/MYRIAD.0.FP16=true",
        "ncs2.intel.com/MYRIAD.1.FP16=true",
    ]
    assert os.stat(features_dir / "ncs2").st_ino == inode
    assert writes(labeller) == written
    assert labeller.count("Received a USB add event for 03e7:f63b at 2-3") == 1
    assert labeller.metric("ncs2_sticks", 'model="Myriad X",state="booted"') == 1.0


def test_a_storm_of_events_gives_one_update(
    bed: Testbed, api: FakeApiServer, start_on_bed: Start, features_dir: Path
) -> None:
    # The storm is cut into updates 5 debounce periods after its first event; on a busy
    # machine sending 50 uevents through the bed can take a few seconds.
    labeller = start_on_bed(debounce="1")
    written = writes(labeller)
    scans = labeller.metric("ncs2_bus_scans_total", 'reason="event"') or 0.0

    sticks = [bed.add_usb_device(f"1-{port}", IDLE_NCS2) for port in (1, 2, 3, 4)]
    for i in range(42):
        bed.uevent(sticks[i % 4], "change")
    # 4 x (add, bind) + 42 change = 50 events
    assert labeller.wait_for_log("Received a USB change event", timeout=10, count=42)
    assert api.wait_for(lambda s: len(s.patches(NODE)) >= 1, timeout=10)
    time.sleep(1.5)  # a second update would come within one debounce

    assert len(api.patches(NODE)) == 1
    assert writes(labeller) == written + 1
    assert (labeller.metric("ncs2_bus_scans_total", 'reason="event"') or 0) - scans == 1
    assert features(features_dir)[0] == "intel.com/ncs2=4"
    assert labeller.count("Received a USB ") == 50


def test_an_unrelated_device_causes_no_work(
    bed: Testbed, api: FakeApiServer, start_on_bed: Start
) -> None:
    labeller = start_on_bed()
    requests = len(api.requests)
    scans = labeller.metric("ncs2_bus_scans_total", 'reason="event"')

    receiver = bed.add_usb_device("1-1", LOGITECH_RECEIVER)
    bed.remove_device(receiver)
    assert wait_until(lambda: labeller.metric(
        "ncs2_udev_events_total", 'action="remove",relevant="false"') == 1.0, 10)
    time.sleep(0.5)

    assert labeller.metric("ncs2_udev_events_total", 'action="add",relevant="false"') == 1.0
    assert labeller.metric("ncs2_bus_scans_total", 'reason="event"') == scans
    assert len(api.requests) == requests
    assert labeller.count("Received a USB") == 0


def test_a_missed_removal_is_healed_by_the_resync(
    bed: Testbed, api: FakeApiServer, start_on_bed: Start, features_dir: Path
) -> None:
    stick = bed.add_usb_device("1-2", IDLE_NCS2)
    labeller = start_on_bed(resync="1", grace="0")
    assert api.wait_for(lambda s: len(s.patches(NODE)) == 1, timeout=10)

    bed.remove_device(stick, announce=False)  # the uevent is lost, as on ENOBUFS
    assert api.wait_for(lambda s: len(s.patches(NODE)) == 2, timeout=10)

    assert features(features_dir) == []
    assert names(api) == {}
    assert labeller.count("Received a USB") == 0


def test_the_udev_source_works_too(
    bed: Testbed, api: FakeApiServer, start_on_bed: Start, features_dir: Path
) -> None:
    labeller = start_on_bed("--udev-source", "udev")

    bed.add_usb_device("1-2", IDLE_NCS2)

    assert api.wait_for(lambda s: len(s.patches(NODE)) == 1, timeout=10)
    assert features(features_dir) == ["intel.com/ncs2=1", "ncs2.intel.com/MYRIAD.FP16=true"]
    assert labeller.count("Watching udev USB events") == 1
