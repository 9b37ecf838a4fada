"""/metrics, /healthz and /readyz on one small HTTP server thread.

/healthz answers 500 when the event loop has not turned over within the stall limit
(a stuck scan or write: the kubelet should restart us) or the publisher thread died;
/readyz answers 200 once the first reconcile has written the feature file (and, with the
API in use, the Node has been brought up to date once).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from labeller.settings import parse_address

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


# A connection is closed this long after it was accepted, whatever the client does (a
# client dripping one byte at a time is never idle); probes answer in milliseconds.
CLIENT_DEADLINE = 3.0
# Connections served at once; more are closed at once, so a flood cannot use up the
# process's file descriptors (which the feature file and the scans need).
MAX_CONNECTIONS = 64
LISTEN_BACKLOG = 64


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        # An empty host means every interface: IPv6 and IPv4 together where the kernel
        # has IPv6 (a single-stack IPv6 pod has no IPv4 address at all), else IPv4.
        self.dual_stack = False
        if ":" in host or (not host and socket.has_ipv6 and _ipv6_available()):
            self.address_family = socket.AF_INET6
            self.dual_stack = not host
            host = host or "::"
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__((host, port), handler)

    def server_bind(self) -> None:
        if self.dual_stack:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        deadline = threading.Timer(CLIENT_DEADLINE, _hang_up, (request,))
        deadline.daemon = True
        deadline.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            deadline.cancel()
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that resets or times out is not our error; socketserver would print a
        # multi-line traceback to stderr, outside the log format.
        log.debug("HTTP client %s went away: %s", client_address[0], sys.exc_info()[1])


def _hang_up(request: socket.socket) -> None:
    with contextlib.suppress(OSError):
        request.shutdown(socket.SHUT_RDWR)


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::", 0))
        return True
    except OSError:
        return False


def serve(address: str, probes: Probes) -> ThreadingHTTPServer:
    """Start the server on a daemon thread; OSError when the address cannot be bound."""

    class Handler(BaseHTTPRequestHandler):
        timeout = CLIENT_DEADLINE

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

    server = _Server(*parse_address(address), Handler)  # validated with the settings
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    log.info("Serving /metrics, /healthz and /readyz on %s port %d", host or "*", port)
    return server
