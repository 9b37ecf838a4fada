"""Probes, a stuck loop, and feature-file faults the labeller must ride out."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.apiserver import FakeApiServer
from support.labeller_proc import LabellerProcess, wait_until
from support.mounts import fill, small_tmpfs
from support.sysfs_tree import IDLE_NCS2, SysfsTree

from .conftest import NODE

Start = Callable[..., LabellerProcess]


def test_probes_answer_once_the_first_reconcile_is_done(
    tree: SysfsTree, api: FakeApiServer, start: Start
) -> None:
    tree.device("1-2", IDLE_NCS2)

    with start() as labeller:
        labeller.wait_ready()
        assert labeller.get("/healthz") == (200, "ok\n")
        assert labeller.get("/readyz") == (200, "ok\n")
        assert labeller.get("/nope")[0] == 404
        _, text = labeller.get("/metrics")

    assert 'ncs2_labeller_build_info{version="0.1.0"} 1.0' in text
    assert "process_resident_memory_bytes" in text


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "small") as mount:
        yield mount


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_failing_disk_keeps_the_old_file_and_converges(
    tree: SysfsTree, api: FakeApiServer, kubeconfig: Path, small_mount: Path, fault: str
) -> None:
    tree.device("1-2", IDLE_NCS2)
    with LabellerProcess(["--node-name", NODE, "--kubeconfig", str(kubeconfig),
                          "--sysfs-root", str(tree.root), "--features-dir", str(small_mount),
                          "--resync-interval", "1", "--removal-grace", "0"]) as labeller:
        labeller.wait_ready()
        before = (small_mount / "ncs2").read_text()
        if fault == "full":
            fill(small_mount / "filler")
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)

        tree.device("1-3", IDLE_NCS2)
        assert labeller.wait_for_log(r"Cannot write .*/ncs2: .*; the old file stays", 10)
        assert (small_mount / "ncs2").read_text() == before
        # The Node is still brought up to date while the disk is failing.
        assert api.wait_for(lambda s: len(s.patches(NODE)) == 2, timeout=10)
        assert wait_until(lambda: (labeller.metric(
            "ncs2_feature_file_writes_total", 'result="failed"') or 0) >= 2, 15)
        # Retried every 5 s, not on every turn of the loop.
        failed = labeller.metric("ncs2_feature_file_writes_total", 'result="failed"') or 0
        assert failed <= 3

        if fault == "full":
            (small_mount / "filler").unlink()
        else:
            subprocess.run(["mount", "-o", "remount,rw", str(small_mount)], check=True)
        assert labeller.wait_for_log("Wrote .*/ncs2 again after the earlier failure", 15)

    assert (small_mount / "ncs2").read_text().splitlines()[1] == "intel.com/ncs2=2"
    assert labeller.count(" ERROR ") == 1
    assert os.listdir(small_mount / ".ncs2-tmp") == []


def test_an_unreadable_sysfs_is_logged_and_the_state_kept(
    tree: SysfsTree, api: FakeApiServer, start: Start, features_dir: Path
) -> None:
    tree.device("1-2", IDLE_NCS2)
    with start(resync="1") as labeller:
        labeller.wait_ready()
        os.rename(tree.root / "bus", tree.root / "bus.away")
        assert labeller.wait_for_log("Cannot scan the USB bus: .* keeping the published state",
                                     10)
        assert (features_dir / "ncs2").read_text().splitlines()[1] == "intel.com/ncs2=1"
        os.rename(tree.root / "bus.away", tree.root / "bus")
        tree.device("1-3", IDLE_NCS2)
        assert api.wait_for(lambda s: len(s.patches(NODE)) == 2, timeout=10)


def test_garbage_devices_warn_once_not_every_resync(
    tree: SysfsTree, api: FakeApiServer, start: Start
) -> None:
    tree.device("1-2", IDLE_NCS2)
    tree.device("1-3", {**IDLE_NCS2, "idProduct": "zz\n85"})
    with start(resync="1") as labeller:
        labeller.wait_ready()
        assert wait_until(lambda: (labeller.metric("ncs2_bus_scans_total",
                                                   'reason="resync"') or 0) >= 3, 10)

    assert labeller.count(r"WARNING .*Skipping USB device 1-3: idProduct is not a 4-digit "
                          r"hex id$") == 1


def test_json_logs_are_one_object_per_line(tree: SysfsTree, features_dir: Path) -> None:
    import json

    tree.device("1-2", IDLE_NCS2)
    with LabellerProcess(["--no-api", "--log-format", "json", "--sysfs-root",
                          str(tree.root), "--features-dir", str(features_dir)]) as labeller:
        labeller.wait_ready()
        labeller.stop()

    records = [json.loads(line) for line in labeller.lines]
    assert {"ts", "level", "logger", "msg"} <= set(records[0])
    assert "Discovered MYRIAD: Intel Movidius Myriad X VPU (FP16)" in [r["msg"] for r in records]


def test_threads_are_reported_dead_by_healthz() -> None:
    from labeller.health import Probes

    alive = threading.Event()
    probes = Probes(heartbeat=lambda: 100.0, ready=lambda: True,
                    threads_alive=alive.is_set, stall_limit=5, clock=lambda: 102.0)

    assert probes.health() == (False, "node publisher thread died")
    alive.set()
    assert probes.health() == (True, "ok")
    probes.clock = lambda: 106.0
    assert probes.health() == (False, "event loop stalled for 6 s")
