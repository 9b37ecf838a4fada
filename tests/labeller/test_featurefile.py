"""The feature file: format, atomic replacement, refresh, and failures that lose nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from labeller import featurefile
from support.mounts import fill, small_tmpfs

FEATURES = {"intel.com/ncs2": "2", "ncs2.intel.com/MYRIAD.0.FP16": "true",
            "ncs2.intel.com/MYRIAD.1.FP16": "true"}
# 2026-12-04T16:00:00Z
NOW = 1796400000.0


def test_content_is_the_expiry_directive_then_the_hook_lines(tmp_path: Path) -> None:
    file = featurefile.FeatureFile(str(tmp_path), expiry=600)

    file.write(FEATURES, NOW)

    assert (tmp_path / "ncs2").read_text() == (
        "# +expiry-time=2026-12-04T16:10:00Z\n"
        "intel.com/ncs2=2\n"
        "ncs2.intel.com/MYRIAD.0.FP16=true\n"
        "ncs2.intel.com/MYRIAD.1.FP16=true\n"
    )
    assert os.listdir(tmp_path / ".ncs2-tmp") == []


def test_no_stick_leaves_only_the_directive(tmp_path: Path) -> None:
    file = featurefile.FeatureFile(str(tmp_path), expiry=600)

    file.write({}, NOW)

    assert (tmp_path / "ncs2").read_text() == "# +expiry-time=2026-12-04T16:10:00Z\n"


def test_a_missing_directory_is_created(tmp_path: Path) -> None:
    file = featurefile.FeatureFile(str(tmp_path / "a" / "features.d"), expiry=600)

    file.write(FEATURES, NOW)

    assert (tmp_path / "a" / "features.d" / "ncs2").is_file()


def test_rewrite_only_on_change_or_when_refresh_is_due(tmp_path: Path) -> None:
    file = featurefile.FeatureFile(str(tmp_path), expiry=600)
    file.write(FEATURES, NOW)

    assert not file.needs_write(FEATURES, NOW + 199)
    assert file.needs_write(FEATURES, NOW + 200)
    assert file.needs_write({}, NOW + 1)


def test_temp_names_are_unique_and_never_follow_planted_entries(tmp_path: Path) -> None:
    # Another labeller with our pid (its own pid namespace) must not share our temp file,
    # and nothing planted where a temp file could go is followed or blocks the write.
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    temp_dir = tmp_path / "features.d" / ".ncs2-tmp"
    temp_dir.mkdir(parents=True)
    (temp_dir / f"ncs2.{os.getpid()}").symlink_to(victim)
    os.mkfifo(temp_dir / f"ncs2.{os.getpid()}.fifo")
    file = featurefile.FeatureFile(str(tmp_path / "features.d"), expiry=600)

    file.write(FEATURES, NOW)
    file.write({}, NOW + 1)

    assert victim.read_text() == "keep me\n"
    assert (tmp_path / "features.d" / "ncs2").read_text() == (
        "# +expiry-time=2026-12-04T16:10:01Z\n")
    assert sorted(os.listdir(temp_dir)) == [f"ncs2.{os.getpid()}", f"ncs2.{os.getpid()}.fifo"]


def test_temp_files_left_by_a_crashed_writer_are_removed(tmp_path: Path) -> None:
    temp_dir = tmp_path / ".ncs2-tmp"
    temp_dir.mkdir()
    (temp_dir / "ncs2.7.abc").write_text("half")
    (temp_dir / "ncs2.8.def").write_text("fresh")
    os.utime(temp_dir / "ncs2.7.abc", (NOW - 61, NOW - 61))
    os.utime(temp_dir / "ncs2.8.def", (NOW - 5, NOW - 5))

    featurefile.FeatureFile(str(tmp_path), expiry=600).write(FEATURES, NOW)

    assert os.listdir(temp_dir) == ["ncs2.8.def"]


def test_a_failed_write_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    file = featurefile.FeatureFile(str(tmp_path), expiry=600)
    file.write(FEATURES, NOW)
    before = (tmp_path / "ncs2").read_text()
    # A directory where the final name is makes rename() fail after the temp is written.
    os.rename(tmp_path / "ncs2", tmp_path / "saved")
    (tmp_path / "ncs2").mkdir()
    (tmp_path / "ncs2" / "x").write_text("")

    with pytest.raises(OSError):
        file.write({}, NOW + 1)

    assert os.listdir(tmp_path / ".ncs2-tmp") == []
    assert (tmp_path / "saved").read_text() == before
    assert file.written == FEATURES


def test_a_full_disk_keeps_the_old_file(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small") as mount:
        file = featurefile.FeatureFile(str(mount), expiry=600)
        file.write(FEATURES, NOW)
        before = (mount / "ncs2").read_bytes()
        fill(mount / "filler")

        with pytest.raises(OSError) as raised:
            file.write({"intel.com/ncs2": "1", "ncs2.intel.com/MYRIAD.FP16": "true"}, NOW + 1)

        assert raised.value.strerror == "No space left on device"
        assert (mount / "ncs2").read_bytes() == before
        assert os.listdir(mount / ".ncs2-tmp") == []


def test_a_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    # A separate process polls the file as NFD would while this one rewrites it; every
    # read must be one of the complete contents.
    reader = textwrap.dedent(f"""
        import os, sys
        path = {str(tmp_path / 'ncs2')!r}
        seen = set()
        while not os.path.exists({str(tmp_path / 'stop')!r}):
            try:
                with open(path) as f:
                    seen.add(f.read())
            except FileNotFoundError:
                pass
        print(len(seen))
        for text in seen:
            lines = text.splitlines()
            ok = (lines and lines[0].startswith("# +expiry-time=")
                  and text.endswith("\\n")
                  and (len(lines) == 1 or lines[1].startswith("intel.com/ncs2=")))
            if not ok:
                print("PARTIAL", repr(text)); sys.exit(1)
    """)
    file = featurefile.FeatureFile(str(tmp_path), expiry=600)
    file.write(FEATURES, NOW)
    proc = subprocess.Popen([sys.executable, "-c", reader], stdout=subprocess.PIPE, text=True)
    contents = [FEATURES, {}, {"intel.com/ncs2": "1", "ncs2.intel.com/MYRIAD.FP16": "true"}]
    for i in range(300):
        file.write(contents[i % 3], NOW + i)
    (tmp_path / "stop").write_text("")
    out, _ = proc.communicate(timeout=60)

    assert proc.returncode == 0, out
    assert int(out.splitlines()[0]) > 1


def test_a_file_over_nfds_limit_is_refused(tmp_path: Path) -> None:
    many = {f"ncs2.intel.com/MYRIAD.{i}.FP16": "true" for i in range(3000)}

    with pytest.raises(ValueError, match="over NFD's limit"):
        featurefile.FeatureFile(str(tmp_path), expiry=600).write(many, NOW)


@pytest.mark.parametrize("target", ["elsewhere", "features.d itself"])
def test_a_symlinked_temp_directory_is_refused(tmp_path: Path, target: str) -> None:
    features = tmp_path / "features.d"
    features.mkdir()
    victim_dir = tmp_path / "victim"
    victim_dir.mkdir()
    other = (victim_dir if target == "elsewhere" else features) / "other-vendor.conf"
    other.write_text("x\n")
    os.utime(other, (NOW - 3600, NOW - 3600))
    (features / ".ncs2-tmp").symlink_to(victim_dir if target == "elsewhere" else ".")
    file = featurefile.FeatureFile(str(features), expiry=600)

    with pytest.raises(OSError, match=r"\.ncs2-tmp is not a plain directory"):
        file.write(FEATURES, NOW)

    assert other.read_text() == "x\n"
    assert sorted(p.name for p in features.iterdir()) == (
        [".ncs2-tmp"] if target == "elsewhere" else [".ncs2-tmp", "other-vendor.conf"])
