"""Device strings and broken trees can neither inject features nor stop the scan."""

from __future__ import annotations

import os
import shutil
import string
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nfd_hook
from nfd_hook import discovery, labels, sysfs
from support.sysfs_tree import IDLE_NCS2, KEYBOARD, SysfsTree, booted, xhci

from .conftest import Result

Hook = Callable[..., Result]
ONE_STICK = "intel.com/ncs2=1\nncs2.intel.com/MYRIAD.FP16=true\n"

CRAFTED_STRINGS = [
    b"VSC Loopback Device\nintel.com/ncs2=99",
    b"x=y\r\nncs2.intel.com/MYRIAD.0.EVIL=true",
    b"A" * 300,
    b"\xff\xfe\xc3\x28 invalid utf-8 \x80",
    b"# +expiry-time=1970-01-01T00:00:00Z\n",
    b"\x00\x01\x1b[31mred\x1b[0m",
]


@pytest.mark.parametrize("crafted", CRAFTED_STRINGS)
@pytest.mark.parametrize("field", ["product", "manufacturer", "serial"])
def test_crafted_strings_cannot_add_a_line(
    tree: SysfsTree, hook: Hook, field: str, crafted: bytes
) -> None:
    tree.device("1-2", {**booted(speed="480"), field: crafted})

    nfd = hook(tree)
    document = hook(tree, "--format", "json")

    assert nfd.out == ONE_STICK
    assert document.out.isascii()
    record = document.json()["devices"][0]
    assert "\n" not in record[field] and "\r" not in record[field]
    assert len(record[field]) <= 126


def test_warning_lines_do_not_echo_device_content(tree: SysfsTree, hook: Hook) -> None:
    tree.device("1-2", {**IDLE_NCS2, "idProduct": b"24\n85=intel.com/ncs2=7"})

    result = hook(tree)

    assert result.out == ""
    assert result.err.splitlines() == [
        "ncs2-nfd-hook: warning: skipping USB device 1-2: idProduct is not a 4-digit hex id",
        "ncs2-nfd-hook: no Intel Movidius compute stick found (none on the USB bus)",
    ]


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"idVendor": b""}, "idVendor is not a 4-digit hex id"),
        ({"idVendor": b"\xff\xff\xff\xff\n"}, "idVendor is not a 4-digit hex id"),
        ({"idVendor": b"03e7 extra\n"}, "idVendor is not a 4-digit hex id"),
        ({"idProduct": b"zz85\n"}, "idProduct is not a 4-digit hex id"),
        ({"idProduct": None}, "it has no idProduct"),
        ({"idVendor": None}, "it has no idVendor"),
    ],
)
def test_garbage_ids_skip_only_that_device(
    tree: SysfsTree, hook: Hook, attrs: dict[str, bytes | None], reason: str
) -> None:
    broken = tree.device("1-3", {**IDLE_NCS2, **{k: v for k, v in attrs.items() if v is not None}})
    for key, value in attrs.items():
        if value is None:
            (broken / key).unlink()
    tree.device("1-2", IDLE_NCS2)

    result = hook(tree)

    assert (result.code, result.out) == (0, ONE_STICK)
    assert result.err == f"ncs2-nfd-hook: warning: skipping USB device 1-3: {reason}\n"


def test_garbage_numbers_leave_fields_empty(tree: SysfsTree, hook: Hook) -> None:
    tree.device("1-2", {**IDLE_NCS2, "busnum": b"\xff", "devnum": "-", "speed": "fast"})

    record = hook(tree, "--format", "json").json()["devices"][0]

    assert (record["busnum"], record["devnum"], record["speed"]) == (None, None, None)
    assert record["counted"] is True


def test_a_symlink_loop_is_one_warning(tree: SysfsTree, hook: Hook) -> None:
    (tree.bus_dir / "1-7").symlink_to("1-7")
    tree.device("1-2", IDLE_NCS2)

    result = hook(tree)

    assert result.out == ONE_STICK
    assert result.err == (
        "ncs2-nfd-hook: warning: skipping USB device 1-7: its sysfs entry is a symlink loop\n"
    )


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_an_attribute_that_is_not_a_file_is_one_warning(
    tree: SysfsTree, hook: Hook, kind: str
) -> None:
    stick = tree.device("1-3", IDLE_NCS2)
    (stick / "idVendor").unlink()
    if kind == "fifo":
        os.mkfifo(stick / "idVendor")  # would block a plain open() forever
    else:
        (stick / "idVendor").mkdir()
    tree.device("1-2", IDLE_NCS2)

    result = hook(tree)

    assert result.out == ONE_STICK
    assert result.err == (
        "ncs2-nfd-hook: warning: skipping USB device 1-3: idVendor is not a regular file\n"
    )


def test_a_dangling_device_link_is_one_warning(tree: SysfsTree, hook: Hook) -> None:
    (tree.bus_dir / "1-7").symlink_to("../../../devices/gone/1-7")
    tree.device("1-2", IDLE_NCS2)

    result = hook(tree)

    assert result.out == ONE_STICK
    assert result.err == (
        "ncs2-nfd-hook: warning: skipping USB device 1-7: it vanished while being read\n"
    )


