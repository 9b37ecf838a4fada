"""Brings the Node to the desired state from a thread of its own, retrying with backoff.

The API can be slow or down for minutes; the event loop and the feature file must not
wait for it. The loop hands the newest desired state to this thread, which keeps only
the newest one: a state that was never sent because a newer one arrived is simply
replaced. Temporary failures are retried with capped exponential backoff and jitter;
permanent ones (RBAC, a missing Node) are logged once and retried at the next resync.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from labeller import kube, metrics

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
BACKOFF_CAP = 30.0


class Publisher:
    def __init__(self, node: str, make_api: Callable[[], kube.NodeApi],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.node = node
        self._make_api = make_api
        self._api: kube.NodeApi | None = None
        self._clock = clock
        self._cond = threading.Condition()
        self._desired: kube.Desired | None = None
        self._pending = False
        self._stopping = False
        self._failures = 0
        self._last_error = ""
        self._thread = threading.Thread(target=self._run, name="node-publisher", daemon=True)
        # Set after each attempt, for health checks and tests.
        self.last_success: float | None = None

    # -- the loop's side

    def submit(self, desired: kube.Desired, *, verify: bool = False) -> None:
        """Ask for `desired`; with `verify`, re-check the Node even if nothing changed."""
        with self._cond:
            if desired != self._desired or verify:
                self._desired = desired
                self._pending = True
                self._cond.notify()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the thread's side

    def _run(self) -> None:
        delay: float | None = None
        while True:
            with self._cond:
                deadline = None if delay is None else self._clock() + delay
                while not self._stopping and not (self._pending and delay is None):
                    remaining = None if deadline is None else deadline - self._clock()
                    if remaining is not None and remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if self._stopping:
                    return
                desired = self._desired
                self._pending = False
            if desired is None:
                delay = None
                continue
            delay = self._attempt(desired)

    def _attempt(self, desired: kube.Desired) -> float | None:
        """One reconcile; the delay before retrying it, or None when done."""
        try:
            self.reconcile(desired)
        except kube.Temporary as exc:
            self._failures += 1
            delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2.0 ** (self._failures - 1))
            delay *= random.uniform(0.5, 1.0)
            if exc.retry_after is not None:
                delay = max(delay, min(exc.retry_after, BACKOFF_CAP))
            log.warning("%s; retrying in %.1f s", exc, delay)
            with self._cond:
                self._pending = True
            return delay
        except kube.Permanent as exc:
            self._failures = 0
            message = str(exc)
            if message != self._last_error:
                log.error("%s; retrying at the next change or resync", message)
            self._last_error = message
            return None
        except Exception:
            log.exception("unexpected error while reconciling node %s", self.node)
            metrics.RECONCILES.labels(result="error").inc()
            return BACKOFF_CAP
        self._failures = 0
        self._last_error = ""
        return None

    def reconcile(self, desired: kube.Desired) -> bool:
        """GET the Node and PATCH it if needed; True if a PATCH was sent.

        Raises kube.Temporary or kube.Permanent.
        """
        try:
            if self._api is None:
                self._api = self._make_api()
            meta = self._api.get()
            patch = kube.node_patch(meta, desired)
            if patch is not None:
                log.info("Reconciling node %s: %s", self.node, kube.describe_patch(patch))
                self._api.patch(patch)
        except kube.ApiError as exc:
            result = "retry" if isinstance(exc, kube.Temporary) else "failed"
            metrics.RECONCILES.labels(result=result).inc()
            raise
        if patch is None:
            log.debug("Node %s already matches", self.node)
        metrics.RECONCILES.labels(result="unchanged" if patch is None else "patched").inc()
        self.last_success = self._clock()
        return patch is not None
