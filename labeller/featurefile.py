"""The feature file in NFD's features.d, written so NFD never reads a partial one.

NFD reads every regular top-level file of features.d, on a timer up to v0.18 and, from
v0.19, on an fsnotify event that drops further events within the same second. So the
content is written to a temp file in a hidden subdirectory (NFD skips subdirectories and
its watch is not recursive), synced, then renamed over the final name: NFD sees exactly
one event, on a complete file. The `# +expiry-time` directive makes NFD drop the labels
by itself if this process dies; the file is refreshed well before that.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import logging
import os
from collections.abc import Mapping

from nfd_hook import labels

log = logging.getLogger(__name__)

FILE_NAME = "ncs2"
TEMP_DIR = ".ncs2-tmp"
# NFD (v0.14+) skips feature files larger than this.
NFD_MAX_FILE_BYTES = 64 * 1024
# A temp file this old (seconds) was left by a writer that died between create and rename.
STALE_TEMP_AGE = 60.0
# Refresh once this fraction of the expiry has passed, leaving two thirds as margin.
REFRESH_FRACTION = 1 / 3


def expiry_directive(expires_at: float) -> str:
    stamp = datetime.datetime.fromtimestamp(expires_at, datetime.timezone.utc)
    return f"# +expiry-time={stamp.strftime('%Y-%m-%dT%H:%M:%SZ')}\n"


def render(features: Mapping[str, str], expires_at: float) -> str:
    """The whole file: the expiry directive, then the hook's lines."""
    content = expiry_directive(expires_at) + labels.render_nfd(features)
    if len(content.encode()) > NFD_MAX_FILE_BYTES:
        raise ValueError(f"feature file would be {len(content)} bytes, over NFD's limit")
    return content


class FeatureFile:
    """One feature file, its last written labels, and when it needs a refresh."""

    def __init__(self, directory: str, expiry: float) -> None:
        self.directory = directory
        self.path = os.path.join(directory, FILE_NAME)
        self.expiry = expiry
        self.written: dict[str, str] | None = None
        self.written_at: float | None = None

    def refresh_due_at(self) -> float | None:
        """Wall time at which the file must be rewritten to stay unexpired."""
        if self.written_at is None:
            return None
        return self.written_at + self.expiry * REFRESH_FRACTION

    def needs_write(self, features: Mapping[str, str], now: float) -> bool:
        if self.written != dict(features):
            return True
        due = self.refresh_due_at()
        return due is not None and now >= due

    def write(self, features: Mapping[str, str], now: float) -> None:
        """Replace the file atomically; OSError leaves the old file in place."""
        content = render(features, now + self.expiry).encode()
        os.makedirs(self.directory, exist_ok=True)
        # NB: every step below goes through descriptors of the two directories opened with
        # O_NOFOLLOW: a `.ncs2-tmp` that is a symlink (to anywhere, or to features.d
        # itself) is refused, so this root process never writes or deletes elsewhere.
        parent = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(TEMP_DIR, 0o755, dir_fd=parent)
            try:
                temp_dir = os.open(TEMP_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                   | os.O_CLOEXEC, dir_fd=parent)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise OSError(exc.errno, f"{TEMP_DIR} is not a plain directory") from exc
                raise
            try:
                _remove_stale_temps(temp_dir, now)
                self._replace(parent, temp_dir, content)
            finally:
                os.close(temp_dir)
            with contextlib.suppress(OSError):
                # The rename is durable once the directory is synced; some filesystems
                # refuse fsync on a directory, which is not worth failing the write for.
                os.fsync(parent)
        finally:
            os.close(parent)
        self.written = dict(features)
        self.written_at = now

    @staticmethod
    def _replace(parent: int, temp_dir: int, content: bytes) -> None:
        # NB: the name is random, not our pid: labellers in two pods (a DaemonSet surge, a
        # sidecar beside a DaemonSet) often have the same pid in their own namespaces.
        # O_EXCL and O_NOFOLLOW make sure it is a new regular file, never a planted link.
        temp = f"{FILE_NAME}.{os.getpid()}.{os.urandom(6).hex()}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temp, flags, 0o644, dir_fd=temp_dir)
        try:
            try:
                written = 0
                while written < len(content):
                    written += os.write(fd, content[written:])
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, FILE_NAME, src_dir_fd=temp_dir, dst_dir_fd=parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=temp_dir)
            raise


def _remove_stale_temps(temp_dir: int, now: float) -> None:
    """Remove temp files a crashed writer left behind (older than a minute)."""
    with contextlib.suppress(OSError), os.scandir(temp_dir) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                if now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_AGE:
                    os.unlink(entry.name, dir_fd=temp_dir)
