"""Event filtering and the loop's answer to a netlink overflow."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labeller import events, settings
from labeller.daemon import Labeller


class FakeDevice:
    def __init__(self, action: str, product: str | None, sys_name: str = "1-2") -> None:
        self.action = action
        self.properties = {} if product is None else {"PRODUCT": product}
        self.sys_name = sys_name


@pytest.mark.parametrize(
    ("product", "expected"),
    [
        ("3e7/2485/1", (0x3E7, 0x2485)),
        ("3e7/f63b/100", (0x3E7, 0xF63B)),
        ("46d/c52b/1211", (0x46D, 0xC52B)),
        ("3e7/2485", None),
        ("3e7/zz/1", None),
        ("10000/1/1", None),
        ("", None),
        (None, None),
    ],
)
def test_product_property_parsing(product: str | None, expected: tuple[int, int] | None
                                  ) -> None:
    assert events.parse_product(product) == expected


def test_only_movidius_events_are_kept_and_names_are_checked() -> None:
    assert events.classify(FakeDevice("add", "3e7/2485/1", "1-4.2")) == events.UsbEvent(
        "add", "03e7", "2485", "1-4.2")
    assert events.classify(FakeDevice("remove", "3e7/f63b/1", "1-2\nevil")) == \
        events.UsbEvent("remove", "03e7", "f63b", "?")
    assert events.classify(FakeDevice("add", "46d/c52b/1211")) is None
    assert events.classify(FakeDevice("add", None)) is None


class OverflowingMonitor:
    def fileno(self) -> int:
        return -1

    def drain(self) -> Iterator[events.UsbEvent]:
        yield events.UsbEvent("add", "03e7", "2485", "1-2")
        raise events.Overflow()


def test_an_overflow_schedules_an_immediate_rescan(tmp_path: Path) -> None:
    config = settings.parse(["--no-api", "--features-dir", str(tmp_path)], env={})
    labeller = Labeller(config, publisher=None, clock=lambda: 100.0)

    labeller._drain(OverflowingMonitor(), now=100.0)

    assert labeller.settler.scan_at == 100.0
    assert labeller.settler.scan_due(100.0)


def test_enobufs_from_the_socket_becomes_an_overflow() -> None:
    monitor = events.UsbMonitor.__new__(events.UsbMonitor)

    class Raising:
        def poll(self, timeout: float) -> Any:
            raise OSError(errno.ENOBUFS, "No buffer space available")

    monitor._monitor = Raising()

    with pytest.raises(events.Overflow):
        list(monitor.drain())
