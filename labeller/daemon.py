"""The labeller's event loop: udev events, timers, scans, the file and the Node.

One thread runs the loop; it never waits on the API (the publisher thread does) and
never sleeps blindly: it waits in select() on the udev socket and a signal pipe until
the next timer. Every turn records a heartbeat, which /healthz checks.
"""

from __future__ import annotations

import contextlib
import logging
import select
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from labeller import events, featurefile, kube, metrics
from labeller.publisher import Publisher
from labeller.runtime import RuntimeView
from labeller.settings import Settings
from labeller.settle import Settler, Snapshot
from nfd_hook import discovery

log = logging.getLogger(__name__)

# The loop wakes at least this often, so its heartbeat is fresh even when all is quiet.
LOOP_TICK = 1.0
# After a failed feature-file write or sysfs scan, try again this soon.
RETRY_INTERVAL = 5.0


class Labeller:
    def __init__(
        self,
        settings: Settings,
        *,
        publisher: Publisher | None,
        make_monitor: Callable[[str], Any] = events.UsbMonitor,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self._make_monitor = make_monitor
        self._wall = wall
        self._clock = clock
        self.file = featurefile.FeatureFile(settings.features_dir, settings.expiry)
        self.settler = Settler(settings.debounce, settings.removal_grace)
        self.heartbeat = clock()
        self.ready = False
        self._stop = False
        self._next_resync = clock() + settings.resync_interval
        self._file_retry_at: float | None = None
        self._file_error = ""
        self._warnings: tuple[str, ...] = ()
        self._scan_error = ""
        self.runtime = RuntimeView(settings.openvino, settings.openvino_timeout,
                                   settings.openvino_python)

    # -- one scan

    def scan(self, reason: str) -> Snapshot | None:
        """Discover the sticks now; None when sysfs cannot be read at all."""
        metrics.SCANS.labels(reason=reason).inc()
        try:
            found = discovery.discover(self.settings.sysfs_root)
        except discovery.SysfsError as exc:
            if str(exc) != self._scan_error:
                log.error("Cannot scan the USB bus: %s; keeping the published state and "
                          "retrying every %.0f s", exc, RETRY_INTERVAL)
            self._scan_error = str(exc)
            return None
        if self._scan_error:
            log.info("Scanned the USB bus again after the earlier failure")
            self._scan_error = ""
        found = self.runtime.apply(found)
        if found.warnings != self._warnings:
            for warning in found.warnings:
                log.warning("%s", warning[:1].upper() + warning[1:])
            self._warnings = found.warnings
        counted = found.counted
        metrics.STICKS.clear()
        for stick in counted:
            model = stick.model.name if stick.model else "unknown"
            metrics.STICKS.labels(model=model, state=stick.state).inc()
        snapshot = Snapshot.of(found.feature_labels(), found.name_annotations(), len(counted))
        return snapshot

    def announce(self, snapshot: Snapshot) -> None:
        if snapshot.count == 0:
            log.info("No Intel Movidius compute stick on the bus")
            return
        names = {key.rsplit(".", 1)[0]: name for key, name in snapshot.annotations.items()}
        for device, name in names.items():
            prefix = device + "."
            caps = [k[len(prefix):] for k in snapshot.features if k.startswith(prefix)]
            log.info("Discovered %s: %s (%s)", device.split("/", 1)[1], name,
                     ", ".join(caps) or "no capabilities")

    # -- publishing

    def desired(self, snapshot: Snapshot) -> kube.Desired:
        features = dict(snapshot.features) if self.settings.write_labels else None
        return kube.Desired(annotations=dict(snapshot.annotations), labels=features)

    def write_file(self, force: bool = False) -> bool:
        """Write the published features if they changed or the refresh is due."""
        published = self.settler.published
        if published is None:
            return False
        if not force and self._file_retry_at is not None:
            # A failed write is retried on its own timer, not on every turn of the loop.
            return False
        now = self._wall()
        if not force and not self.file.needs_write(published.features, now):
            return True
        try:
            self.file.write(published.features, now)
        except (OSError, ValueError) as exc:
            metrics.FILE_WRITES.labels(result="failed").inc()
            message = f"Cannot write {self.file.path}: {getattr(exc, 'strerror', None) or exc}"
            if message != self._file_error:
                then = "" if self.settings.once else f", retrying every {RETRY_INTERVAL:.0f}s"
                log.error("%s; the old file stays%s", message, then)
            self._file_error = message
            self._file_retry_at = self._clock() + RETRY_INTERVAL
            return False
        metrics.FILE_WRITES.labels(result="ok").inc()
        if self._file_error:
            log.info("Wrote %s again after the earlier failure", self.file.path)
        else:
            log.debug("Wrote %s (%d features)", self.file.path, len(published.features))
        self._file_error = ""
        self._file_retry_at = None
        return True

    def reconcile(self, reason: str) -> None:
        """Scan, settle, and publish what changed; on start and resync re-check the Node."""
        verify = reason != "event"
        snapshot = self.scan(reason)
        if snapshot is None:
            # Pending timers would fire on every turn; the next try is a retry away.
            self.settler.postpone(self._clock() + RETRY_INTERVAL)
        else:
            changed = self.settler.decide(snapshot, self._clock())
            if changed is not None:
                self.announce(changed)
                self.write_file(force=True)
        published = self.settler.published
        if published is None:
            return
        self.write_file()
        if self.publisher is not None:
            self.publisher.submit(self.desired(published), verify=verify)
        if not self._file_error:
            metrics.LAST_RECONCILE.set(self._wall())
        self.ready = self.ready or not self._file_error

    # -- the loop

    def stop(self) -> None:
        self._stop = True

    def _deadline(self) -> float:
        candidates = [self._next_resync, self._clock() + LOOP_TICK]
        for deadline in (self.settler.next_deadline(), self._file_retry_at):
            if deadline is not None:
                candidates.append(deadline)
        refresh = self.file.refresh_due_at()
        # While a failed write waits for its retry, the overdue refresh is not a deadline.
        if refresh is not None and self._file_retry_at is None:
            candidates.append(self._clock() + max(0.0, refresh - self._wall()))
        return min(candidates)

    def _open_monitor(self) -> Any:
        try:
            return self._make_monitor(self.settings.udev_source)
        except Exception as exc:  # noqa: BLE001 - pyudev raises OSError, ImportError...
            log.error("Cannot listen for USB events (%s source): %s; relying on the "
                      "resync every %.0f s", self.settings.udev_source, exc,
                      self.settings.resync_interval)
            return None

    def run(self) -> None:
        """Serve until stop() or SIGTERM/SIGINT."""
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        previous_fd = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        handlers = {sig: signal.signal(sig, lambda *_: self.stop())
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            # Listen before the first scan, so no event falls between the two.
            monitor = self._open_monitor()
            log.info("Watching %s USB events; features file %s", self.settings.udev_source,
                     self.file.path)
            self.reconcile("start")
            while not self._stop:
                self._turn(monitor, wake_r)
        finally:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            wake_r.close()
            wake_w.close()
        log.info("Stopping; %s stays until its expiry", self.file.path)

    def _turn(self, monitor: Any, wake: socket.socket) -> None:
        self.heartbeat = self._clock()
        timeout = max(0.0, self._deadline() - self._clock())
        watched: list[Any] = [wake] + ([monitor] if monitor is not None else [])
        readable, _, _ = select.select(watched, [], [], timeout)
        if wake in readable:
            with contextlib.suppress(BlockingIOError):
                wake.recv(64)
        if self._stop:
            return
        now = self._clock()
        if monitor is not None and monitor in readable:
            self._drain(monitor, now)

        if now >= self._next_resync:
            self._next_resync = now + self.settings.resync_interval
            log.debug("Resync: rescanning the bus and re-checking the node")
            self.reconcile("resync")
        elif self.settler.scan_due(now):
            self.reconcile("event")
        elif self._file_retry_at is not None and now >= self._file_retry_at:
            self.write_file(force=True)
            self.ready = self.ready or not self._file_error
        else:
            self.write_file()

    def _drain(self, monitor: Any, now: float) -> None:
        try:
            for event in monitor.drain():
                # add and remove are the events; bind, unbind and change follow them.
                level = logging.INFO if event.action in ("add", "remove") else logging.DEBUG
                log.log(level, "Received a USB %s event for %s:%s at %s", event.action,
                        event.vendor_id, event.product_id, event.port)
                self.settler.on_event(now)
        except events.Overflow:
            log.warning("The kernel dropped USB events (netlink buffer full); rescanning now")
            self.settler.scan_now(now)
        except OSError as exc:
            log.error("Reading USB events failed: %s; rescanning now", exc)
            self.settler.scan_now(now)


def run_once(settings: Settings, publisher: Publisher | None) -> int:
    """--once: one scan, one write, one reconcile of the Node; 0 if all succeeded."""
    labeller = Labeller(settings, publisher=None)
    snapshot = labeller.scan("start")
    if snapshot is None:
        return 1
    labeller.settler.decide(snapshot, 0.0)
    labeller.announce(snapshot)
    ok = labeller.write_file(force=True)
    if ok:
        log.info("Wrote %s", labeller.file.path)
    if publisher is not None:
        try:
            publisher.reconcile(labeller.desired(snapshot))
        except kube.ApiError as exc:
            log.error("%s", exc)
            ok = False
    return 0 if ok else 1

