"""How much a hook run costs next to starting a bare interpreter.

NFD (or a person, or the labeller's `--once` users) may start the hook often, so its cost
is measured against the floor any Python program pays: `python -c pass` from the same
interpreter, run alternately with the hook in the same invocation so both see the same
machine load. Prints the median wall time of each, their ratio, and the peak RSS of each.

    python bench/hook_startup.py [--rounds 40] [--sysfs-root examples/sysfs/two-sticks-on-hub]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLE = REPO / "examples" / "sysfs" / "two-sticks-on-hub"
GOAL_RATIO = 2.5


def run_once(argv: list[str]) -> float:
    """Wall seconds of one run of `argv`."""
    start = time.perf_counter()
    code = subprocess.call(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"{argv[0]} exited {code}")
    return elapsed


def peak_rss_kib(argv: list[str]) -> int | None:
    """Peak RSS of `argv`, measured by GNU time.

    NB: a child forked from this interpreter starts with our pages, and Linux keeps the
    pre-exec high-water mark in ru_maxrss; GNU time is a small parent, so its child's
    figure is the program's own.
    """
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    if gnu_time is None:
        return None
    proc = subprocess.run([gnu_time, "-f", "%M", *argv], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=True)
    return int(proc.stderr.strip().splitlines()[-1])


def hook_command(sysfs_root: str) -> list[str]:
    # The console script is what NFD and people run; fall back to -m outside a venv.
    script = shutil.which("ncs2-nfd-hook", path=os.path.dirname(sys.executable))
    base = [script] if script else [sys.executable, "-m", "nfd_hook"]
    return [*base, "--sysfs-root", sysfs_root]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--sysfs-root", default=str(DEFAULT_SAMPLE))
    args = parser.parse_args()

    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "ncs2-nfd-hook": hook_command(args.sysfs_root),
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    # One warm-up each so the page cache holds both; then alternate.
    for argv in commands.values():
        run_once(argv)
    for _ in range(args.rounds):
        for name, argv in commands.items():
            samples[name].append(run_once(argv))
    medians = {name: statistics.median(runs) for name, runs in samples.items()}
    peaks = {name: peak_rss_kib(argv) for name, argv in commands.items()}

    for name in commands:
        peak = peaks[name]
        rss = f"{peak / 1024:6.1f} MiB" if peak else "n/a (no /usr/bin/time)"
        print(f"{name:16} median {medians[name] * 1000:7.1f} ms   peak RSS {rss}")
    ratio = medians["ncs2-nfd-hook"] / medians["python -c pass"]
    verdict = "within" if ratio <= GOAL_RATIO else "OVER"
    print(f"ratio hook/bare: {ratio:.2f} ({verdict} the goal of {GOAL_RATIO}); "
          f"{args.rounds} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
