"""Stand-in `openvino` packages for the probe's child process, one per API generation.

No MYRIAD plugin can be installed here (field notes, section 3), so each generation's
recorded answers are replayed by a small package written into a temporary directory and
put first on the child's PYTHONPATH. Each stand-in exposes only its own generation's
names, so a probe that picked the wrong API would fail, and records every call it gets,
so a test can assert exactly what was asked (never a model load).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from nfd_hook import discovery
from support.sysfs_tree import SysfsTree, xhci

GEN_2021 = "2021.4"  # openvino.inference_engine.IECore, get_metric
GEN_2022 = "2022.3"  # openvino.runtime.Core, get_property
GEN_2026 = "2026.4"  # openvino.Core, get_property
GEN_NONE = "none"  # a future release without any API the probe knows

MYRIAD_X_NAME = "Intel Movidius Myriad X VPU"
MYRIAD_2_NAME = "Intel Movidius Myriad 2 VPU"
CAPS_2021 = ["FP16"]
CAPS_2022 = ["EXPORT_IMPORT", "FP16"]
# What 2026.4 raises when asked about MYRIAD (seen here with the real wheel).
NOT_REGISTERED = (
    "Exception from src/inference/src/cpp/core.cpp:268:\n"
    "Exception from src/inference/src/dev/core_impl.cpp:706:\n"
    'Device with "MYRIAD" name is not registered in the OpenVINO Runtime\n'
)
CPU_NAME = "Intel(R) Xeon(R) Processor"
CPU_CAPS = ["FP32", "FP16", "INT8", "BIN", "EXPORT_IMPORT"]

# The shared engine: answers from answers.json, every call appended to calls.jsonl.
_ENGINE = '''
import json, os, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "answers.json")) as answers_file:
    ANSWERS = json.load(answers_file)


def record(*call):
    with open(os.path.join(HERE, "calls.jsonl"), "a") as calls:
        calls.write(json.dumps(list(call)) + "\\n")


class StandInCore:
    def __init__(self):
        record(type(self).__name__)
        if ANSWERS.get("chatter"):
            print("runtime chatter on stdout")
            os.write(1, b"native chatter on fd 1\\n")
        if ANSWERS.get("on_create") == "hang":
            sleeper = subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(3600)"])
            with open(os.path.join(HERE, "pids.json"), "w") as pids:
                json.dump([os.getpid(), sleeper.pid], pids)
            time.sleep(3600)
        if ANSWERS.get("on_create") == "raise":
            raise RuntimeError(ANSWERS["message"])
        if ANSWERS.get("on_create") == "killed":
            os.kill(os.getpid(), 9)
        if ANSWERS.get("on_create") == "exit":
            sys.exit(3)

    @property
    def available_devices(self):
        record("available_devices")
        if "list_error" in ANSWERS:
            raise RuntimeError(ANSWERS["list_error"])
        return list(ANSWERS["available"])

    def _read(self, method, device, key):
        record(method, device, key)
        if device in ANSWERS.get("errors", {}):
            raise RuntimeError(ANSWERS["errors"][device])
        return ANSWERS["properties"][device][key]

    def _load(self, method):
        record(method)
        raise AssertionError("the probe must never load a model")

    def read_model(self, *args, **kwargs):
        self._load("read_model")

    def compile_model(self, *args, **kwargs):
        self._load("compile_model")

    def read_network(self, *args, **kwargs):
        self._load("read_network")

    def load_network(self, *args, **kwargs):
        self._load("load_network")
'''

_VERSIONS = {
    GEN_2021: "2021.4.2-3974-e2a469a3450-releases/2021/4",
    GEN_2022: "2022.3.0-9052-9752fafe8eb-releases/2022/3",
    GEN_2026: "2026.4.1-22982-e213a147257-releases/2026/4",
}

# Each generation's modules: path inside the package -> source.
_LAYOUTS = {
    GEN_2021: {
        "__init__.py": "",
        "inference_engine/__init__.py": (
            "from openvino._standin import StandInCore\n"
            f"__version__ = {_VERSIONS[GEN_2021]!r}\n"
            "def get_version():\n    return __version__\n"
            "class IECore(StandInCore):\n"
            "    def get_metric(self, device_name, metric_name):\n"
            "        return self._read('get_metric', device_name, metric_name)\n"
        ),
    },
    GEN_2022: {
        "__init__.py": "",
        "runtime/__init__.py": (
            "from openvino._standin import StandInCore\n"
            f"def get_version():\n    return {_VERSIONS[GEN_2022]!r}\n"
            "class Core(StandInCore):\n"
            "    def get_property(self, device_name, name):\n"
            "        return self._read('get_property', device_name, name)\n"
        ),
    },
    GEN_2026: {
        "__init__.py": (
            "from openvino._standin import StandInCore\n"
            f"__version__ = {_VERSIONS[GEN_2026]!r}\n"
            "class Core(StandInCore):\n"
            "    def get_property(self, device_name, name):\n"
            "        return self._read('get_property', device_name, name)\n"
        ),
    },
    GEN_NONE: {"__init__.py": "__version__ = '2030.1.0-1-0123abc-releases/2030/1'\n"},
}


def _answers(names: Sequence[str], caps: Sequence[str]) -> dict[str, Any]:
    properties: dict[str, dict[str, Any]] = {
        "CPU": {"FULL_DEVICE_NAME": CPU_NAME, "OPTIMIZATION_CAPABILITIES": CPU_CAPS},
    }
    for name in names:
        full_name = MYRIAD_2_NAME if name.endswith("-ma2450") else MYRIAD_X_NAME
        properties[name] = {"FULL_DEVICE_NAME": full_name,
                            "OPTIMIZATION_CAPABILITIES": list(caps)}
    return {"available": ["CPU", *names], "properties": properties}


@pytest.fixture
def myriad_answers() -> Callable[[Sequence[str], Sequence[str]], dict[str, Any]]:
    """Recorded answers for MYRIAD devices `names` with `caps`, after the usual CPU.

    The full name follows the chip in the name (-ma2450 is a Myriad 2), as the plugin's
    does; a bare MYRIAD is a Myriad X.
    """
    return _answers


@pytest.fixture
def package_dir(tmp_path: Path) -> Path:
    """Where the stand-in `openvino` package of this test is written."""
    return tmp_path / "standin" / "openvino"


@pytest.fixture
def standin(package_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Write a stand-in of `generation` answering `answers`, first on the import path.

    `import_error` makes `import openvino` itself fail, as a broken install does.
    """

    def write(generation: str, answers: dict[str, Any], *,
              import_error: str | None = None) -> Path:
        package_dir.mkdir(parents=True)
        (package_dir / "_standin.py").write_text(_ENGINE)
        (package_dir / "answers.json").write_text(json.dumps(answers))
        for relative, source in _LAYOUTS[generation].items():
            path = package_dir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if relative == "__init__.py" and import_error is not None:
                source = f"raise ImportError({import_error!r})\n"
            path.write_text(source)
        # The child imports it; the caller's auto mode must find it (never import it).
        monkeypatch.setenv("PYTHONPATH", str(package_dir.parent))
        monkeypatch.syspath_prepend(str(package_dir.parent))
        return package_dir

    return write


@pytest.fixture
def calls(package_dir: Path) -> Callable[[], list[list[str]]]:
    """Every call the stand-in received, in order: `[["Core"], ["available_devices"]...]`."""

    def read() -> list[list[str]]:
        path = package_dir / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    return read


@pytest.fixture
def tree(tmp_path: Path) -> SysfsTree:
    """An xHCI controller (USB 2 bus 1 with 7 ports, SuperSpeed bus 2 with 6), empty."""
    return xhci(tmp_path / "sys", ports=6)


@pytest.fixture
def scan(tree: SysfsTree) -> Callable[[], discovery.Discovery]:
    """Discover the test's tree as the hook does."""
    return lambda: discovery.discover(str(tree.root))


@pytest.fixture
def no_pythonpath(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child sees only the venv's own packages (the real wheel, when installed)."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert "PYTHONPATH" not in os.environ
