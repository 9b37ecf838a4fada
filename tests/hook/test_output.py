"""What the hook prints for the situations a node can be in."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from support.sysfs_tree import IDLE_NCS1, IDLE_NCS2, KEYBOARD, SysfsTree, booted

from .conftest import Result

Hook = Callable[..., Result]


def test_two_sticks_are_counted_and_indexed_by_port(tree: SysfsTree, hook: Hook) -> None:
    tree.device("1-3", IDLE_NCS2)
    tree.device("1-2", IDLE_NCS2)

    result = hook(tree)

    assert result.code == 0
    assert result.out == (
        "intel.com/ncs2=2\n"
        "ncs2.intel.com/MYRIAD.0.FP16=true\n"
        "ncs2.intel.com/MYRIAD.1.FP16=true\n"
    )
    assert result.err == ""


def test_a_lone_stick_has_no_index(tree: SysfsTree, hook: Hook) -> None:
    tree.device("1-2", IDLE_NCS2)

    result = hook(tree)

    assert result.out == "intel.com/ncs2=1\nncs2.intel.com/MYRIAD.FP16=true\n"


def test_no_stick_prints_nothing_and_says_so(tree: SysfsTree, hook: Hook) -> None:
    tree.device("1-1", KEYBOARD)

    result = hook(tree)

    assert (result.code, result.out) == (0, "")
    assert result.err == (
        "ncs2-nfd-hook: no Intel Movidius compute stick found (none on the USB bus)\n"
    )


def test_a_kernel_without_usb_reports_no_stick(tmp_path: Path, hook: Hook) -> None:
    (tmp_path / "bus" / "pci").mkdir(parents=True)

    result = hook(tmp_path)

    assert (result.code, result.out) == (0, "")
    assert "no USB bus in sysfs" in result.err


def test_ports_sort_numerically_not_as_text(tree: SysfsTree, hook: Hook) -> None:
    tree.hub("1-4", speed=480, ports=12)
    tree.device("1-4.10", IDLE_NCS2)
    tree.device("1-4.9", booted("A" * 18, speed="480"))

    records = hook(tree, "--format", "json").json()["devices"]

    assert [(r["port"], r["index"]) for r in records] == [("1-4.9", 0), ("1-4.10", 1)]


def test_booted_stick_counts_as_a_myriad_x(tree: SysfsTree, hook: Hook) -> None:
    tree.device("1-2", IDLE_NCS2)
    tree.device("1-3", booted(speed="480"))

    result = hook(tree, "--format", "json").json()

    assert result["count"] == 2
    assert [(d["state"], d["model"], d["full_name"]) for d in result["devices"]] == [
        ("idle", "Myriad X", "Intel Movidius Myriad X VPU"),
        ("booted", "Myriad X", "Intel Movidius Myriad X VPU"),
    ]


def test_booted_model_follows_the_mx_id_length(tree: SysfsTree, hook: Hook) -> None:
    tree.device("1-1", booted("0123456789ABCD", speed="480"))  # 14 digits: Myriad 2
    tree.device("1-2", booted("0123456789ABCDEF01", speed="480"))  # 18: Myriad X
    tree.device("1-3", booted("not-an-mx-id", speed="480"))  # unknown: Myriad X

    devices = hook(tree, "--format", "json").json()["devices"]

    assert [d["model"] for d in devices] == ["Myriad 2", "Myriad X", "Myriad X"]
    assert devices[0]["full_name"] == "Intel Movidius Myriad 2 VPU"


def test_ncs1_counts_under_its_own_name(tree: SysfsTree, hook: Hook) -> None:
    tree.device("1-2", IDLE_NCS1)
    tree.device("1-3", IDLE_NCS2)

    result = hook(tree, "--format", "json").json()

    assert result["labels"] == {
        "intel.com/ncs2": "2",
        "ncs2.intel.com/MYRIAD.0.FP16": "true",
        "ncs2.intel.com/MYRIAD.1.FP16": "true",
    }
    assert result["annotations"] == {
        "ncs2.intel.com/MYRIAD.0.name": "Intel Movidius Myriad 2 VPU",
        "ncs2.intel.com/MYRIAD.1.name": "Intel Movidius Myriad X VPU",
    }


def test_luxonis_camera_is_listed_but_not_counted(tree: SysfsTree, hook: Hook) -> None:
    tree.device("1-2", booted(product="Luxonis Device", speed="480"))
    tree.device("1-3", IDLE_NCS2)

    json_result = hook(tree, "--format", "json").json()
    nfd_result = hook(tree)

    assert nfd_result.out == "intel.com/ncs2=1\nncs2.intel.com/MYRIAD.FP16=true\n"
    camera = json_result["devices"][0]
    assert (camera["port"], camera["counted"], camera["index"]) == ("1-2", False, None)
    assert camera["excluded_reason"] == "Luxonis camera, not a compute stick"
    assert json_result["devices"][1]["index"] is None  # the one stick: no index


def test_bootloader_and_unknown_ids_are_not_counted(tree: SysfsTree, hook: Hook) -> None:
    tree.device("1-2", {**IDLE_NCS2, "idProduct": "f63c"})
    tree.device("1-3", {**IDLE_NCS2, "idProduct": "abcd"})

    result = hook(tree, "--format", "json").json()

    assert result["count"] == 0
    assert [(d["product_id"], d["excluded_reason"]) for d in result["devices"]] == [
        ("f63c", "Luxonis bootloader"),
        ("abcd", "unknown Movidius product id"),
    ]


def test_upper_case_ids_are_recognised(tree: SysfsTree, hook: Hook) -> None:
    tree.device("1-2", {**IDLE_NCS2, "idVendor": "03E7", "idProduct": "F63B"})

    result = hook(tree, "--format", "json").json()

    assert (result["count"], result["devices"][0]["product_id"]) == (1, "f63b")


def test_json_record_holds_every_field(tree: SysfsTree, hook: Hook) -> None:
    tree.hub("1-4", speed=480)
    tree.device("1-4.2", IDLE_NCS2)

    result = hook(tree, "--format", "json").json()

    assert result["devices"] == [{
        "index": None, "port": "1-4.2", "connector": "1-4.2",
        "vendor_id": "03e7", "product_id": "2485", "state": "idle",
        "model": "Myriad X", "full_name": "Intel Movidius Myriad X VPU",
        "capabilities": ["FP16"], "busnum": 1, "devnum": 3, "speed": 480,
        "manufacturer": "Movidius Ltd.", "product": "Movidius MyriadX",
        "serial": "03e72485", "counted": True, "excluded_reason": None,
    }]
    assert result["warnings"] == []
