from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from nfd_hook import cli
from support.sysfs_tree import SysfsTree, xhci


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.out)  # type: ignore[no-any-return]


@pytest.fixture
def tree(tmp_path: Path) -> SysfsTree:
    """An xHCI controller with USB 2 bus 1 and SuperSpeed bus 2, nothing plugged in."""
    return xhci(tmp_path / "sys")


@pytest.fixture
def hook(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run the hook's main() in this process on a tree, capturing its streams."""

    def run(root: Path | SysfsTree, *args: str) -> Result:
        path = root.root if isinstance(root, SysfsTree) else root
        code = cli.main(["--sysfs-root", str(path), *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def run_process(*args: str) -> Result:
    """Run `python -m nfd_hook` as its own process, as NFD or a person would."""
    proc = subprocess.run(
        [sys.executable, "-m", "nfd_hook", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)
