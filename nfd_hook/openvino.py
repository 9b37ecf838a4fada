"""OpenVINO as an optional second opinion on the sticks found in sysfs.

sysfs stays the truth for which sticks exist and how many: OpenVINO lists only idle
sticks, so a stick busy in another pod would vanish if the runtime were asked to count.
The runtime is asked only for what the catalogue may get wrong, each idle stick's full
name and optimization capabilities, and its answer is matched to sysfs by USB port.

The runtime never runs in this process. It costs 54-70 MB resident, is native code that
can hang or crash, and must not stay loaded in a long-lived labeller, so `query` runs
`openvino_probe.py` in a child process of its own session and kills the whole session
when it overruns. This module therefore never imports openvino; in `auto` mode it only
looks whether the package could be found.

Everything the child prints is untrusted: it is bounded, reduced to one printable line
where it is text, and capabilities that could not form a valid label are dropped.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import signal
import subprocess
import sys
from typing import Any, NamedTuple

from nfd_hook import catalogue, discovery, labels, sysfs
from nfd_hook import openvino_probe as probe
from nfd_hook.text import one_line

log = logging.getLogger(__name__)

MODE_AUTO = "auto"  # ask only when the package is installed; a miss is an INFO line
MODE_ON = "on"  # always ask; a miss is a WARNING line
MODE_OFF = "off"  # never ask
MODES = (MODE_AUTO, MODE_ON, MODE_OFF)

# Creating a Core and listing devices takes about 0.5 s here; a runtime that has not
# answered in 10 s is stuck (the MYRIAD plugin's own boot wait is 15 s, and listing
# never boots a stick).
DEFAULT_TIMEOUT = 10.0
PROBE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openvino_probe.py")

# Bounds on the child's answer. A real answer is well under 1 KiB per device.
ANSWER_MAX = 256 * 1024
DEVICES_MAX = 64
CAPABILITIES_MAX = 64
# Text from the runtime ends in node annotations and log lines: one line, bounded. The
# names OpenVINO gives are under 40 characters.
FULL_NAME_MAX = 128
NAME_MAX = 64
REASON_MAX = 300

FALLBACK = "sticks keep the catalogue's names and capabilities"
FALLBACK_SOME = "those sticks keep the catalogue's names and capabilities"

# The MYRIAD plugin names a stick after its USB bus and port chain when more than one is
# plugged in, `MYRIAD.1.4.3-ma2480` for sysfs port `1-4.3`: ma2480 is a Myriad X, ma2450
# a Myriad 2. A lone stick is a bare `MYRIAD`.
_PORT_NAME_RE = re.compile(
    rf"{labels.DEVICE_CLASS}\.([0-9]{{1,3}})\.([0-9]{{1,3}}(?:\.[0-9]{{1,3}})*)-(?:ma2480|ma2450)"
)

# OpenVINO's capabilities are identifiers (FP16, EXPORT_IMPORT, BF16). Anything else is
# refused even where a label would allow it: `0.FP16` on a lone stick would render as
# `MYRIAD.0.FP16`, the key of another stick's capability.
_CAPABILITY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


class RuntimeDevice(NamedTuple):
    """One MYRIAD device as the runtime described it, text already made safe."""

    name: str
    # The sysfs port the name points at; None for a bare `MYRIAD` or a name we cannot read.
    port: str | None
    full_name: str
    # Only names that could form a valid label; possibly empty.
    capabilities: tuple[str, ...]


class QueryResult(NamedTuple):
    """What the runtime said, and the one line a caller should log about it."""

    devices: tuple[RuntimeDevice, ...]
    # None when there is nothing to say (mode off, not installed in auto mode, success).
    note: str | None
    # The logging level for `note`: INFO in auto mode, WARNING in on mode.
    level: int
    # `OpenVINO 2021.4.2 (openvino.inference_engine.IECore)`; None when it did not answer.
    runtime: str | None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form, for the hook's `--format json` output."""
        return {
            "runtime": self.runtime,
            "devices": [device._asdict() | {"capabilities": list(device.capabilities)}
                        for device in self.devices],
            "note": self.note,
        }


class ProbeFailed(Exception):
    """The child gave no usable answer; the message says why, on one line."""


def port_of(device_name: str) -> str | None:
    """The sysfs port a runtime device name points at: `MYRIAD.1.2-ma2480` is `1-2`."""
    match = _PORT_NAME_RE.fullmatch(device_name)
    if match is None:
        return None
    port = f"{match.group(1)}-{match.group(2)}"
    return port if sysfs.is_device_name(port) else None


