"""A tiny tmpfs, so that tests hit a real full (or read-only) filesystem."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SMALL_TMPFS_SIZE = "8k"


@contextlib.contextmanager
def small_tmpfs(where: Path) -> Iterator[Path]:
    """Mount an 8 KiB tmpfs at `where` (created) for the block; needs root."""
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tiny tmpfs and must run as root")
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL_TMPFS_SIZE}", "tmpfs",
                    str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def fill(path: Path) -> None:
    """Write zeros to `path` until its filesystem is full."""
    with open(path, "wb", buffering=0) as filler, contextlib.suppress(OSError):
        while True:
            filler.write(b"\0" * 512)
