"""Labeller figures: event-to-publish latency, PATCH counts, idle memory.

Runs, in one invocation, a real labeller process against the loopback API stand-in and a
umockdev test bed (both from tests/support), and reports:
- latency from a uevent being sent to the feature file being replaced, and to the PATCH
  reaching the stand-in, minus the configured debounce (the part the labeller adds);
- PATCH requests in a steady state, per settled change, and for a 50-event storm;
- resident memory of the idle labeller next to a bare interpreter that imports the same
  libraries (pyudev, kubernetes.client, prometheus_client, yaml).

    python bench/labeller_bench.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.apiserver import FakeApiServer  # noqa: E402
from support.labeller_proc import LabellerProcess, write_kubeconfig  # noqa: E402
from support.sysfs_tree import IDLE_NCS2 as SYSFS_NCS2  # noqa: E402
from support.sysfs_tree import xhci  # noqa: E402
from support.testbed import IDLE_NCS2, Testbed, child_env  # noqa: E402

NODE = "bench-node"
DEBOUNCE = 0.2
SAME_LIBRARIES = "import pyudev, kubernetes.client, prometheus_client, yaml"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def idle_rss_kib(code: str) -> int:
    """RSS of an interpreter that ran `code` (which prints a line when done), then idles."""
    proc = subprocess.Popen([sys.executable, "-c", f"{code}; import time; time.sleep(30)"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        return rss_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def wait_file_change(path: Path, old_inode: int | None, timeout: float) -> float:
    """Monotonic time at which `path` got a new inode (an atomic replace), polled at 1 ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.stat(path).st_ino != old_inode:
                return time.monotonic()
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    raise TimeoutError(f"{path} did not change")


def latency(rounds: int, work: Path) -> None:
    features = work / "features.d"
    with FakeApiServer() as api, Testbed() as bed:
        api.add_node(NODE)
        kubeconfig = write_kubeconfig(work / "kubeconfig", api.url)
        args = ["--node-name", NODE, "--kubeconfig", str(kubeconfig), "--sysfs-root",
                str(bed.sysfs_root), "--features-dir", str(features), "--debounce",
                str(DEBOUNCE), "--removal-grace", "0", "--resync-interval", "1",
                # The runtime query (about 0.23 s when openvino is installed) is measured
                # by bench/openvino_cost.py; this measures the labeller's own path.
                "--openvino", "off"]
        with LabellerProcess(args, env=child_env(bed)) as labeller:
            bed.wait_for_listeners(1, timeout=20)
            labeller.wait_ready()
            file_ms: list[float] = []
            patch_ms: list[float] = []
            stick = None
            for _ in range(rounds):
                inode = os.stat(features / "ncs2").st_ino
                patches = len(api.patches(NODE))
                sent = time.monotonic()
                if stick is None:
                    stick = bed.add_usb_device("1-2", IDLE_NCS2)
                else:
                    bed.remove_device(stick)
                    stick = None
                written = wait_file_change(features / "ncs2", inode, 10)
                def patched_once_more(server: FakeApiServer, before: int = patches) -> bool:
                    return len(server.patches(NODE)) > before

                if not api.wait_for(patched_once_more, 10):
                    raise TimeoutError("no PATCH")
                patched = api.patches(NODE)[-1].time
                file_ms.append((written - sent - DEBOUNCE) * 1000)
                patch_ms.append((patched - sent - DEBOUNCE) * 1000)
            print(f"event -> feature file, beyond the {DEBOUNCE} s debounce: median "
                  f"{statistics.median(file_ms):.1f} ms, max {max(file_ms):.1f} ms "
                  f"({rounds} plug/unplug events)")
            print(f"event -> PATCH at the API, beyond the debounce:      median "
                  f"{statistics.median(patch_ms):.1f} ms, max {max(patch_ms):.1f} ms")

            # Steady state: 3 resyncs, no change on the bus.
            before = len(api.patches(NODE))
            gets = sum(r.method == "GET" for r in api.requests)
            time.sleep(3.5)
            print(f"steady state over 3.5 s (resync every 1 s): "
                  f"{len(api.patches(NODE)) - before} PATCH, "
                  f"{sum(r.method == 'GET' for r in api.requests) - gets} GET")

            # A storm: 4 sticks plugged (8 events) and 42 change events.
            before = len(api.patches(NODE))
            ports = [f"1-{n}" for n in (1, 3, 4)] + (["1-2"] if stick is None else [])
            plugged = [bed.add_usb_device(p, IDLE_NCS2) for p in ports]
            for n in range(50 - 2 * len(plugged)):
                bed.uevent(plugged[n % len(plugged)], "change")
            time.sleep(DEBOUNCE * 5 + 1)
            print(f"storm of 50 uevents: {len(api.patches(NODE)) - before} PATCH")


def memory(work: Path) -> None:
    tree = xhci(work / "sys")
    tree.device("1-2", SYSFS_NCS2)
    with FakeApiServer() as api:
        api.add_node(NODE)
        kubeconfig = write_kubeconfig(work / "kubeconfig-mem", api.url)
        with LabellerProcess(["--node-name", NODE, "--kubeconfig", str(kubeconfig),
                              "--sysfs-root", str(tree.root), "--features-dir",
                              str(work / "fd-mem"), "--openvino", "off"]) as labeller:
            labeller.wait_ready()
            time.sleep(2)
            labeller_kib = rss_kib(labeller.proc.pid)
    bare_kib = idle_rss_kib(f"{SAME_LIBRARIES}; print(1, flush=True)")
    plain_kib = idle_rss_kib("print(1, flush=True)")
    print(f"idle labeller RSS {labeller_kib / 1024:.1f} MiB; interpreter importing the same "
          f"libraries {bare_kib / 1024:.1f} MiB (ratio {labeller_kib / bare_kib:.2f}); "
          f"bare interpreter {plain_kib / 1024:.1f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ncs2-bench-") as work:
        latency(args.rounds, Path(work))
        memory(Path(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
