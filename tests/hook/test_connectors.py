"""Indices follow the physical connector, also when a stick moves bus on boot."""

from __future__ import annotations

from collections.abc import Callable

from support.sysfs_tree import IDLE_NCS2, SysfsTree, booted

from .conftest import Result

Hook = Callable[..., Result]


def ports_and_indices(hook: Hook, tree: SysfsTree) -> list[tuple[str, str, int | None]]:
    return [
        (d["port"], d["connector"], d["index"])
        for d in hook(tree, "--format", "json").json()["devices"]
    ]


def test_booted_stick_keeps_the_index_of_its_root_port(tree: SysfsTree, hook: Hook) -> None:
    # USB 2 port 4 is twinned with SuperSpeed port 3 (see support.sysfs_tree.xhci).
    tree.device("1-5", IDLE_NCS2)
    tree.device("1-4", IDLE_NCS2)
    before = ports_and_indices(hook, tree)

    tree.remove("1-4")
    tree.device("2-3", booted())
    after = ports_and_indices(hook, tree)

    assert before == [("1-4", "1-4", 0), ("1-5", "1-5", 1)]
    assert after == [("2-3", "1-4", 0), ("1-5", "1-5", 1)]


def test_booted_stick_behind_a_usb3_hub_keeps_its_index(tree: SysfsTree, hook: Hook) -> None:
    # A USB 3 hub shows up twice too: 1-4 on the USB 2 bus and 2-3 on the SuperSpeed one,
    # and each of its downstream ports has a peer.
    tree.hub("1-4", speed=480)
    tree.hub("2-3", speed=5000)
    tree.hub("1-4.4", speed=480)
    tree.hub("2-3.4", speed=5000)
    for number in range(1, 5):
        tree.peer(("1-4", number), ("2-3", number))
        tree.peer(("1-4.4", number), ("2-3.4", number))
    tree.device("1-4.2", IDLE_NCS2)
    tree.device("2-3.4.3", booted())

    assert ports_and_indices(hook, tree) == [
        ("1-4.2", "1-4.2", 0),
        ("2-3.4.3", "1-4.4.3", 1),
    ]


def test_without_a_peer_link_the_own_port_orders(tree: SysfsTree, hook: Hook) -> None:
    tree.device("1-2", IDLE_NCS2)
    (tree.port_dir("usb2", 4) / "peer").unlink()
    tree.device("2-4", booted())

    assert ports_and_indices(hook, tree) == [("1-2", "1-2", 0), ("2-4", "2-4", 1)]


def test_a_dangling_peer_link_is_ignored(tree: SysfsTree, hook: Hook) -> None:
    peer = tree.port_dir("usb2", 1) / "peer"
    peer.unlink()
    peer.symlink_to("../nowhere/usb1-port2")
    tree.device("2-1", booted())

    assert ports_and_indices(hook, tree) == [("2-1", "2-1", None)]


def test_a_peer_link_with_a_strange_name_is_ignored(tree: SysfsTree, hook: Hook) -> None:
    peer = tree.port_dir("usb2", 1) / "peer"
    peer.unlink()
    (tree.root / "odd\nname-port9").mkdir()
    peer.symlink_to(tree.root / "odd\nname-port9")
    tree.device("2-1", booted())

    assert ports_and_indices(hook, tree) == [("2-1", "2-1", None)]
