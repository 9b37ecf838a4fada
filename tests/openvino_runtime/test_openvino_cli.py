"""`ncs2-nfd-hook --openvino`: the runtime's capabilities reach the printed features."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from nfd_hook import cli
from support.sysfs_tree import IDLE_NCS2, SysfsTree, booted

Answers = Callable[[Sequence[str], Sequence[str]], dict[str, Any]]


def test_runtime_capabilities_become_labels_for_idle_sticks_only(
    tree: SysfsTree, standin: Callable[..., Any], myriad_answers: Answers,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree.device("1-2", IDLE_NCS2)
    tree.device("1-3", booted(speed="480"))
    tree.device("1-4", IDLE_NCS2)
    standin("2022.3", myriad_answers(["MYRIAD.1.2-ma2480", "MYRIAD.1.4-ma2480"],
                                     ["EXPORT_IMPORT", "FP16"]))

    code = cli.main(["--sysfs-root", str(tree.root), "--openvino", "on"])
    out, err = capsys.readouterr()

    assert (code, err) == (0, "")
    assert out == (
        "intel.com/ncs2=3\n"
        "ncs2.intel.com/MYRIAD.0.EXPORT_IMPORT=true\n"
        "ncs2.intel.com/MYRIAD.0.FP16=true\n"
        "ncs2.intel.com/MYRIAD.1.FP16=true\n"
        "ncs2.intel.com/MYRIAD.2.EXPORT_IMPORT=true\n"
        "ncs2.intel.com/MYRIAD.2.FP16=true\n"
    )


def test_json_output_carries_the_runtime_answer(
    tree: SysfsTree, standin: Callable[..., Any], myriad_answers: Answers,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree.device("1-2", IDLE_NCS2)
    standin("2021.4", myriad_answers(["MYRIAD"], ["FP16"]))

    code = cli.main(["--sysfs-root", str(tree.root), "--openvino", "on", "--format", "json"])
    document = json.loads(capsys.readouterr().out)

    assert code == 0
    assert document["openvino"]["devices"] == [{
        "name": "MYRIAD", "port": None, "full_name": "Intel Movidius Myriad X VPU",
        "capabilities": ["FP16"],
    }]
    assert document["annotations"] == {
        "ncs2.intel.com/MYRIAD.name": "Intel Movidius Myriad X VPU"}


def test_off_never_looks_and_keeps_the_json_unchanged(
    tree: SysfsTree, standin: Callable[..., Any], myriad_answers: Answers,
    capsys: pytest.CaptureFixture[str], calls: Callable[[], list[list[str]]],
) -> None:
    tree.device("1-2", IDLE_NCS2)
    standin("2022.3", myriad_answers(["MYRIAD"], ["EXPORT_IMPORT", "FP16"]))

    cli.main(["--sysfs-root", str(tree.root), "--format", "json"])
    document = json.loads(capsys.readouterr().out)

    assert "openvino" not in document
    assert calls() == []
