"""Whatever the runtime or the child says is untrusted: it never makes a bad label or line.

Crafted answers come two ways: through a stand-in runtime and the real probe, and from a
fake interpreter that prints an answer of our choosing, to test the parent's checks of a
probe that misbehaves.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from nfd_hook import discovery, labels, openvino
from nfd_hook.openvino import RuntimeDevice
from support.sysfs_tree import IDLE_NCS2, SysfsTree

Answers = Callable[[Sequence[str], Sequence[str]], dict[str, Any]]
Scan = Callable[[], discovery.Discovery]

FALLBACK = "sticks keep the catalogue's names and capabilities"
X_NAME = "Intel Movidius Myriad X VPU"


@pytest.mark.parametrize(("name", "port"), [
    ("MYRIAD.1.2-ma2480", "1-2"),
    ("MYRIAD.1.4.3-ma2480", "1-4.3"),
    ("MYRIAD.3.1.2.3.4.5.6.7-ma2480", "3-1.2.3.4.5.6.7"),
    ("MYRIAD.1.5-ma2450", "1-5"),
    ("MYRIAD", None),
    ("MYRIAD.1.2", None),
    ("MYRIAD.1.2-ma2485", None),
    ("MYRIAD.1-ma2480", None),
    ("MYRIAD.0.2-ma2480", None),  # bus 0 does not exist
    ("MYRIAD.1.0-ma2480", None),  # nor does port 0
    ("MYRIAD.1.2.3.4.5.6.7.8.9-ma2480", None),  # deeper than sysfs names go
    ("MYRIAD.1.2-ma2480\n", None),
    ("myriad.1.2-ma2480", None),
    ("GPU.1.2-ma2480", None),
])
def test_port_of_reads_only_the_plugins_naming(name: str, port: str | None) -> None:
    assert openvino.port_of(name) == port


def test_crafted_names_and_capabilities_make_no_bad_label_or_line(
    tree: SysfsTree, scan: Scan, standin: Callable[..., Path], myriad_answers: Answers,
) -> None:
    tree.device("1-2", IDLE_NCS2)
    tree.device("1-3", IDLE_NCS2)
    names = ["MYRIAD.1.2-ma2480", "MYRIAD.1.3-ma2480"]
    answers = myriad_answers(names, [])
    answers["properties"][names[0]] = {
        "FULL_DEVICE_NAME": "Intel Movidius\nMyriad X VPU\r\nncs2.intel.com/evil=1\x1b[0m",
        "OPTIMIZATION_CAPABILITIES": [
            "BAD NAME", "FP16\n", "FP16", "FP16", "0.FP16", "a/b", "", "EXPORT_IMPORT_",
            "X" * 33, "INT8", 7, None,
        ],
    }
    answers["properties"][names[1]] = {
        "FULL_DEVICE_NAME": "A" * 500, "OPTIMIZATION_CAPABILITIES": "FP16",
    }
    standin("2022.3", answers)

    result = openvino.query("on")
    found = openvino.enrich(scan(), result)

    assert result.devices == (
        RuntimeDevice(names[0], "1-2",
                      "Intel Movidius Myriad X VPU ncs2.intel.com/evil=1 [0m",
                      ("FP16", "INT8")),
        RuntimeDevice(names[1], "1-3", "A" * openvino.FULL_NAME_MAX, ("FP16",)),
    )
    assert labels.render_nfd(found.feature_labels()) == (
        "intel.com/ncs2=2\n"
        "ncs2.intel.com/MYRIAD.0.FP16=true\n"
        "ncs2.intel.com/MYRIAD.0.INT8=true\n"
        "ncs2.intel.com/MYRIAD.1.FP16=true\n"
    )
    assert found.name_annotations() == {
        "ncs2.intel.com/MYRIAD.0.name": "Intel Movidius Myriad X VPU ncs2.intel.com/evil=1 [0m",
        "ncs2.intel.com/MYRIAD.1.name": "A" * openvino.FULL_NAME_MAX,
    }


def test_nothing_usable_keeps_the_catalogue_values(
    tree: SysfsTree, scan: Scan, standin: Callable[..., Path], myriad_answers: Answers,
) -> None:
    tree.device("1-2", IDLE_NCS2)
    answers = myriad_answers(["MYRIAD"], [])
    answers["properties"]["MYRIAD"] = {
        "FULL_DEVICE_NAME": "\n\t \x00", "OPTIMIZATION_CAPABILITIES": ["BAD NAME", "FP16\n"],
    }
    standin("2022.3", answers)

    found = openvino.enrich(scan(), openvino.query("on"))

    assert found.counted[0].model == ("Myriad X", X_NAME, ("FP16",))


@pytest.fixture
def fake_python(tmp_path: Path) -> Callable[..., str]:
    """An 'interpreter' that ignores the probe and prints what the test wants."""

    def write(stdout: bytes, stderr: bytes = b"", code: int = 0) -> str:
        script = tmp_path / "fake-python"
        script.write_text(
            f"#!{sys.executable}\nimport sys\n"
            f"sys.stdout.buffer.write({stdout!r})\nsys.stderr.buffer.write({stderr!r})\n"
            f"sys.exit({code})\n")
        script.chmod(0o755)
        return str(script)

    return write


def answer(devices: list[Any], **extra: Any) -> bytes:
    return json.dumps({"api": "openvino.Core", "version": "2026.4.1", "devices": devices,
                       "failed": [], **extra}).encode()


@pytest.mark.parametrize(("stdout", "reason"), [
    (b"", "the probe's answer is not JSON"),
    (b"MYRIAD FP16", "the probe's answer is not JSON"),
    (b"[]", "the probe's answer is not a JSON object"),
    (b" " * (openvino.ANSWER_MAX + 1) + b"{}",
     f"the probe's answer exceeds {openvino.ANSWER_MAX} bytes"),
])
def test_an_unreadable_answer_is_a_failure(
    stdout: bytes, reason: str, fake_python: Callable[..., str],
) -> None:
    assert openvino.query("on", python=fake_python(stdout)) == openvino.QueryResult(
        (), f"OpenVINO query failed: {reason}; {FALLBACK}", logging.WARNING, None)


def test_malformed_device_entries_are_skipped(fake_python: Callable[..., str]) -> None:
    good = {"name": "MYRIAD", "full_name": X_NAME, "capabilities": ["FP16"]}
    devices: list[Any] = [
        "MYRIAD", None, {"name": 1, "full_name": X_NAME, "capabilities": []},
        {"name": "MYRIAD", "full_name": None, "capabilities": []},
        {"name": "MYRIAD", "full_name": X_NAME, "capabilities": "FP16"}, good,
    ]

    result = openvino.query("on", python=fake_python(answer(devices)))

    assert result.devices == (RuntimeDevice("MYRIAD", None, X_NAME, ("FP16",)),)


def test_a_name_that_needed_cleaning_cannot_pass_for_a_lone_stick(
    tree: SysfsTree, scan: Scan, fake_python: Callable[..., str],
) -> None:
    # The probe passes only MYRIAD names on, so only a misbehaving probe can send this.
    tree.device("1-2", IDLE_NCS2)
    spoof = {"name": "MYRIAD\n", "full_name": "spoofed", "capabilities": ["SPOOFED"]}
    before = scan()

    result = openvino.query("on", python=fake_python(answer([spoof])))

    assert result.devices == (RuntimeDevice("'MYRIAD\\n'", None, "spoofed", ("SPOOFED",)),)
    assert openvino.enrich(before, result) == before


def test_crafted_api_and_version_stay_on_one_bounded_line(
    fake_python: Callable[..., str],
) -> None:
    stdout = json.dumps({"api": "x\n" * 100, "version": "2026\r\n\x07", "devices": [],
                         "failed": [{"name": "MYRIAD\n", "error": "E\n" * 300}]}).encode()

    result = openvino.query("on", python=fake_python(stdout))

    assert result.runtime == "OpenVINO 2026 (" + " ".join(["x"] * 32) + ")"
    assert result.note is not None
    assert result.note.isprintable()
    assert len(result.note) < 500


def test_the_probes_own_line_is_preferred_to_the_runtimes_chatter(
    fake_python: Callable[..., str],
) -> None:
    stderr = (b"openvino_probe: cannot import openvino: ImportError: \x1b[1mbroken\x1b[0m\n"
              b"[ WARN ] teardown chatter\n")

    result = openvino.query("on", python=fake_python(b"", stderr, 1))

    assert result.note == (
        f"OpenVINO query failed: cannot import openvino: ImportError: [1mbroken [0m; {FALLBACK}")


def test_without_its_own_line_the_last_stderr_line_is_the_reason(
    fake_python: Callable[..., str],
) -> None:
    result = openvino.query("auto", python=fake_python(b"", b"first\nSegfault \xff\n\n", 2))

    assert result == openvino.QueryResult(
        (), f"OpenVINO query failed: Segfault \ufffd; {FALLBACK}", logging.INFO, None)


def test_a_directory_named_openvino_where_the_probe_runs_is_not_imported(
    tmp_path: Path, standin: Callable[..., Path], myriad_answers: Answers,
) -> None:
    standin("2021.4", myriad_answers(["MYRIAD"], ["FP16"]))
    shadow = tmp_path / "cwd" / "openvino"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise SystemExit('shadowed')\n")

    proc = subprocess.run([sys.executable, "-m", "nfd_hook.openvino_probe"],
                          cwd=shadow.parent, capture_output=True, text=True, timeout=60,
                          check=False)

    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["api"] == "openvino.inference_engine.IECore"


def test_the_probe_keeps_to_python_3_7_syntax() -> None:
    # It may be run by an older interpreter carrying openvino 2021.4 (CPython 3.6-3.9).
    import ast

    source = Path(openvino.PROBE_PATH).read_text()
    ast.parse(source, feature_version=(3, 7))


def test_an_endless_answer_is_cut_at_the_cap_not_read_whole(tmp_path: Path) -> None:
    import time

    chatter = tmp_path / "chatter"
    chatter.write_text("#!/bin/sh\nexec yes\n")
    chatter.chmod(0o755)

    started = time.monotonic()
    result = openvino.query("on", timeout=5, python=str(chatter))

    assert time.monotonic() - started < 3
    assert result.note == (
        f"OpenVINO query failed: the probe's answer exceeds {openvino.ANSWER_MAX} bytes; "
        f"{openvino.FALLBACK}")


def test_a_deeply_nested_answer_is_not_json(fake_python: Callable[..., str]) -> None:
    result = openvino.query("on", python=fake_python(b"[" * 100_000 + b"]" * 100_000))

    assert result.note == f"OpenVINO query failed: the probe's answer is not JSON; " \
        f"{openvino.FALLBACK}"
