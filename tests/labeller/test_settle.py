"""Settling: bursts give one update, a re-enumerating stick changes nothing."""

from __future__ import annotations

from labeller.settle import Settler, Snapshot


def snap(count: int, *, name: str = "Intel Movidius Myriad X VPU") -> Snapshot:
    if count == 1:
        return Snapshot.of({"intel.com/ncs2": "1"}, {"ncs2.intel.com/MYRIAD.name": name}, 1)
    features = {"intel.com/ncs2": str(count)} if count else {}
    names = {f"ncs2.intel.com/MYRIAD.{i}.name": name for i in range(count)}
    return Snapshot.of(features, names, count)


def test_the_first_scan_is_published_at_once() -> None:
    settler = Settler(debounce=1, grace=20)

    assert settler.decide(snap(2), now=0) == snap(2)
    assert settler.published == snap(2)


def test_a_burst_is_scanned_once_after_the_quiet_period() -> None:
    settler = Settler(debounce=1, grace=20)
    for i in range(50):
        settler.on_event(now=10 + i * 0.01)

    assert not settler.scan_due(now=10.9)
    assert settler.scan_due(now=11.49)
    assert settler.next_deadline() == 10 + 49 * 0.01 + 1


def test_an_endless_storm_is_still_published_after_five_periods() -> None:
    settler = Settler(debounce=1, grace=20)
    for i in range(100):
        settler.on_event(now=i * 0.1)

    assert settler.next_deadline() == 5.0


def test_a_removal_waits_for_the_grace_period() -> None:
    settler = Settler(debounce=1, grace=20)
    settler.decide(snap(2), now=0)

    assert settler.decide(snap(1), now=5) is None
    assert settler.hold_until == 25
    assert settler.decide(snap(1), now=24.9) is None
    assert settler.decide(snap(1), now=25) == snap(1)
    assert settler.hold_until is None


def test_a_stick_back_within_the_grace_changes_nothing() -> None:
    settler = Settler(debounce=1, grace=20)
    settler.decide(snap(2), now=0)

    assert settler.decide(snap(1), now=1) is None  # 2485 left
    assert settler.decide(snap(2), now=15) is None  # f63b arrived: same features
    assert settler.hold_until is None
    assert settler.decide(snap(2), now=40) is None


def test_an_addition_is_published_even_while_a_removal_is_held() -> None:
    settler = Settler(debounce=1, grace=20)
    settler.decide(snap(1), now=0)

    assert settler.decide(snap(0), now=1) is None
    assert settler.decide(snap(1, name="Intel Movidius Myriad 2 VPU"), now=2) == snap(
        1, name="Intel Movidius Myriad 2 VPU")


def test_same_snapshot_is_not_published_twice() -> None:
    settler = Settler(debounce=1, grace=20)
    settler.decide(snap(3), now=0)

    assert settler.decide(snap(3), now=100) is None
