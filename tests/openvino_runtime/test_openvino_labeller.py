"""The labeller with a runtime that knows MYRIAD: richer labels that survive a boot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from support.apiserver import FakeApiServer
from support.labeller_proc import LabellerProcess, wait_until, write_kubeconfig
from support.sysfs_tree import IDLE_NCS2, SysfsTree, booted

Answers = Callable[[Sequence[str], Sequence[str]], dict[str, Any]]
NODE = "node-ov"
X_NAME = "Intel Movidius Myriad X VPU"


def test_runtime_data_is_published_and_kept_through_a_boot(
    tree: SysfsTree, standin: Callable[..., Any], myriad_answers: Answers,
    calls: Callable[[], list[list[str]]], tmp_path: Path,
) -> None:
    # USB 2 port 4 and SuperSpeed port 3 are one connector (support.sysfs_tree.xhci).
    tree.device("1-2", IDLE_NCS2)
    tree.device("1-4", IDLE_NCS2)
    standin("2022.3", myriad_answers(["MYRIAD.1.2-ma2480", "MYRIAD.1.4-ma2480"],
                                     ["EXPORT_IMPORT", "FP16"]))
    features = tmp_path / "features.d"
    expected = [
        "intel.com/ncs2=2",
        "ncs2.intel.com/MYRIAD.0.EXPORT_IMPORT=true", "ncs2.intel.com/MYRIAD.0.FP16=true",
        "ncs2.intel.com/MYRIAD.1.EXPORT_IMPORT=true", "ncs2.intel.com/MYRIAD.1.FP16=true",
    ]

    with FakeApiServer() as api:
        api.add_node(NODE)
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
        with LabellerProcess(["--node-name", NODE, "--kubeconfig", str(kubeconfig),
                              "--sysfs-root", str(tree.root), "--features-dir", str(features),
                              "--openvino", "on", "--resync-interval", "1",
                              "--removal-grace", "5"]) as labeller:
            labeller.wait_ready()
            assert (features / "ncs2").read_text().splitlines()[1:] == expected
            queries = sum(call == ["available_devices"] for call in calls())

            # The stick in port 4 boots: the runtime no longer lists it, sysfs shows it as
            # f63b on the SuperSpeed bus; its labels stay those the runtime gave.
            tree.remove("1-4")
            tree.device("2-3", booted())
            assert wait_until(lambda: sum(c == ["available_devices"] for c in calls())
                              > queries, 10)
            assert wait_until(lambda: (labeller.metric(
                "ncs2_bus_scans_total", 'reason="resync"') or 0) >= 3, 10)

            assert (features / "ncs2").read_text().splitlines()[1:] == expected
            assert len(api.patches(NODE)) == 1
            assert api.node(NODE)["metadata"]["annotations"] == {
                "ncs2.intel.com/MYRIAD.0.name": X_NAME, "ncs2.intel.com/MYRIAD.1.name": X_NAME}
            # Asked once at start and once when the idle set changed, not at every resync.
            assert sum(c == ["available_devices"] for c in calls()) == queries + 1


def test_healthz_fails_while_a_hung_runtime_blocks_the_loop_and_recovers(
    tree: SysfsTree, standin: Callable[..., Any], tmp_path: Path,
) -> None:
    # A runtime that never answers stalls the scan until --openvino-timeout kills it;
    # with a stall limit below that timeout, /healthz must say so and then recover.
    tree.device("1-2", IDLE_NCS2)
    standin("2026.4", {"on_create": "hang"})

    with LabellerProcess(["--no-api", "--sysfs-root", str(tree.root), "--features-dir",
                          str(tmp_path / "features.d"), "--openvino", "on",
                          "--openvino-timeout", "6", "--stall-limit", "2"]) as labeller:
        assert wait_until(lambda: labeller.get("/healthz")[0] == 500, 10, step=0.1)
        assert labeller.get("/healthz")[1].startswith("event loop stalled for ")
        assert wait_until(lambda: labeller.get("/healthz") == (200, "ok\n"), 15, step=0.1)
        labeller.wait_ready()

    assert labeller.count(r"WARNING .*OpenVINO query failed: .*6") == 1
