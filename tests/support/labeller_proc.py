"""Run `ncs2-labeller` as a real child process and watch what it says and writes.

The labeller is started exactly as a DaemonSet would start it, with flags; its stderr is
collected line by line by a reader thread so tests can wait on a log line with a deadline
instead of sleeping. A kubeconfig pointing at the loopback API stand-in is written for it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

STARTUP_TIMEOUT = 20.0
_SAMPLE = re.compile(r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
TOKEN = "test-token"


def write_kubeconfig(path: Path, server_url: str, token: str = TOKEN) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: standin\n  cluster:\n    server: {server_url}\n"
        f"users:\n- name: labeller\n  user:\n    token: {token}\n"
        "contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: labeller\n"
        "current-context: standin\n"
    )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    """Poll `predicate` until it holds or `timeout` passes (for files and HTTP)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class LabellerProcess:
    def __init__(self, args: Sequence[str], env: Mapping[str, str] | None = None,
                 metrics_port: int | None = None) -> None:
        self.metrics_port = metrics_port if metrics_port is not None else free_port()
        argv = [sys.executable, "-m", "labeller", "--log-level", "debug",
                "--metrics-address", f"127.0.0.1:{self.metrics_port}", *args]
        child_env = dict(os.environ if env is None else env)
        child_env["PYTHONUNBUFFERED"] = "1"
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(argv, env=child_env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, errors="replace")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def messages(self) -> list[str]:
        """Log lines without the timestamp and level: `logger: message`."""
        with self._cond:
            return [re.sub(r"^\S+ +\S+ +", "", line) for line in self.lines]

    def count(self, pattern: str) -> int:
        """Raw log lines (with timestamp and level) matching `pattern`."""
        with self._cond:
            return self.count_locked(pattern)

    def wait_for_log(self, pattern: str, timeout: float = 10.0, count: int = 1) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self.count_locked(pattern) >= count:
                    return True
                remaining = deadline - time.monotonic()
                exited = self.proc.poll() is not None and not self._reader.is_alive()
                if remaining <= 0 or exited:
                    return self.count_locked(pattern) >= count
                self._cond.wait(remaining)

    def count_locked(self, pattern: str) -> int:
        return sum(1 for line in self.lines if re.search(pattern, line))

    def get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        if not wait_until(lambda: self.get("/readyz")[0] == 200, timeout, step=0.05):
            raise AssertionError("labeller not ready:\n" + "\n".join(self.lines))

    def metric(self, name: str, labels: str = "") -> float | None:
        """The value of one sample, e.g. `metric("x_total", 'verb="get",outcome="ok"')`.

        Label order does not matter: prometheus_client sorts labels on output.
        """
        _, text = self.get("/metrics")
        wanted = dict(_LABEL.findall(labels))
        for line in text.splitlines():
            match = _SAMPLE.fullmatch(line)
            if match and match["name"] == name and \
                    dict(_LABEL.findall(match["labels"] or "")) == wanted:
                return float(match["value"])
        return None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        """Signal the process; its exit code and how long it took to exit."""
        if self.proc.poll() is not None:
            return self.proc.returncode, 0.0
        start = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code, time.monotonic() - start

    def __enter__(self) -> LabellerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)
