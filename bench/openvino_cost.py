"""What asking OpenVINO costs next to the hook that would ask it.

The runtime is queried in a child process (`nfd_hook.openvino_probe`) so that its memory
never stays in the caller; this measures what that child costs in wall time and peak RSS,
next to a bare interpreter and the hook alone, all run alternately in one invocation so
they see the same machine load. `hook+query` is the hook's work done the way the wired
hook would do it (scan, query in `on` mode, enrich, render); its RSS column is the
caller's own peak (VmHWM), which must stay near the hook's whatever the child costs.

    python bench/openvino_cost.py [--rounds 10] [--sysfs-root examples/sysfs/one-idle-stick]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLE = REPO / "examples" / "sysfs" / "one-idle-stick"
KIB_PER_MIB = 1024

# The wired hook's path, printing the caller's own peak RSS (KiB) as its last line.
HOOK_WITH_QUERY = """
import sys
from nfd_hook import discovery, labels, openvino
found = discovery.discover(sys.argv[1])
found = openvino.enrich(found, openvino.query("on"))
sys.stdout.write(labels.render_nfd(found.feature_labels()))
with open("/proc/self/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
"""


def run_once(argv: list[str]) -> tuple[float, str]:
    """Wall seconds of one run of `argv`, and its stdout."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} exited {proc.returncode}: {proc.stderr.strip()}")
    return elapsed, proc.stdout


def peak_rss_kib(argv: list[str]) -> int | None:
    """Peak RSS of `argv` by GNU time (its own, not inherited from this interpreter).

    NB: for a program that waits for a child, Linux reports the larger of the two, so
    this is the child's figure for `hook+query`; its own comes from VmHWM instead.
    """
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    if gnu_time is None:
        return None
    proc = subprocess.run([gnu_time, "-f", "%M", *argv], capture_output=True, text=True,
                          check=True)
    return int(proc.stderr.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--sysfs-root", default=str(DEFAULT_SAMPLE))
    args = parser.parse_args()

    python = sys.executable
    commands = {
        "python -c pass": [python, "-c", "pass"],
        "hook": [python, "-m", "nfd_hook", "--sysfs-root", args.sysfs_root],
        "probe": [python, "-m", "nfd_hook.openvino_probe"],
        "hook+query": [python, "-c", HOOK_WITH_QUERY, args.sysfs_root],
    }

    # One warm-up each so the page cache holds every file; then alternate.
    outputs = {name: run_once(argv)[1] for name, argv in commands.items()}
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, argv in commands.items():
            samples[name].append(run_once(argv)[0])
    medians = {name: statistics.median(runs) for name, runs in samples.items()}
    peaks = {name: peak_rss_kib(argv) for name, argv in commands.items()}
    peaks["hook+query"] = int(outputs["hook+query"].splitlines()[-1])

    print(f"probe answer: {outputs['probe'].strip()}")
    for name in commands:
        peak = peaks[name]
        rss = f"{peak / KIB_PER_MIB:6.1f} MiB" if peak else "   n/a (no /usr/bin/time)"
        print(f"{name:15} median {medians[name] * 1000:7.1f} ms   peak RSS {rss}")
    print(f"ratios: probe/hook {medians['probe'] / medians['hook']:.1f}, "
          f"hook+query/hook {medians['hook+query'] / medians['hook']:.1f}, "
          f"hook/bare {medians['hook'] / medians['python -c pass']:.2f}; "
          f"{args.rounds} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
