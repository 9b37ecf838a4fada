"""Ask an installed OpenVINO runtime about its MYRIAD devices and print one JSON answer.

This is the child half of `nfd_hook.openvino`: the labeller and the hook never import
openvino themselves (54-70 MB resident, native code that may hang or crash), they run this
file in a short-lived process and kill it when it overruns. It reads two device properties
and nothing else: listing does not boot or lock a stick, loading a model would, so no model
is ever read or compiled here.

It depends on the standard library only and keeps to Python 3.7 syntax, so that it can be
run by another interpreter than the caller's: the only PyPI wheel with a MYRIAD plugin
(openvino 2021.4) exists for CPython 3.6-3.9 only.

Output on stdout, exit 0:
    {"api": "openvino.Core", "version": "2026.4.1",
     "devices": [{"name": "MYRIAD", "full_name": "...", "capabilities": ["FP16"]}],
     "failed": [{"name": "MYRIAD.1.2-ma2480", "error": "RuntimeError: ..."}]}
On failure: exit 1 and one stderr line starting with `openvino_probe: `.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import os
import sys
from collections.abc import Callable
from typing import IO, Any, NamedTuple

DEVICE_CLASS = "MYRIAD"
FULL_DEVICE_NAME = "FULL_DEVICE_NAME"
OPTIMIZATION_CAPABILITIES = "OPTIMIZATION_CAPABILITIES"

# The three API generations, newest first (see the field notes, section 3).
API_CORE = "openvino.Core"  # 2023.0 and later: no MYRIAD plugin any more
API_RUNTIME = "openvino.runtime.Core"  # 2022.x: get_property
API_IECORE = "openvino.inference_engine.IECore"  # up to 2021.4: get_metric

# The caller finds our message among whatever the runtime itself printed by this prefix.
ERROR_PREFIX = "openvino_probe: "
EXIT_FAILED = 1
# Bounds on what is passed on: the caller bounds again, these only keep the answer small.
TEXT_MAX = 1024
LIST_MAX = 64
ERROR_MAX = 300


class ProbeError(Exception):
    """The runtime could not be opened or listed; the message is the one stderr line."""


class Runtime(NamedTuple):
    """An opened runtime: which API it speaks and how to read one device property."""

    api: str
    version: str
    core: Any
    read: Callable[[str, str], Any]


def last_line(exc: BaseException) -> str:
    """`Type: message` on one line, from the message's last non-empty line.

    OpenVINO's C++ exceptions stack `Exception from <file>:<line>:` lines above the
    sentence that says what went wrong, which comes last.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__
    return "".join(c if c.isprintable() else " " for c in text)[:ERROR_MAX]


def _version(module: Any) -> str:
    # Every generation prints `2021.4.2-3974-<hash>-releases/2021/4`; the release is the
    # part before the first dash.
    raw = getattr(module, "__version__", None)
    if not isinstance(raw, str):
        get_version = getattr(module, "get_version", None)
        raw = get_version() if callable(get_version) else None
    return str(raw).split("-", 1)[0][:TEXT_MAX] if raw else "unknown"


def open_runtime() -> Runtime:
    """Open whichever API generation is installed, newest first.

    The newest is tried first because 2023-2025 still ship the older modules, deprecated
    and warning on import; 2026 has only `openvino.Core`.
    """
    try:
        openvino = importlib.import_module("openvino")
    except Exception as exc:  # a broken install fails in native code too
        raise ProbeError(f"cannot import openvino: {last_line(exc)}") from exc

    try:
        core_class = getattr(openvino, "Core", None)
        if core_class is not None:
            core = core_class()
            return Runtime(API_CORE, _version(openvino), core, core.get_property)
        runtime = _submodule("openvino.runtime")
        if hasattr(runtime, "Core"):
            core = runtime.Core()
            return Runtime(API_RUNTIME, _version(runtime), core, core.get_property)
        inference_engine = _submodule("openvino.inference_engine")
        if hasattr(inference_engine, "IECore"):
            core = inference_engine.IECore()
            return Runtime(API_IECORE, _version(inference_engine), core, core.get_metric)
    except Exception as exc:  # native runtimes raise what they like
        raise ProbeError(f"cannot start the OpenVINO runtime: {last_line(exc)}") from exc
    raise ProbeError(f"openvino {_version(openvino)} offers none of "
                     f"{API_CORE}, {API_RUNTIME}, {API_IECORE}")


