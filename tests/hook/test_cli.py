"""The hook as a process: samples, flags, exit statuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import nfd_hook
from nfd_hook import labels
from support.sysfs_tree import SAMPLES

from .conftest import run_process

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "sysfs"

EXPECTED = {
    "one-idle-stick": "intel.com/ncs2=1\nncs2.intel.com/MYRIAD.FP16=true\n",
    "two-sticks-on-hub": (
        "intel.com/ncs2=2\n"
        "ncs2.intel.com/MYRIAD.0.FP16=true\n"
        "ncs2.intel.com/MYRIAD.1.FP16=true\n"
    ),
    "booted-on-usb3": (
        "intel.com/ncs2=2\n"
        "ncs2.intel.com/MYRIAD.0.FP16=true\n"
        "ncs2.intel.com/MYRIAD.1.FP16=true\n"
    ),
}


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_bundled_samples_print_their_features(sample: str) -> None:
    result = run_process("--sysfs-root", str(EXAMPLES / sample))

    assert (result.code, result.out, result.err) == (0, EXPECTED[sample], "")


def test_booted_sample_orders_by_connector_not_bus() -> None:
    result = run_process("--sysfs-root", str(EXAMPLES / "booted-on-usb3"), "--format", "json")

    devices = result.json()["devices"]
    assert [(d["port"], d["connector"], d["state"], d["index"]) for d in devices] == [
        ("2-3", "1-4", "booted", 0),
        ("1-5", "1-5", "idle", 1),
    ]


def snapshot(root: Path) -> dict[str, str]:
    """Files and symlinks of a tree, as the samples are committed (no empty dirs)."""
    entries = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if path.is_symlink():
            entries[relative] = "-> " + os.readlink(path)
        elif path.is_file():
            entries[relative] = path.read_text()
    return entries


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_committed_samples_match_their_builder(sample: str, tmp_path: Path) -> None:
    SAMPLES[sample](tmp_path)

    assert snapshot(EXAMPLES / sample) == snapshot(tmp_path)


def test_real_sysfs_of_this_machine_gives_valid_output() -> None:
    result = run_process()

    assert result.code == 0
    for line in result.out.splitlines():
        key, _, value = line.partition("=")
        assert labels.is_qualified_name(key) and labels.is_valid_label_value(value)
    if not os.path.isdir("/sys/bus/usb"):
        assert result.out == ""
        assert result.err == (
            "ncs2-nfd-hook: no Intel Movidius compute stick found (no USB bus in sysfs)\n"
        )


def test_version_flag() -> None:
    result = run_process("--version")

    assert (result.code, result.out) == (0, f"ncs2-nfd-hook {nfd_hook.__version__}\n")


def test_unknown_format_is_a_usage_error() -> None:
    result = run_process("--format", "yaml")

    assert (result.code, result.out) == (2, "")
    assert "invalid choice: 'yaml'" in result.err


def test_missing_root_is_exit_1_with_one_line(tmp_path: Path) -> None:
    result = run_process("--sysfs-root", str(tmp_path / "nope"))

    assert (result.code, result.out) == (1, "")
    assert result.err == (
        f"ncs2-nfd-hook: error: {tmp_path / 'nope'} is not a sysfs mount (no bus/ directory)\n"
    )


def test_the_hook_imports_nothing_heavy() -> None:
    sample = str(EXAMPLES / "one-idle-stick")
    code = (
        f"import sys, runpy; sys.argv = ['ncs2-nfd-hook', '--sysfs-root', {sample!r}];"
        "runpy.run_module('nfd_hook', run_name='__main__')"
    )
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write(' '.join(sorted(sys.modules))))\n" + code
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=False)

    loaded = set(proc.stderr.split())
    assert proc.returncode == 0
    assert not loaded & {"kubernetes", "pyudev", "openvino", "yaml", "json", "urllib3"}


def test_an_unwritable_stdout_is_one_error_line(tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "nfd_hook", "--sysfs-root", str(EXAMPLES / "one-idle-stick")],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=60, check=False)

    assert (proc.returncode, proc.stderr) == (
        1, "ncs2-nfd-hook: error: cannot write the features: No space left on device\n")


def test_an_empty_root_is_a_usage_error() -> None:
    result = run_process("--sysfs-root", "")

    assert (result.code, result.out) == (2, "")
    assert result.err.endswith("error: --sysfs-root must not be empty\n")


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1"])
def test_a_bad_openvino_timeout_is_a_usage_error(value: str) -> None:
    result = run_process("--openvino-timeout", value, "--openvino", "on")

    assert (result.code, result.out) == (2, "")
    assert result.err.endswith("error: --openvino-timeout must be a number from 1 to 600\n")
