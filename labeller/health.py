"""/metrics, /healthz and /readyz on one small HTTP server thread.

/healthz answers 500 when the event loop has not turned over within the stall limit
(a stuck scan or write: the kubelet should restart us) or the publisher thread died;
/readyz answers 200 once the first reconcile has written the feature file (and, with the
API in use, the Node has been brought up to date once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

log = logging.getLogger(__name__)


class Probes:
    """What the endpoints report, read from the loop and the publisher."""

    def __init__(self, heartbeat: Callable[[], float], ready: Callable[[], bool],
                 threads_alive: Callable[[], bool], stall_limit: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.heartbeat = heartbeat
        self.ready = ready
        self.threads_alive = threads_alive
        self.stall_limit = stall_limit
        self.clock = clock

    def health(self) -> tuple[bool, str]:
        stalled = self.clock() - self.heartbeat()
        if stalled > self.stall_limit:
            return False, f"event loop stalled for {stalled:.0f} s"
        if not self.threads_alive():
            return False, "node publisher thread died"
        return True, "ok"


def parse_address(address: str) -> tuple[str, int]:
    """`[host]:port` to a bind address; ValueError when malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"not [HOST]:PORT: {address!r}")
    return host.strip("[]"), int(port)


def serve(address: str, probes: Probes) -> ThreadingHTTPServer:
    """Start the server on a daemon thread; OSError when the address cannot be bound."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok, why = probes.health()
                self._answer(200 if ok else 500, (why + "\n").encode())
            elif path == "/readyz":
                ready = probes.ready()
                self._answer(200 if ready else 503,
                             b"ok\n" if ready else b"first reconcile not done\n")
            else:
                self._answer(404, b"not found\n")

        def _answer(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            # Probes hit this every few seconds; access logs would drown the events.
            return

    server = ThreadingHTTPServer(parse_address(address), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    log.info("Serving /metrics, /healthz and /readyz on %s:%d", host or "*", port)
    return server