def query(mode: str, timeout: float = DEFAULT_TIMEOUT,
          python: str = sys.executable) -> QueryResult:
    """Ask the runtime importable by `python` about its MYRIAD devices.

    Never raises for anything the runtime does: every failure becomes the note of an
    empty result, so the caller goes on with the catalogue. In auto mode, the package is
    looked for only when `python` is this interpreter (another one can only be asked).
    """
    if mode not in MODES:
        raise ValueError(f"OpenVINO mode must be one of {', '.join(MODES)}, not {mode!r}")
    level = logging.WARNING if mode == MODE_ON else logging.INFO
    if mode == MODE_OFF:
        return QueryResult((), None, level, None)
    if (mode == MODE_AUTO and python == sys.executable
            and importlib.util.find_spec("openvino") is None):
        return QueryResult((), None, level, None)

    try:
        document = _run_probe(python, timeout)
    except ProbeFailed as exc:
        return QueryResult((), f"OpenVINO query failed: {exc}; {FALLBACK}", level, None)

    runtime = (f"OpenVINO {one_line(str(document.get('version')), NAME_MAX)} "
               f"({one_line(str(document.get('api')), NAME_MAX)})")
    devices = _devices(document.get("devices"))
    failed = _failures(document.get("failed"))
    log.debug("%s described %d MYRIAD devices and failed on %d", runtime, len(devices),
              len(failed))
    note = None
    if failed:
        name, error = failed[0]
        note = (f"{runtime} could not read {len(failed)} of {len(failed) + len(devices)} "
                f"MYRIAD devices (first {name}: {error}); {FALLBACK_SOME}")
    elif not devices:
        note = f"{runtime} lists no MYRIAD device; {FALLBACK}"
    return QueryResult(devices, note, level, runtime)


def _run_probe(python: str, timeout: float) -> dict[str, Any]:
    # A session of its own lets one signal reach anything the runtime started.
    try:
        child = subprocess.Popen(
            [python, PROBE_PATH], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )
    except OSError as exc:
        raise ProbeFailed(f"cannot run {one_line(python, NAME_MAX)}: "
                          f"{exc.strerror or type(exc).__name__}") from exc

    # A hung or chattering runtime, or an interrupted caller, gets the whole session
    # killed and reaped, never left behind; what it prints is read with a deadline and a
    # cap, never in full. The pipes are closed either way: the labeller asks many times.
    try:
        out, err = _read_bounded(child, timeout)
    except BaseException:
        _kill_session(child)
        raise
    finally:
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()

    if child.returncode != 0:
        raise ProbeFailed(_failure_reason(child.returncode, err))
    try:
        document = json.loads(out)
    except (ValueError, RecursionError):
        raise ProbeFailed("the probe's answer is not JSON") from None
    if not isinstance(document, dict):
        raise ProbeFailed("the probe's answer is not a JSON object")
    return document


def _read_bounded(child: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bytes]:
    """The child's stdout and the tail of its stderr, read until it exits.

    Raises ProbeFailed when the deadline passes or stdout outgrows ANSWER_MAX; stderr is
    kept to its last ANSWER_MAX bytes, which is where the reason for a failure is.
    """
    import selectors
    import time

    assert child.stdout is not None and child.stderr is not None
    deadline = time.monotonic() + timeout
    out, err = bytearray(), bytearray()
    buffers = {child.stdout: out, child.stderr: err}
    with selectors.DefaultSelector() as selector:
        for stream in buffers:
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProbeFailed(f"no answer within {timeout:g} s, the probe was killed")
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer = buffers[key.fileobj]  # type: ignore[index]
                buffer += chunk
                if buffer is out and len(out) > ANSWER_MAX:
                    raise ProbeFailed(f"the probe's answer exceeds {ANSWER_MAX} bytes")
                if buffer is err and len(err) > 2 * ANSWER_MAX:
                    del err[:-ANSWER_MAX]
    try:
        child.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise ProbeFailed(f"no answer within {timeout:g} s, the probe was killed") from None
    return bytes(out), bytes(err)