def test_permission_denied_is_one_warning(tmp_path: Path) -> None:
    # NFD runs hooks as user 65534; so does this test, so that the kernel itself refuses
    # the read. The package and the tree are copied where that user can reach them.
    if os.geteuid() != 0:
        pytest.fail("this test drops privileges to user 65534 and must run as root")
    shared = Path(tempfile.mkdtemp(prefix="ncs2-perm-"))
    try:
        shared.chmod(0o755)
        shutil.copytree(Path(nfd_hook.__file__).parent, shared / "nfd_hook")
        tree = xhci(shared / "sys")
        tree.device("1-2", IDLE_NCS2)
        (tree.device("1-3", IDLE_NCS2) / "idVendor").chmod(0o600)
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "/usr/bin/python3", "-m", "nfd_hook", "--sysfs-root", str(tree.root)],
            cwd=shared, env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
            capture_output=True, text=True, timeout=60, check=False,
        )
    finally:
        shutil.rmtree(shared)

    assert (proc.returncode, proc.stdout) == (0, ONE_STICK)
    assert proc.stderr == (
        "ncs2-nfd-hook: warning: skipping USB device 1-3: permission denied\n"
    )


def test_a_device_vanishing_mid_read_is_skipped(
    tree: SysfsTree, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree.device("1-2", IDLE_NCS2)
    tree.device("1-3", IDLE_NCS2)
    real_read_device = sysfs.read_device

    def unplug_then_read(devices_dir: str, port: str, vendor: str) -> object:
        if port == "1-3":
            tree.remove("1-3")
        return real_read_device(devices_dir, port, vendor)

    monkeypatch.setattr(sysfs, "read_device", unplug_then_read)
    result = hook(tree)

    assert result.out == ONE_STICK
    assert result.err == (
        "ncs2-nfd-hook: warning: skipping USB device 1-3: it vanished while being read\n"
    )


def test_names_that_are_not_devices_are_ignored(tree: SysfsTree, hook: Hook) -> None:
    tree.device("1-2", IDLE_NCS2)
    for name in ("usb9", "1-2:1.1", "1-02", "x-1", "1-2\n", "1-2.0", ".1-3"):
        (tree.bus_dir / name).mkdir()
        (tree.bus_dir / name / "idVendor").write_text("03e7\n")
        (tree.bus_dir / name / "idProduct").write_text("2485\n")

    result = hook(tree)

    assert (result.out, result.err) == (ONE_STICK, "")


def test_a_thousand_devices_are_scanned(tree: SysfsTree, hook: Hook) -> None:
    for number in range(1, 26):
        tree.hub(f"1-{number}", speed=480, ports=0)
        for sub in range(1, 41):
            attrs = IDLE_NCS2 if (number, sub) in {(3, 7), (25, 40)} else KEYBOARD
            tree.device(f"1-{number}.{sub}", attrs)

    result = hook(tree, "--format", "json").json()

    assert [(d["port"], d["index"]) for d in result["devices"]] == [
        ("1-3.7", 0), ("1-25.40", 1),
    ]


@pytest.mark.parametrize("setup", ["missing", "not-a-sysfs", "devices-missing", "file"])
def test_an_unreadable_root_is_an_error_not_an_empty_node(
    tmp_path: Path, hook: Hook, setup: str
) -> None:
    root = tmp_path / "sys"
    if setup == "not-a-sysfs":
        root.mkdir()
    elif setup == "devices-missing":
        (root / "bus" / "usb").mkdir(parents=True)
    elif setup == "file":
        (root / "bus" / "usb").mkdir(parents=True)
        (root / "bus" / "usb" / "devices").write_text("")

    result = hook(root)

    assert (result.code, result.out) == (1, "")
    assert len(result.err.splitlines()) == 1
    assert result.err.startswith("ncs2-nfd-hook: error: ")


_ATTR_BYTES = st.binary(max_size=300) | st.text(
    alphabet=string.printable + "\u00e9\u202e\u0000=#", max_size=300
).map(str.encode)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    vendor=_ATTR_BYTES | st.just(b"03e7\n"),
    product_id=_ATTR_BYTES | st.sampled_from([b"2485\n", b"f63b\n", b"2150\n"]),
    strings=st.lists(_ATTR_BYTES, min_size=3, max_size=3),
    numbers=st.lists(_ATTR_BYTES, min_size=3, max_size=3),
)
def test_any_attribute_content_yields_valid_output(
    tmp_path_factory: pytest.TempPathFactory,
    vendor: bytes, product_id: bytes, strings: list[bytes], numbers: list[bytes],
) -> None:
    tree = xhci(tmp_path_factory.mktemp("sys"))
    tree.device("1-2", IDLE_NCS2)
    tree.device("1-3", {
        "idVendor": vendor, "idProduct": product_id,
        "manufacturer": strings[0], "product": strings[1], "serial": strings[2],
        "busnum": numbers[0], "devnum": numbers[1], "speed": numbers[2],
    })

    found = discovery.discover(str(tree.root))
    text = labels.render_nfd(found.feature_labels())

    lines = text.splitlines()
    assert lines[0] in ("intel.com/ncs2=1", "intel.com/ncs2=2")
    count = int(lines[0].split("=")[1])
    assert len(lines) == 1 + count
    for line in lines:
        key, _, value = line.partition("=")
        assert labels.is_qualified_name(key) and labels.is_valid_label_value(value)
    assert len(found.warnings) <= 1
    for stick in found.sticks:
        for text_field in (stick.usb.product, stick.usb.manufacturer, stick.usb.serial):
            assert text_field is None or (text_field.isprintable() and len(text_field) <= 126)


def test_one_device_linked_twice_counts_once(tree: SysfsTree, hook: Hook) -> None:
    tree.device("1-2", IDLE_NCS2)
    (tree.bus_dir / "1-7").symlink_to(os.readlink(tree.bus_dir / "1-2"))

    result = hook(tree)

    assert result.out == ONE_STICK
    assert result.err == (
        "ncs2-nfd-hook: warning: skipping USB device 1-7: it is device 1-2 again\n"
    )
