"""A runtime that fails, hangs, crashes or lacks MYRIAD leaves the catalogue in charge.

Every failure is one note at the mode's level (INFO in auto, WARNING in on), an empty
result, and a discovery that `enrich` leaves as it was.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from nfd_hook import discovery, labels, openvino
from support.sysfs_tree import IDLE_NCS2, SysfsTree

Answers = Callable[[Sequence[str], Sequence[str]], dict[str, Any]]
Scan = Callable[[], discovery.Discovery]
Calls = Callable[[], list[list[str]]]

FALLBACK = "sticks keep the catalogue's names and capabilities"
LEVELS = [("auto", logging.INFO), ("on", logging.WARNING)]
NOT_REGISTERED = (
    "Exception from src/inference/src/cpp/core.cpp:268:\n"
    "Exception from src/inference/src/dev/core_impl.cpp:706:\n"
    'Device with "MYRIAD" name is not registered in the OpenVINO Runtime\n'
)
NOT_REGISTERED_LINE = (
    'RuntimeError: Device with "MYRIAD" name is not registered in the OpenVINO Runtime')
# Bounds the hang test: the probe is killed at the timeout, then reaped at once.
HANG_TIMEOUT = 1.5
KILL_SLACK = 3.0


def failed(mode: str, level: int, reason: str) -> openvino.QueryResult:
    return openvino.QueryResult((), f"OpenVINO query failed: {reason}; {FALLBACK}", level,
                                None)


@pytest.mark.parametrize(("mode", "level"), LEVELS)
def test_a_runtime_that_raises_falls_back(
    mode: str, level: int, tree: SysfsTree, scan: Scan, standin: Callable[..., Path],
) -> None:
    tree.device("1-2", IDLE_NCS2)
    standin("2026.4", {"on_create": "raise", "message": (
        "Exception from src/inference/src/dev/core_impl.cpp:99:\n"
        "Cannot load library 'libopenvino_intel_cpu_plugin.so': libtbb.so.12: cannot "
        "open shared object file\n")})
    before = scan()

    result = openvino.query(mode)

    assert result == failed(mode, level, (
        "cannot start the OpenVINO runtime: RuntimeError: Cannot load library "
        "'libopenvino_intel_cpu_plugin.so': libtbb.so.12: cannot open shared object file"))
    assert openvino.enrich(before, result) is before


def test_a_broken_install_fails_at_import(standin: Callable[..., Path]) -> None:
    standin("2026.4", {}, import_error="libopenvino.so.2026: cannot open shared object file")

    assert openvino.query("on") == failed("on", logging.WARNING, (
        "cannot import openvino: ImportError: libopenvino.so.2026: cannot open shared "
        "object file"))


def test_a_runtime_with_no_known_api_is_named(standin: Callable[..., Path]) -> None:
    standin("none", {})

    assert openvino.query("on") == failed("on", logging.WARNING, (
        "openvino 2030.1.0 offers none of openvino.Core, openvino.runtime.Core, "
        "openvino.inference_engine.IECore"))


def test_a_runtime_that_cannot_list_falls_back(standin: Callable[..., Path]) -> None:
    standin("2022.3", {"list_error": "Exception from core.cpp:1:\nplugins.xml is corrupt\n"})

    assert openvino.query("auto") == failed("auto", logging.INFO, (
        "openvino.runtime.Core cannot list devices: RuntimeError: plugins.xml is corrupt"))


def _gone(pid: int) -> bool:
    # A killed orphan may linger as a zombie until its new parent reaps it: dead enough.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_hung_runtime_is_killed_with_everything_it_started(
    standin: Callable[..., Path],
) -> None:
    package = standin("2026.4", {"on_create": "hang"})

    start = time.monotonic()
    result = openvino.query("on", timeout=HANG_TIMEOUT)
    elapsed = time.monotonic() - start

    assert result == failed("on", logging.WARNING,
                            f"no answer within {HANG_TIMEOUT:g} s, the probe was killed")
    assert HANG_TIMEOUT <= elapsed < HANG_TIMEOUT + KILL_SLACK
    probe_pid, sleeper_pid = json.loads((package / "pids.json").read_text())
    assert _gone(probe_pid)
    deadline = time.monotonic() + KILL_SLACK
    while not _gone(sleeper_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(sleeper_pid)


@pytest.mark.parametrize(("on_create", "reason"), [
    ("killed", "the probe was killed by SIGKILL"),
    ("exit", "the probe exited with status 3"),
])
def test_a_probe_that_dies_is_reported_by_how(
    on_create: str, reason: str, standin: Callable[..., Path],
) -> None:
    standin("2026.4", {"on_create": on_create})

    assert openvino.query("on") == failed("on", logging.WARNING, reason)


@pytest.mark.parametrize(("mode", "level"), LEVELS)
def test_the_2026_runtime_lists_no_myriad(
    mode: str, level: int, standin: Callable[..., Path], myriad_answers: Answers,
    calls: Calls,
) -> None:
    standin("2026.4", myriad_answers([], []))

    assert openvino.query(mode) == openvino.QueryResult(
        (), f"OpenVINO 2026.4.1 (openvino.Core) lists no MYRIAD device; {FALLBACK}", level,
        "OpenVINO 2026.4.1 (openvino.Core)")
    assert calls() == [["Core"], ["available_devices"]]


def test_a_myriad_that_raises_like_2026_keeps_its_catalogue_data(
    tree: SysfsTree, scan: Scan, standin: Callable[..., Path], myriad_answers: Answers,
) -> None:
    tree.device("1-2", IDLE_NCS2)
    answers = myriad_answers(["MYRIAD"], ["FP16"])
    answers["errors"] = {"MYRIAD": NOT_REGISTERED}
    standin("2026.4", answers)
    before = scan()

    result = openvino.query("on")

    assert result == openvino.QueryResult(
        (), f"OpenVINO 2026.4.1 (openvino.Core) could not read 1 of 1 MYRIAD devices "
        f"(first MYRIAD: {NOT_REGISTERED_LINE}); those {FALLBACK}", logging.WARNING,
        "OpenVINO 2026.4.1 (openvino.Core)")
    assert openvino.enrich(before, result) is before


def test_one_failing_stick_does_not_hide_the_others(
    tree: SysfsTree, scan: Scan, standin: Callable[..., Path], myriad_answers: Answers,
) -> None:
    tree.device("1-2", IDLE_NCS2)
    tree.device("1-3", IDLE_NCS2)
    answers = myriad_answers(["MYRIAD.1.2-ma2480", "MYRIAD.1.3-ma2480"],
                             ["EXPORT_IMPORT", "FP16"])
    answers["errors"] = {"MYRIAD.1.2-ma2480": NOT_REGISTERED}
    standin("2022.3", answers)

    result = openvino.query("auto")
    found = openvino.enrich(scan(), result)

    assert result.note == (
        "OpenVINO 2022.3.0 (openvino.runtime.Core) could not read 1 of 2 MYRIAD devices "
        f"(first MYRIAD.1.2-ma2480: {NOT_REGISTERED_LINE}); those {FALLBACK}")
    assert result.level == logging.INFO
    assert labels.render_nfd(found.feature_labels()) == (
        "intel.com/ncs2=2\n"
        "ncs2.intel.com/MYRIAD.0.FP16=true\n"
        "ncs2.intel.com/MYRIAD.1.EXPORT_IMPORT=true\n"
        "ncs2.intel.com/MYRIAD.1.FP16=true\n"
    )


def test_runtime_chatter_on_stdout_does_not_spoil_the_answer(
    standin: Callable[..., Path], myriad_answers: Answers,
) -> None:
    answers = myriad_answers(["MYRIAD"], ["FP16"])
    answers["chatter"] = True
    standin("2026.4", answers)

    result = openvino.query("on")

    assert result.note is None
    assert [device.name for device in result.devices] == ["MYRIAD"]


def test_mode_off_never_starts_the_runtime(
    standin: Callable[..., Path], myriad_answers: Answers, calls: Calls,
) -> None:
    standin("2022.3", myriad_answers(["MYRIAD"], ["FP16"]))

    assert openvino.query("off") == openvino.QueryResult((), None, logging.INFO, None)
    assert calls() == []


def test_auto_mode_without_the_package_says_nothing_and_starts_nothing() -> None:
    # NB: run where no openvino can be found: -S leaves site-packages out, and the
    # project root is all that is on the path. Popen is removed to prove it is not used.
    root = Path(openvino.__file__).resolve().parents[1]
    code = ("import json, subprocess; del subprocess.Popen; from nfd_hook import openvino; "
            "print(json.dumps(openvino.query('auto')._asdict()))")
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          timeout=60, check=True, cwd=root.parent,
                          env={**os.environ, "PYTHONPATH": str(root)})

    assert json.loads(proc.stdout) == {"devices": [], "note": None, "level": logging.INFO,
                                       "runtime": None}


def test_a_missing_interpreter_is_a_failure_not_a_crash() -> None:
    assert openvino.query("on", python="/nonexistent/python") == failed(
        "on", logging.WARNING, "cannot run /nonexistent/python: No such file or directory")


def test_an_unknown_mode_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="must be one of auto, on, off, not 'yes'"):
        openvino.query("yes")
