"""The probe against the real current `openvino` wheel, which has no MYRIAD plugin.

These tests run only where the wheel is installed (the `test` extra pins it). They prove
the probe really opens today's API and reads both properties from a real device (the
CPU, through the hidden `--device-prefix`), and that a runtime without MYRIAD falls back
with exactly the promised line.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import subprocess
import sys

import pytest

from nfd_hook import openvino

# The test extra pins the wheel; without it these tests fail rather than skip.
WHEEL = importlib.metadata.version("openvino")

pytestmark = [pytest.mark.usefixtures("no_pythonpath")]

# An independent reading of the CPU's two properties, straight from the runtime.
ORACLE = """
import json, openvino
core = openvino.Core()
print(json.dumps({
    "name": core.get_property("CPU", "FULL_DEVICE_NAME"),
    "caps": list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
}))
"""


def run_probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, openvino.PROBE_PATH, *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_probe_reports_no_myriad_from_the_current_wheel() -> None:
    proc = run_probe()

    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "api": "openvino.Core", "version": WHEEL, "devices": [], "failed": [],
    }


def test_probe_reads_both_properties_of_a_real_device() -> None:
    oracle = subprocess.run([sys.executable, "-c", ORACLE], capture_output=True, text=True,
                            timeout=60, check=True)
    expected = json.loads(oracle.stdout)

    proc = run_probe("--device-prefix", "CPU")

    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["devices"] == [
        {"name": "CPU", "full_name": expected["name"], "capabilities": expected["caps"]},
    ]
    assert "FP32" in expected["caps"]


def test_probe_runs_as_a_module_too() -> None:
    proc = subprocess.run([sys.executable, "-m", "nfd_hook.openvino_probe"],
                          capture_output=True, text=True, timeout=60, check=False)

    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["api"] == "openvino.Core"


@pytest.mark.parametrize(("mode", "level"), [("auto", logging.INFO), ("on", logging.WARNING)])
def test_a_runtime_without_myriad_falls_back_with_one_line(mode: str, level: int) -> None:
    result = openvino.query(mode)

    assert result == openvino.QueryResult(
        devices=(),
        note=f"OpenVINO {WHEEL} (openvino.Core) lists no MYRIAD device; "
        "sticks keep the catalogue's names and capabilities",
        level=level,
        runtime=f"OpenVINO {WHEEL} (openvino.Core)",
    )


def test_the_caller_never_imports_openvino() -> None:
    code = ("import sys; from nfd_hook import openvino; openvino.query('on'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'openvino'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)

    assert proc.stdout == "[]\n"
