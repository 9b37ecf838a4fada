"""When a change on the bus is real enough to publish.

Two kinds of noise must not reach the cluster. A burst of uevents (a hub with four sticks,
a storm) should give one update: additions are published once the bus has been quiet for
the debounce. And a stick that loads a model re-enumerates: it leaves as 03e7:2485 and
comes back as 03e7:f63b up to about 15 s later, which must change nothing at all: so a
scan that finds fewer sticks than are published holds the published state for the
removal grace, and publishes the removal only if the stick is still gone by then.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

log = logging.getLogger(__name__)

# A continuous storm is cut into updates at most this many debounce periods apart.
MAX_DEBOUNCE_PERIODS = 5


@dataclass(frozen=True)
class Snapshot:
    """What one scan says the node should carry."""

    features: Mapping[str, str]
    annotations: Mapping[str, str]
    count: int

    @classmethod
    def of(cls, features: Mapping[str, str], annotations: Mapping[str, str],
           count: int) -> Snapshot:
        return cls(MappingProxyType(dict(features)), MappingProxyType(dict(annotations)),
                   count)

    def same_as(self, other: Snapshot | None) -> bool:
        return other is not None and (
            dict(self.features) == dict(other.features)
            and dict(self.annotations) == dict(other.annotations)
        )


class Settler:
    """Holds the published snapshot and the timers that decide when to replace it."""

    def __init__(self, debounce: float, grace: float) -> None:
        self.debounce = debounce
        self.grace = grace
        self.published: Snapshot | None = None
        self.scan_at: float | None = None
        self.hold_until: float | None = None
        self._burst_started: float | None = None

    def on_event(self, now: float) -> None:
        """A relevant uevent: scan once the bus has been quiet for the debounce."""
        if self._burst_started is None:
            self._burst_started = now
        latest = self._burst_started + self.debounce * MAX_DEBOUNCE_PERIODS
        self.scan_at = min(now + self.debounce, latest)

    def scan_now(self, now: float) -> None:
        """Scan at once (a netlink overflow, a resync)."""
        self.scan_at = now

    def postpone(self, until: float) -> None:
        """Move the pending scan and the removal deadline to `until` at the earliest."""
        if self.scan_at is not None:
            self.scan_at = max(self.scan_at, until)
        if self.hold_until is not None:
            self.hold_until = max(self.hold_until, until)

    def next_deadline(self) -> float | None:
        deadlines = [t for t in (self.scan_at, self.hold_until) if t is not None]
        return min(deadlines) if deadlines else None

    def scan_due(self, now: float) -> bool:
        return any(t is not None and now >= t for t in (self.scan_at, self.hold_until))

    def decide(self, snapshot: Snapshot, now: float) -> Snapshot | None:
        """The snapshot to publish after a scan, or None to keep the published one."""
        self.scan_at = None
        self._burst_started = None
        published = self.published
        if published is not None and snapshot.count < published.count:
            if self.hold_until is None:
                self.hold_until = now + self.grace
                log.info("%d of %d sticks gone from the bus; publishing the removal in "
                         "%g s unless they come back", published.count - snapshot.count,
                         published.count, self.grace)
            if now < self.hold_until:
                return None
        elif self.hold_until is not None:
            log.info("%d sticks on the bus again before the removal grace ended",
                     snapshot.count)
        self.hold_until = None
        if snapshot.same_as(published):
            return None
        self.published = snapshot
        return snapshot
