"""Probes, a stuck loop, and feature-file faults the labeller must ride out."""

from __future__ import annotations

import os
import subprocess
import threading
import time
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


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_an_unreadable_sysfs_during_a_pending_removal_does_not_spin(
    tree: SysfsTree, api: FakeApiServer, start: Start, features_dir: Path
) -> None:
    tree.device("1-2", IDLE_NCS2)
    tree.device("1-3", IDLE_NCS2)
    with start(resync="1", grace="2") as labeller:
        labeller.wait_ready()
        tree.remove("1-3")
        assert labeller.wait_for_log("1 of 2 sticks gone from the bus", 10)
        os.rename(tree.root / "bus", tree.root / "bus.away")
        assert labeller.wait_for_log("Cannot scan the USB bus: .* keeping the published state",
                                     10)
        before = cpu_seconds(labeller.proc.pid)
        time.sleep(4)  # past the grace: the removal is due, the scan still fails

        assert cpu_seconds(labeller.proc.pid) - before < 0.5
        assert labeller.count("Cannot scan the USB bus") == 1
        assert (features_dir / "ncs2").read_text().splitlines()[1] == "intel.com/ncs2=2"
        os.rename(tree.root / "bus.away", tree.root / "bus")
        assert labeller.wait_for_log("Scanned the USB bus again after the earlier failure", 10)
        assert api.wait_for(lambda s: len(s.patches(NODE)) == 2, timeout=10)
        assert (features_dir / "ncs2").read_text().splitlines()[1] == "intel.com/ncs2=1"


def test_a_failing_disk_with_an_overdue_refresh_does_not_spin(
    tree: SysfsTree, small_mount: Path
) -> None:
    tree.device("1-2", IDLE_NCS2)
    with LabellerProcess(["--no-api", "--sysfs-root", str(tree.root), "--features-dir",
                          str(small_mount), "--expiry", "30", "--resync-interval",
                          "20"]) as labeller:
        labeller.wait_ready()
        fill(small_mount / "filler")
        # The refresh falls due 10 s after the first write (a third of the expiry).
        assert labeller.wait_for_log("Cannot write .*/ncs2: No space left on device", 15)
        before_cpu = cpu_seconds(labeller.proc.pid)
        before = labeller.metric("ncs2_feature_file_writes_total", 'result="failed"') or 0
        time.sleep(3)

        assert cpu_seconds(labeller.proc.pid) - before_cpu < 0.5
        failed = labeller.metric("ncs2_feature_file_writes_total", 'result="failed"') or 0
        assert failed - before <= 1


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


def test_the_http_server_survives_resets_and_idle_floods(
    tree: SysfsTree, features_dir: Path
) -> None:
    import socket
    import struct

    with LabellerProcess(["--no-api", "--sysfs-root", str(tree.root), "--features-dir",
                          str(features_dir)]) as labeller:
        labeller.wait_ready()
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", labeller.metrics_port)) as rude:
                rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                rude.send(b"GET /metrics HTTP/1.0\r\n\r\n")
        idle = [socket.create_connection(("127.0.0.1", labeller.metrics_port))
                for _ in range(100)]
        for sock in idle[:20]:
            sock.send(b"GET /healthz HTTP/1.1\r\n")  # a slow client, dripping
        try:
            # Every connection is closed 3 s after it was accepted; probes answer by then.
            assert wait_until(lambda: labeller.get("/healthz") == (200, "ok\n"), 15, 0.2)
            assert len(os.listdir(f"/proc/{labeller.proc.pid}/fd")) < 100
        finally:
            for sock in idle:
                sock.close()
        labeller.stop()

    assert labeller.count("Traceback") == 0
    assert all(line.split()[1] in ("DEBUG", "INFO") for line in labeller.lines)


def test_metrics_listen_on_ipv6_too(tree: SysfsTree, features_dir: Path) -> None:
    import urllib.request

    from support.labeller_proc import free_port

    port = free_port()
    with LabellerProcess(["--no-api", "--sysfs-root", str(tree.root), "--features-dir",
                          str(features_dir)], metrics_port=port) as labeller:
        labeller.wait_ready()
    # LabellerProcess binds 127.0.0.1; this one binds [::1] explicitly.
    with LabellerProcess(["--no-api", "--sysfs-root", str(tree.root), "--features-dir",
                          str(features_dir), "--metrics-address", f"[::1]:{port}"],
                         metrics_port=port) as labeller:
        assert labeller.wait_for_log(f"Serving /metrics, /healthz and /readyz on ::1 port "
                                     f"{port}", 10)
        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"http://[::1]:{port}/healthz", timeout=2) as r:
                    return bool(r.status == 200)
            except OSError:
                return False
        assert wait_until(ready, 10, 0.1)
