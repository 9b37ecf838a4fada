"""Each OpenVINO API generation's recorded answers, mapped onto sysfs sticks by port.

The stand-ins replay what each generation answered for real sticks (field notes,
section 3): 2021.4 reports FP16, 2022.x adds EXPORT_IMPORT, a lone stick is `MYRIAD` and
several are `MYRIAD.<bus>.<ports>-ma2480` (`-ma2450` for a Myriad 2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from nfd_hook import discovery, labels, openvino
from nfd_hook.openvino import RuntimeDevice
from support.sysfs_tree import IDLE_NCS1, IDLE_NCS2, SysfsTree, booted

Answers = Callable[[Sequence[str], Sequence[str]], dict[str, Any]]
Scan = Callable[[], discovery.Discovery]
Calls = Callable[[], list[list[str]]]

X_NAME = "Intel Movidius Myriad X VPU"
NAME_KEY = "ncs2.intel.com/MYRIAD.name"


def feature_file(found: discovery.Discovery) -> str:
    return labels.render_nfd(found.feature_labels())


@pytest.mark.parametrize(
    ("generation", "caps", "method", "core"),
    [
        ("2021.4", ["FP16"], "get_metric", "IECore"),
        ("2022.3", ["EXPORT_IMPORT", "FP16"], "get_property", "Core"),
    ],
)
def test_each_generation_describes_a_lone_stick(
    generation: str, caps: list[str], method: str, core: str, tree: SysfsTree, scan: Scan,
    standin: Callable[..., Path], myriad_answers: Answers, calls: Calls,
) -> None:
    tree.device("1-2", IDLE_NCS2)
    standin(generation, myriad_answers(["MYRIAD"], caps))

    result = openvino.query("on")
    found = openvino.enrich(scan(), result)

    version = {"2021.4": "2021.4.2", "2022.3": "2022.3.0"}[generation]
    api = {"2021.4": "openvino.inference_engine.IECore",
           "2022.3": "openvino.runtime.Core"}[generation]
    assert result == openvino.QueryResult(
        (RuntimeDevice("MYRIAD", None, X_NAME, tuple(caps)),), None, logging.WARNING,
        f"OpenVINO {version} ({api})",
    )
    assert feature_file(found) == "intel.com/ncs2=1\n" + "".join(
        f"ncs2.intel.com/MYRIAD.{cap}=true\n" for cap in caps)
    assert found.name_annotations() == {NAME_KEY: X_NAME}
    # Listing and two properties of the one MYRIAD device; the CPU is never read.
    assert calls() == [
        [core], ["available_devices"],
        [method, "MYRIAD", "FULL_DEVICE_NAME"],
        [method, "MYRIAD", "OPTIMIZATION_CAPABILITIES"],
    ]


def several_sticks(tree: SysfsTree) -> None:
    """Idle sticks at 1-2, 1-4.3 (behind a hub), a Myriad 2 at 1-5; a busy one at 2-5."""
    tree.device("1-2", IDLE_NCS2)
    tree.hub("1-4", speed=480)
    tree.device("1-4.3", IDLE_NCS2)
    tree.device("1-5", IDLE_NCS1)
    tree.device("2-5", booted())  # USB 3 twin of port 1-6


SEVERAL = ["MYRIAD.1.2-ma2480", "MYRIAD.1.4.3-ma2480", "MYRIAD.1.5-ma2450"]


def test_several_sticks_are_matched_by_port_and_the_busy_one_keeps_the_catalogue(
    tree: SysfsTree, scan: Scan, standin: Callable[..., Path], myriad_answers: Answers,
) -> None:
    several_sticks(tree)
    standin("2022.3", myriad_answers(SEVERAL, ["EXPORT_IMPORT", "FP16"]))

    result = openvino.query("on")
    found = openvino.enrich(scan(), result)

    assert [(device.name, device.port) for device in result.devices] == [
        ("MYRIAD.1.2-ma2480", "1-2"), ("MYRIAD.1.4.3-ma2480", "1-4.3"),
        ("MYRIAD.1.5-ma2450", "1-5"),
    ]
    assert result.note is None
    assert feature_file(found) == (
        "intel.com/ncs2=4\n"
        "ncs2.intel.com/MYRIAD.0.EXPORT_IMPORT=true\n"
        "ncs2.intel.com/MYRIAD.0.FP16=true\n"
        "ncs2.intel.com/MYRIAD.1.EXPORT_IMPORT=true\n"
        "ncs2.intel.com/MYRIAD.1.FP16=true\n"
        "ncs2.intel.com/MYRIAD.2.EXPORT_IMPORT=true\n"
        "ncs2.intel.com/MYRIAD.2.FP16=true\n"
        "ncs2.intel.com/MYRIAD.3.FP16=true\n"
    )
    assert found.name_annotations() == {
        "ncs2.intel.com/MYRIAD.0.name": X_NAME,
        "ncs2.intel.com/MYRIAD.1.name": X_NAME,
        "ncs2.intel.com/MYRIAD.2.name": "Intel Movidius Myriad 2 VPU",
        "ncs2.intel.com/MYRIAD.3.name": X_NAME,
    }
    assert [stick.usb.port for stick in found.counted] == ["1-2", "1-4.3", "1-5", "2-5"]


def test_the_2021_wheel_maps_several_sticks_too(
    tree: SysfsTree, scan: Scan, standin: Callable[..., Path], myriad_answers: Answers,
    calls: Calls,
) -> None:
    several_sticks(tree)
    standin("2021.4", myriad_answers(SEVERAL, ["FP16"]))

    found = openvino.enrich(scan(), openvino.query("auto"))

    assert [stick.model for stick in found.counted] == [
        ("Myriad X", X_NAME, ("FP16",)), ("Myriad X", X_NAME, ("FP16",)),
        ("Myriad 2", "Intel Movidius Myriad 2 VPU", ("FP16",)),
        ("Myriad X", X_NAME, ("FP16",)),
    ]
    assert [call for call in calls() if call[0] == "get_metric"] == [
        ["get_metric", name, prop] for name in SEVERAL
        for prop in ("FULL_DEVICE_NAME", "OPTIMIZATION_CAPABILITIES")
    ]


def test_a_bare_myriad_is_the_only_idle_stick_even_beside_a_busy_one(
    tree: SysfsTree, scan: Scan, standin: Callable[..., Path], myriad_answers: Answers,
) -> None:
    tree.device("1-2", IDLE_NCS2)
    tree.device("2-3", booted())  # twin of 1-4, in use elsewhere: invisible to OpenVINO
    standin("2022.3", myriad_answers(["MYRIAD"], ["EXPORT_IMPORT", "FP16"]))

    found = openvino.enrich(scan(), openvino.query("on"))

    assert feature_file(found) == (
        "intel.com/ncs2=2\n"
        "ncs2.intel.com/MYRIAD.0.EXPORT_IMPORT=true\n"
        "ncs2.intel.com/MYRIAD.0.FP16=true\n"
        "ncs2.intel.com/MYRIAD.1.FP16=true\n"
    )


def test_a_bare_myriad_among_several_idle_sticks_changes_nothing(
    tree: SysfsTree, scan: Scan, standin: Callable[..., Path], myriad_answers: Answers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tree.device("1-2", IDLE_NCS2)
    tree.device("1-3", IDLE_NCS2)
    standin("2022.3", myriad_answers(["MYRIAD"], ["EXPORT_IMPORT", "FP16"]))
    before = scan()
    result = openvino.query("on")

    with caplog.at_level(logging.DEBUG, logger="nfd_hook.openvino"):
        after = openvino.enrich(before, result)

    assert after == before
    assert caplog.messages == [
        "OpenVINO lists a bare MYRIAD but sysfs has 2 idle sticks; none is described by it",
        "OpenVINO device MYRIAD matches no idle stick in sysfs; it is ignored",
    ]


def test_sysfs_decides_which_sticks_exist(
    tree: SysfsTree, scan: Scan, standin: Callable[..., Path], myriad_answers: Answers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 1-3 was unplugged after the runtime listed it; 1-4 booted (now at its twin 2-3).
    tree.device("1-2", IDLE_NCS2)
    tree.device("2-3", booted())
    names = ["MYRIAD.1.2-ma2480", "MYRIAD.1.3-ma2480", "MYRIAD.1.4-ma2480"]
    standin("2022.3", myriad_answers(names, ["EXPORT_IMPORT", "FP16"]))
    result = openvino.query("on")

    with caplog.at_level(logging.DEBUG, logger="nfd_hook.openvino"):
        found = openvino.enrich(scan(), result)

    assert feature_file(found) == (
        "intel.com/ncs2=2\n"
        "ncs2.intel.com/MYRIAD.0.EXPORT_IMPORT=true\n"
        "ncs2.intel.com/MYRIAD.0.FP16=true\n"
        "ncs2.intel.com/MYRIAD.1.FP16=true\n"
    )
    assert caplog.messages == [
        "OpenVINO device MYRIAD.1.3-ma2480 matches no idle stick in sysfs; it is ignored",
        "OpenVINO device MYRIAD.1.4-ma2480 matches no idle stick in sysfs; it is ignored",
    ]


def test_nothing_described_leaves_the_discovery_untouched(tree: SysfsTree, scan: Scan) -> None:
    tree.device("1-2", IDLE_NCS2)
    before = scan()

    assert openvino.enrich(before, openvino.query("off")) is before


def test_the_result_renders_as_json(
    tree: SysfsTree, standin: Callable[..., Path], myriad_answers: Answers,
) -> None:
    standin("2022.3", myriad_answers(["MYRIAD.1.2-ma2480"], ["EXPORT_IMPORT", "FP16"]))

    assert openvino.query("on").as_dict() == {
        "runtime": "OpenVINO 2022.3.0 (openvino.runtime.Core)",
        "devices": [{"name": "MYRIAD.1.2-ma2480", "port": "1-2", "full_name": X_NAME,
                     "capabilities": ["EXPORT_IMPORT", "FP16"]}],
        "note": None,
    }