def _kill_session(child: subprocess.Popen[bytes]) -> None:
    # NB: the child is not reaped yet, so its pid is still its session's and cannot have
    # been reused by an unrelated process group. Our ends of the pipes are closed (by
    # the caller) rather than drained: something that left the session could keep
    # writing forever.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def _failure_reason(returncode: int, stderr: bytes) -> str:
    """Why the child failed, preferring its own line over the runtime's chatter."""
    if returncode < 0:
        try:
            return f"the probe was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"the probe was killed by signal {-returncode}"
    lines = [line for line in stderr[-ANSWER_MAX:].decode("utf-8", "replace").splitlines()
             if line.strip()]
    ours = [line for line in lines if line.startswith(probe.ERROR_PREFIX)]
    if ours:
        return one_line(ours[-1][len(probe.ERROR_PREFIX):], REASON_MAX)
    if lines:
        return one_line(lines[-1], REASON_MAX)
    return f"the probe exited with status {returncode}"


def _devices(raw: Any) -> tuple[RuntimeDevice, ...]:
    """The well-formed device entries of the answer; a malformed one is skipped."""
    if not isinstance(raw, list):
        return ()
    devices = []
    for item in raw[:DEVICES_MAX]:
        if not isinstance(item, dict):
            continue
        name, full_name, capabilities = (
            item.get("name"), item.get("full_name"), item.get("capabilities"))
        if not (isinstance(name, str) and isinstance(full_name, str)
                and isinstance(capabilities, list)):
            continue
        # NB: a name cleaned into `MYRIAD` would pass for a lone stick; one that needs
        # cleaning is shown quoted instead, and so can match nothing.
        shown = one_line(name, NAME_MAX)
        if shown != name:
            shown = one_line(ascii(name), NAME_MAX)
        devices.append(RuntimeDevice(
            shown, port_of(name), one_line(full_name, FULL_NAME_MAX),
            _capabilities(capabilities),
        ))
    return tuple(devices)


def _capabilities(raw: list[Any]) -> tuple[str, ...]:
    # Dropped, never repaired: `FP16\n` is not FP16 by our word, and an escaped name
    # would be a label nobody selects on. labels.feature_labels checks again per index.
    kept: list[str] = []
    for item in raw[:CAPABILITIES_MAX]:
        if (isinstance(item, str) and item not in kept
                and _CAPABILITY_RE.fullmatch(item) is not None
                and labels.is_qualified_name(labels.device_key(None, item))):
            kept.append(item)
    return tuple(kept)


def _failures(raw: Any) -> list[tuple[str, str]]:
    if not isinstance(raw, list):
        return []
    return [
        (one_line(item["name"], NAME_MAX), one_line(item["error"], REASON_MAX))
        for item in raw[:DEVICES_MAX]
        if isinstance(item, dict) and isinstance(item.get("name"), str)
        and isinstance(item.get("error"), str)
    ]


def enrich(found: discovery.Discovery, result: QueryResult) -> discovery.Discovery:
    """`found` with each described idle stick carrying the runtime's name and capabilities.

    A runtime device is matched to the counted idle stick at its port; a bare `MYRIAD`
    to the only idle stick, and to none when sysfs has several (it cannot say which).
    Booted sticks are invisible to the runtime and keep the catalogue's data; runtime
    devices sysfs does not have are ignored, since sysfs decides what exists. An empty
    name or capability list from the runtime leaves the catalogue's in place.
    """
    if not result.devices:
        return found

    # Only counted idle sticks can be what the runtime lists; names point at their ports.
    idle = [stick for stick in found.counted if stick.state == catalogue.STATE_IDLE]
    by_port: dict[str, RuntimeDevice] = {}
    for described in result.devices:
        if described.port is not None:
            by_port.setdefault(described.port, described)
    # A bare MYRIAD names no port: it can only be the one idle stick, if there is one.
    lone: RuntimeDevice | None = None
    if len(result.devices) == 1 and result.devices[0].name == labels.DEVICE_CLASS:
        if len(idle) == 1:
            lone = result.devices[0]
        else:
            log.debug("OpenVINO lists a bare %s but sysfs has %d idle sticks; none is "
                      "described by it", labels.DEVICE_CLASS, len(idle))

    # Replace the model of each matched stick; order and indices stay sysfs's.
    sticks = []
    used: set[str] = set()
    for stick in found.sticks:
        device: RuntimeDevice | None = None
        if stick.counted and stick.state == catalogue.STATE_IDLE:
            device = lone or by_port.get(stick.usb.port)
        model = stick.model
        if device is None or model is None:
            sticks.append(stick)
            continue
        used.add(device.name)
        sticks.append(stick._replace(model=catalogue.Model(
            model.name, device.full_name or model.full_name,
            device.capabilities or model.capabilities,
        )))

    for described in result.devices:
        if described.name not in used:
            log.debug("OpenVINO device %s matches no idle stick in sysfs; it is ignored",
                      described.name)
    return found._replace(sticks=tuple(sticks))
