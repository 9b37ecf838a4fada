"""One settings object, built from flags and their `NCS2_*` environment twins.

Every flag has an environment twin so that a DaemonSet can configure the labeller without
rewriting its command; a flag given on the command line wins over its twin. The node name
also comes from `NODE_NAME` (the downward API's usual name) and the kubeconfig from
`KUBECONFIG`, as in every Kubernetes tool.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nfd_hook import __version__

ENV_PREFIX = "NCS2_"
# NFD reads feature files from this fixed path inside the worker; no flag of NFD's
# changes it, so ours defaults to it.
DEFAULT_FEATURES_DIR = "/etc/kubernetes/node-feature-discovery/features.d"
DEFAULT_METRICS_ADDRESS = ":8089"
# A stick re-enumerating on firmware boot is gone for up to 15 s (OpenVINO's own wait).
DEFAULT_REMOVAL_GRACE = 20.0
DEFAULT_DEBOUNCE = 1.0
DEFAULT_RESYNC = 60.0
DEFAULT_EXPIRY = 600.0
DEFAULT_API_TIMEOUT = 15
# NFD re-reads features.d every 60 s before v0.19: a shorter expiry could lapse unseen.
MIN_EXPIRY = 30.0
# The loop turns over every second; a scan or write stuck this long is a hung process.
DEFAULT_STALL_LIMIT = 30.0


class UsageError(Exception):
    """Flags that contradict each other or make no sense; exit status 2."""


@dataclass(frozen=True)
class Settings:
    node_name: str
    kubeconfig: str
    sysfs_root: str
    features_dir: str
    udev_source: str
    resync_interval: float
    debounce: float
    removal_grace: float
    expiry: float
    api_timeout: int
    openvino: str
    openvino_timeout: float
    openvino_python: str
    write_labels: bool
    no_api: bool
    metrics_address: str
    stall_limit: float
    once: bool
    log_level: str
    log_format: str


def _env_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise UsageError(f"not a boolean: {value[:40]!r}")


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    def twin(flag: str, default: str) -> str:
        # An empty variable is unset, as a DaemonSet's `value: ""` means.
        return env.get(ENV_PREFIX + flag.upper().replace("-", "_")) or default

    parser = argparse.ArgumentParser(
        prog="ncs2-labeller",
        description="Keep NFD's feature file and this Node's annotations true to the "
        "Intel Movidius compute sticks plugged into the node. Every flag can also be set "
        f"through an environment variable {ENV_PREFIX}<FLAG> (e.g. {ENV_PREFIX}LOG_LEVEL).",
    )
    add = parser.add_argument
    add("--node-name", default=twin("node-name", env.get("NODE_NAME", "")),
        help="the Node to annotate (default: $NODE_NAME, from the downward API)")
    add("--kubeconfig", default=twin("kubeconfig", env.get("KUBECONFIG", "")),
        help="kubeconfig file; empty means the in-cluster config (default: $KUBECONFIG)")
    add("--sysfs-root", default=twin("sysfs-root", "/sys"), metavar="PATH",
        help="root of the sysfs tree to scan (default: %(default)s)")
    add("--features-dir", default=twin("features-dir", DEFAULT_FEATURES_DIR), metavar="DIR",
        help="NFD's features.d directory; the file written there is named ncs2 "
        "(default: %(default)s)")
    add("--udev-source", choices=("kernel", "udev"), default=twin("udev-source", "kernel"),
        help="kernel: the kernel's uevents, heard in any pod; udev: udevd's rebroadcast, "
        "needs hostNetwork and /run/udev (default: %(default)s)")
    add("--resync-interval", type=float, metavar="SECONDS",
        default=float(twin("resync-interval", str(DEFAULT_RESYNC))),
        help="rescan sysfs and re-check the Node this often (default: %(default)s)")
    add("--debounce", type=float, metavar="SECONDS",
        default=float(twin("debounce", str(DEFAULT_DEBOUNCE))),
        help="wait this long after the last USB event before publishing additions "
        "(default: %(default)s)")
    add("--removal-grace", type=float, metavar="SECONDS",
        default=float(twin("removal-grace", str(DEFAULT_REMOVAL_GRACE))),
        help="publish a removal only once a stick has been gone this long, so a stick "
        "re-enumerating on firmware boot changes nothing (default: %(default)s)")
    add("--expiry", type=float, metavar="SECONDS",
        default=float(twin("expiry", str(DEFAULT_EXPIRY))),
        help="NFD drops the labels this long after the last refresh, so they vanish if "
        "the labeller is gone (default: %(default)s)")
    add("--api-timeout", type=int, metavar="SECONDS",
        default=int(twin("api-timeout", str(DEFAULT_API_TIMEOUT))),
        help="give up on one API request after this long and retry later "
        "(default: %(default)s)")
    add("--openvino", choices=("auto", "on", "off"), default=twin("openvino", "auto"),
        help="ask the OpenVINO runtime (in a short-lived child process) for the idle "
        "sticks' full names and capabilities; auto: only when the openvino package is "
        "installed (default: %(default)s)")
    add("--openvino-timeout", type=float, metavar="SECONDS",
        default=float(twin("openvino-timeout", "10")),
        help="give up on the runtime after this long (default: %(default)s)")
    add("--openvino-python", default=twin("openvino-python", sys.executable), metavar="PATH",
        help="the interpreter that has the runtime with the MYRIAD plugin (default: this "
        "one)")
    add("--write-labels", action="store_true",
        default=_env_bool(twin("write-labels", "false")),
        help="also patch the labels directly on the Node, for clusters without NFD")
    add("--no-api", action="store_true", default=_env_bool(twin("no-api", "false")),
        help="maintain only the feature file; do not talk to the Kubernetes API")
    # Unlike the other twins, an empty NCS2_METRICS_ADDRESS is meaningful: it turns
    # the endpoint off, as an empty --metrics-address does.
    add("--metrics-address",
        default=env.get(ENV_PREFIX + "METRICS_ADDRESS", DEFAULT_METRICS_ADDRESS),
        metavar="[HOST]:PORT",
        help="serve /metrics, /healthz and /readyz here; empty turns it off "
        "(default: %(default)s)")
    add("--stall-limit", type=float, metavar="SECONDS",
        default=float(twin("stall-limit", str(DEFAULT_STALL_LIMIT))),
        help="/healthz fails when the event loop has not turned over for this long "
        "(default: %(default)s)")
    add("--once", action="store_true", default=_env_bool(twin("once", "false")),
        help="discover, write and patch once, then exit (non-zero if a step failed)")
    add("--log-level", choices=("debug", "info", "warning", "error"),
        default=twin("log-level", "info").lower())
    add("--log-format", choices=("text", "json"), default=twin("log-format", "text").lower())
    add("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def parse(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from `argv` and `env`; UsageError or argparse's exit on bad usage."""
    env = os.environ if env is None else env
    try:
        parser = build_parser(env)
    except ValueError as exc:  # an environment twin that is not a number
        raise UsageError(f"bad environment setting: {exc}") from exc
    args = parser.parse_args(argv)
    settings = Settings(**vars(args))
    _check(settings)
    return settings


