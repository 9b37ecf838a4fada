"""`ncs2-nfd-hook`: print the node features NFD's local source should carry.

Exit status: 0 with the features on stdout (none when no stick is found), 1 when the bus
cannot be read (NFD keeps nothing from a failing hook, which is right: "cannot tell" must
not read as "no stick"), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from nfd_hook import __version__, discovery, labels

PROG = "ncs2-nfd-hook"
OPENVINO_TIMEOUT_MAX = 600


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Print the Intel Movidius compute sticks of this node as "
        "node-feature-discovery local-source features.",
    )
    parser.add_argument(
        "--sysfs-root", default="/sys", metavar="PATH",
        help="root of the sysfs tree to read (default: %(default)s)",
    )
    parser.add_argument(
        "--format", choices=("nfd", "json"), default="nfd",
        help="nfd: feature-file lines; json: every device record and the labels "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--openvino", choices=("auto", "on", "off"), default="off",
        help="ask the OpenVINO runtime, in a child process, for each idle stick's full name "
        "and capabilities; auto asks only when the openvino package is installed "
        "(default: %(default)s, so the hook stays fast)",
    )
    parser.add_argument(
        "--openvino-timeout", type=float, default=10.0, metavar="SECONDS",
        help="give up on the runtime after this long (default: %(default)s)",
    )
    parser.add_argument(
        "--openvino-python", default=sys.executable, metavar="PATH",
        help="the interpreter that has the runtime, e.g. a CPython 3.9 with openvino "
        "2021.4, the last PyPI release with the MYRIAD plugin (default: this one)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def render_json(found: discovery.Discovery, sysfs_root: str,
                runtime: dict[str, Any] | None) -> str:
    # json is imported here so the default nfd path does not pay for it.
    import json

    document = {
        "sysfs_root": sysfs_root,
        "count": len(found.counted),
        "devices": found.records(),
        "labels": found.feature_labels(),
        "annotations": found.name_annotations(),
        "warnings": list(found.warnings),
    }
    if runtime is not None:
        document["openvino"] = runtime
    return json.dumps(document, indent=2, ensure_ascii=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.sysfs_root.strip():
        parser.error("--sysfs-root must not be empty")
    if not 1 <= args.openvino_timeout <= OPENVINO_TIMEOUT_MAX:  # also false for NaN
        parser.error(f"--openvino-timeout must be a number from 1 to {OPENVINO_TIMEOUT_MAX}")
    try:
        found = discovery.discover(args.sysfs_root)
    except discovery.SysfsError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1

    runtime = None
    if args.openvino != "off":
        # Imported only when asked for: the default path must not pay for it.
        import logging

        from nfd_hook import openvino

        answer = openvino.query(args.openvino, args.openvino_timeout, args.openvino_python)
        found = openvino.enrich(found, answer)
        runtime = answer.as_dict()
        if answer.note:
            level = "warning: " if answer.level >= logging.WARNING else ""
            print(f"{PROG}: {level}{answer.note}", file=sys.stderr)

    for warning in found.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    text = (render_json(found, args.sysfs_root, runtime) if args.format == "json"
            else labels.render_nfd(found.feature_labels()))
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        print(f"{PROG}: error: cannot write the features: {exc.strerror or exc}",
              file=sys.stderr)
        # Point stdout at /dev/null so the interpreter's own flush at exit stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    if not found.counted:
        where = "no USB bus in sysfs" if not found.has_usb_bus else "none on the USB bus"
        print(f"{PROG}: no Intel Movidius compute stick found ({where})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
