"""Watch ncs2-labeller follow hotplug, with no stick and no cluster.

A umockdev test bed plays the USB bus (real libudev, real uevents) and the loopback API
stand-in plays the Kubernetes API; the labeller is the real program, run as its own
process. After each step the demo prints the feature file and the Node's annotations.

    scripts/test -q          # once: installs umockdev and the test extras into .venv
    .venv/bin/python examples/hotplug_demo.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.apiserver import FakeApiServer  # noqa: E402
from support.labeller_proc import LabellerProcess, write_kubeconfig  # noqa: E402
from support.testbed import IDLE_NCS2, Testbed, booted_ncs2, child_env  # noqa: E402

NODE = "demo-node"
GRACE = 3.0


def show(step: str, features: Path, api: FakeApiServer, labeller: LabellerProcess) -> None:
    print(f"\n== {step}")
    for line in labeller.messages()[show.seen:]:  # type: ignore[attr-defined]
        print(f"   log  {line}")
    show.seen = len(labeller.messages())  # type: ignore[attr-defined]
    print("   file " + "\n        ".join((features / "ncs2").read_text().splitlines()))
    annotations = api.node(NODE)["metadata"].get("annotations", {})
    print(f"   node {annotations}  ({len(api.patches(NODE))} PATCH so far)")


def main() -> int:
    show.seen = 0  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory(prefix="ncs2-demo-") as tmp, FakeApiServer() as api, \
            Testbed() as bed:
        work = Path(tmp)
        features = work / "features.d"
        api.add_node(NODE)
        args = ["--node-name", NODE, "--kubeconfig", str(write_kubeconfig(work / "kc", api.url)),
                "--sysfs-root", str(bed.sysfs_root), "--features-dir", str(features),
                "--debounce", "0.5", "--removal-grace", str(GRACE)]
        with LabellerProcess(args, env=child_env(bed)) as labeller:
            bed.wait_for_listeners(1, timeout=20)
            labeller.wait_ready()
            show("started, no stick", features, api, labeller)

            first = bed.add_usb_device("1-2", IDLE_NCS2)
            second = bed.add_usb_device("1-4", IDLE_NCS2)
            api.wait_for(lambda s: len(s.patches(NODE)) == 1, 10)
            show("two sticks plugged in", features, api, labeller)

            bed.remove_device(second)
            time.sleep(1)
            booted = bed.add_usb_device("2-3", booted_ncs2("14442C10D13EABCE00"))
            time.sleep(GRACE + 1)
            show("a workload boots the stick in port 4: it re-enumerates as 03e7:f63b on "
                 "the SuperSpeed bus; nothing changes", features, api, labeller)

            bed.remove_device(booted)
            bed.remove_device(first)
            api.wait_for(lambda s: len(s.patches(NODE)) == 2, 10 + GRACE)
            show(f"both unplugged: removal published after the {GRACE:.0f} s grace",
                 features, api, labeller)
    return 0


if __name__ == "__main__":
    sys.exit(main())