# Bounds of the durations, in seconds: (least, most). The upper bounds keep timestamps
# and timers representable and catch a unit mistake (milliseconds given as seconds).
DAY = 86400.0
BOUNDS = {
    "resync_interval": (1.0, DAY),
    "debounce": (0.0, 60.0),
    "removal_grace": (0.0, DAY),
    "expiry": (MIN_EXPIRY, 7 * DAY),
    # The loop wakes every second; a shorter limit would flap.
    "stall_limit": (2.0, DAY),
    "openvino_timeout": (1.0, 600.0),
    "api_timeout": (1, 600),
}
CHOICES = {
    "udev_source": ("kernel", "udev"),
    "openvino": ("auto", "on", "off"),
    "log_level": ("debug", "info", "warning", "error"),
    "log_format": ("text", "json"),
}
# A Node's name is a DNS-1123 subdomain.
_NODE_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
NODE_NAME_MAX = 253


def parse_address(address: str) -> tuple[str, int]:
    """`[host]:port` to a bind address; ValueError when malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"not [HOST]:PORT: {address[:60]!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check(s: Settings) -> None:
    # Environment twins reach here without argparse's checks of choices.
    for name, choices in CHOICES.items():
        if getattr(s, name) not in choices:
            raise UsageError(f"{_flag(name)} must be one of {', '.join(choices)}, "
                             f"not {str(getattr(s, name))[:40]!r}")
    if not s.no_api and not s.node_name:
        raise UsageError("no node name: set --node-name or NODE_NAME, or pass --no-api")
    if s.node_name and not (len(s.node_name) <= NODE_NAME_MAX
                            and _NODE_NAME_RE.fullmatch(s.node_name)):
        raise UsageError(f"--node-name must be a Node name (a DNS subdomain), "
                         f"not {s.node_name[:60]!r}")
    if s.no_api and s.write_labels:
        raise UsageError("--write-labels needs the API; it contradicts --no-api")
    for name, (least, most) in BOUNDS.items():
        value = getattr(s, name)
        if not least <= value <= most:  # also false for NaN
            raise UsageError(f"{_flag(name)} must be a number from {least:g} to {most:g}")
    if s.metrics_address:
        try:
            parse_address(s.metrics_address)
        except ValueError:
            raise UsageError(f"--metrics-address must be [HOST]:PORT or empty, "
                             f"not {s.metrics_address[:60]!r}") from None
    for name in ("sysfs_root", "features_dir"):
        if not getattr(s, name).strip():
            raise UsageError(f"{_flag(name)} must not be empty")
    if s.expiry <= s.resync_interval:
        raise UsageError("--expiry must be longer than --resync-interval, or the labels "
                         "would expire between two refreshes")
