from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.apiserver import FakeApiServer
from support.labeller_proc import LabellerProcess, write_kubeconfig
from support.sysfs_tree import SysfsTree, xhci

NODE = "node-a"


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        server.add_node(NODE, labels={"kubernetes.io/hostname": NODE},
                        annotations={"node.alpha.kubernetes.io/ttl": "0"})
        yield server


@pytest.fixture
def tree(tmp_path: Path) -> SysfsTree:
    return xhci(tmp_path / "sys")


@pytest.fixture
def kubeconfig(tmp_path: Path, api: FakeApiServer) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", api.url)


@pytest.fixture
def features_dir(tmp_path: Path) -> Path:
    return tmp_path / "features.d"


@pytest.fixture
def start(tree: SysfsTree, kubeconfig: Path, features_dir: Path
          ) -> Iterator[Callable[..., LabellerProcess]]:
    """Start a labeller on `tree`, the stand-in and `features_dir`, with fast timers."""
    started: list[LabellerProcess] = []

    def run(*extra: str, debounce: str = "0.1", grace: str = "1",
            resync: str = "60") -> LabellerProcess:
        proc = LabellerProcess([
            "--node-name", NODE, "--kubeconfig", str(kubeconfig),
            "--sysfs-root", str(tree.root), "--features-dir", str(features_dir),
            "--debounce", debounce, "--removal-grace", grace, "--resync-interval", resync,
            *extra,
        ])
        started.append(proc)
        return proc

    yield run
    for proc in started:
        proc.__exit__()