def _submodule(name: str) -> Any:
    # A generation that lacks the module is not an error: the next one is tried.
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _text(value: Any) -> str:
    return str(value)[:TEXT_MAX]


def _text_list(value: Any) -> list[str]:
    # Capabilities come as a list of strings; a lone string must not become its letters,
    # and anything else in the list (None, a number) is not a capability name.
    if isinstance(value, str):
        return [_text(value)]
    try:
        items = list(itertools.islice(value, LIST_MAX))
    except TypeError:
        return []
    return [_text(item) for item in items if isinstance(item, str)]


def describe(runtime: Runtime, device_class: str = DEVICE_CLASS) -> dict[str, Any]:
    """The answer document for every listed device of `device_class`.

    A device whose properties cannot be read is reported under `failed` and the others
    are still described: one bad stick must not hide the rest.
    """
    try:
        listed = [_text(name) for name in
                  itertools.islice(runtime.core.available_devices, LIST_MAX)]
    except Exception as exc:  # native runtimes raise what they like
        raise ProbeError(f"{runtime.api} cannot list devices: {last_line(exc)}") from exc

    devices: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    for name in listed:
        if name != device_class and not name.startswith(device_class + "."):
            continue
        try:
            full_name = _text(runtime.read(name, FULL_DEVICE_NAME))
            capabilities = _text_list(runtime.read(name, OPTIMIZATION_CAPABILITIES))
        except Exception as exc:  # noqa: BLE001 - native code raises anything
            failed.append({"name": name, "error": last_line(exc)})
            continue
        devices.append({"name": name, "full_name": full_name, "capabilities": capabilities})
    return {"api": runtime.api, "version": runtime.version, "devices": devices,
            "failed": failed}


def _claim_stdout() -> IO[str]:
    """A private stream for the answer; fd 1 is pointed at stderr from here on.

    NB: the runtime's native code and Python code may both print to stdout, which would
    corrupt the JSON answer; whatever they print goes to stderr instead.
    """
    sys.stdout.flush()
    answer = os.fdopen(os.dup(1), "w", encoding="ascii")
    os.dup2(2, 1)
    return answer


def _forget_script_paths() -> None:
    """Keep the directories Python added for this script out of the import path.

    NB: run as a file, Python puts this directory first on sys.path, and the parent
    module `openvino.py` beside this one would shadow the runtime; run with -m, it puts
    the current directory first, which may hold an openvino source tree. The runtime is
    looked for where it is installed, and on PYTHONPATH, only.
    """
    if __package__ and sys.path and os.path.abspath(sys.path[0] or ".") == os.getcwd():
        del sys.path[0]
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]


def main(argv: list[str] | None = None) -> int:
    """Answer once. NB: it repoints fd 1, so it belongs in a process of its own."""
    parser = argparse.ArgumentParser(
        prog="openvino_probe",
        description="Print the MYRIAD devices an installed OpenVINO runtime lists, as JSON.",
    )
    # Tests point the probe at the CPU device to read real properties from a current
    # wheel, which has no MYRIAD plugin; nobody else needs it.
    parser.add_argument("--device-prefix", default=DEVICE_CLASS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    answer = _claim_stdout()
    try:
        document = describe(open_runtime(), args.device_prefix)
    except ProbeError as exc:
        print(f"{ERROR_PREFIX}{exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    json.dump(document, answer, ensure_ascii=True)
    answer.write("\n")
    answer.flush()
    return 0


if __name__ == "__main__":
    _forget_script_paths()
    sys.exit(main())
