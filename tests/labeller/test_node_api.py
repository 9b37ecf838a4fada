"""The labeller against the API stand-in: exact patches, faults, and convergence."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from support.apiserver import FakeApiServer
from support.labeller_proc import LabellerProcess, wait_until
from support.sysfs_tree import IDLE_NCS2, SysfsTree, booted

from .conftest import NODE

Start = Callable[..., LabellerProcess]
NAME_X = "Intel Movidius Myriad X VPU"
EXPIRY_LINE = re.compile(r"# \+expiry-time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n")


def once(tree: SysfsTree, kubeconfig: Path, features_dir: Path, *extra: str
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labeller", "--once", "--node-name", NODE,
         "--kubeconfig", str(kubeconfig), "--sysfs-root", str(tree.root),
         "--features-dir", str(features_dir), *extra],
        capture_output=True, text=True, timeout=60, check=False,
    )


def file_lines(features_dir: Path) -> str:
    text = (features_dir / "ncs2").read_text()
    assert EXPIRY_LINE.match(text), text
    return text.split("\n", 1)[1]


def owned(meta: dict) -> dict:  # type: ignore[type-arg]
    return {k: v for k, v in (meta or {}).items() if "ncs2" in k}


def test_once_writes_the_file_and_one_merge_patch(
    tree: SysfsTree, api: FakeApiServer, kubeconfig: Path, features_dir: Path
) -> None:
    tree.device("1-2", IDLE_NCS2)
    tree.device("1-3", booted(speed="480"))

    result = once(tree, kubeconfig, features_dir)

    assert result.returncode == 0, result.stderr
    assert file_lines(features_dir) == (
        "intel.com/ncs2=2\nncs2.intel.com/MYRIAD.0.FP16=true\n"
        "ncs2.intel.com/MYRIAD.1.FP16=true\n"
    )
    node = api.node(NODE)
    assert node["metadata"]["annotations"] == {
        "node.alpha.kubernetes.io/ttl": "0",
        "ncs2.intel.com/MYRIAD.0.name": NAME_X,
        "ncs2.intel.com/MYRIAD.1.name": NAME_X,
    }
    assert node["metadata"]["labels"] == {"kubernetes.io/hostname": NODE}
    [patch] = api.patches(NODE)
    assert patch.content_type == "application/merge-patch+json"
    assert patch.body == {"metadata": {"annotations": {
        "ncs2.intel.com/MYRIAD.0.name": NAME_X, "ncs2.intel.com/MYRIAD.1.name": NAME_X,
    }}}
    assert [(r.method, r.status) for r in api.requests] == [("GET", 200), ("PATCH", 200)]


def test_once_removes_stale_keys_and_keeps_others(
    tree: SysfsTree, api: FakeApiServer, kubeconfig: Path, features_dir: Path
) -> None:
    api.edit_node(NODE, lambda n: n["metadata"]["annotations"].update({
        "ncs2.intel.com/MYRIAD.0.name": NAME_X, "ncs2.intel.com/MYRIAD.1.name": NAME_X,
        "example.com/keep": "yes",
    }))
    tree.device("1-2", IDLE_NCS2)

    result = once(tree, kubeconfig, features_dir)

    assert result.returncode == 0, result.stderr
    assert api.node(NODE)["metadata"]["annotations"] == {
        "node.alpha.kubernetes.io/ttl": "0", "example.com/keep": "yes",
        "ncs2.intel.com/MYRIAD.name": NAME_X,
    }
    assert api.patches(NODE)[0].body == {"metadata": {"annotations": {
        "ncs2.intel.com/MYRIAD.name": NAME_X,
        "ncs2.intel.com/MYRIAD.0.name": None, "ncs2.intel.com/MYRIAD.1.name": None,
    }}}
    assert "Reconciling node node-a: set ncs2.intel.com/MYRIAD.name; removed " \
        "ncs2.intel.com/MYRIAD.0.name, ncs2.intel.com/MYRIAD.1.name" in result.stderr


def test_once_sends_nothing_when_the_node_matches(
    tree: SysfsTree, api: FakeApiServer, kubeconfig: Path, features_dir: Path
) -> None:
    tree.device("1-2", IDLE_NCS2)
    assert once(tree, kubeconfig, features_dir).returncode == 0
    api.reset_log()

    result = once(tree, kubeconfig, features_dir)

    assert result.returncode == 0
    assert [r.method for r in api.requests] == ["GET"]


def test_write_labels_patches_labels_and_removes_stale_ones(
    tree: SysfsTree, api: FakeApiServer, kubeconfig: Path, features_dir: Path
) -> None:
    api.edit_node(NODE, lambda n: n["metadata"]["labels"].update({
        "intel.com/ncs2": "2", "ncs2.intel.com/MYRIAD.0.FP16": "true",
        "ncs2.intel.com/MYRIAD.1.FP16": "true",
    }))
    tree.device("1-2", IDLE_NCS2)

    result = once(tree, kubeconfig, features_dir, "--write-labels")

    assert result.returncode == 0, result.stderr
    assert api.node(NODE)["metadata"]["labels"] == {
        "kubernetes.io/hostname": NODE, "intel.com/ncs2": "1",
        "ncs2.intel.com/MYRIAD.FP16": "true",
    }


def test_once_with_a_403_names_the_missing_rbac_rule(
    tree: SysfsTree, api: FakeApiServer, kubeconfig: Path, features_dir: Path
) -> None:
    tree.device("1-2", IDLE_NCS2)
    api.fail(403, times=None, method="PATCH")

    result = once(tree, kubeconfig, features_dir)

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1
    assert 'forbidden to patch node node-a: grant the ServiceAccount "get" and "patch" on ' \
        '"nodes"' in errors[0]
    assert "Traceback" not in result.stderr
    assert file_lines(features_dir) == "intel.com/ncs2=1\nncs2.intel.com/MYRIAD.FP16=true\n"
    assert owned(api.node(NODE)["metadata"]["annotations"]) == {}


def test_once_for_a_missing_node_says_so(
    tree: SysfsTree, api: FakeApiServer, kubeconfig: Path, features_dir: Path
) -> None:
    api.delete_node(NODE)

    result = once(tree, kubeconfig, features_dir)

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].endswith("ERROR   labeller.daemon: node node-a "
                                                   "does not exist")


def test_server_errors_are_retried_until_the_node_converges(
    tree: SysfsTree, api: FakeApiServer, start: Start
) -> None:
    tree.device("1-2", IDLE_NCS2)
    api.fail(500, times=3, method="GET")
    api.fail(503, times=1, method="PATCH")

    with start() as labeller:
        assert api.wait_for(lambda s: len(s.patches(NODE)) == 1, timeout=30)
        labeller.wait_ready()

    assert [r.status for r in api.requests] == [500, 500, 500, 200, 503, 200, 200]
    assert owned(api.node(NODE)["metadata"]["annotations"]) == {
        "ncs2.intel.com/MYRIAD.name": NAME_X}
    assert labeller.count(r"get node node-a failed with 500 .*; retrying in \d") == 3
    assert labeller.count(r"patch node node-a failed with 503 .*; retrying in") == 1


def test_too_many_requests_waits_for_retry_after(
    tree: SysfsTree, api: FakeApiServer, start: Start
) -> None:
    tree.device("1-2", IDLE_NCS2)
    api.fail(429, times=1, method="GET", retry_after=2)

    with start() as labeller:
        assert api.wait_for(lambda s: len(s.patches(NODE)) == 1, timeout=15)

    first, second = [r for r in api.requests if r.method == "GET"][:2]
    assert (first.status, second.status) == (429, 200)
    assert second.time - first.time >= 2.0
    assert labeller.count(r"get node node-a failed with 429 .*; retrying in 2\.0 s") == 1


def test_dropped_connections_and_timeouts_are_retried(
    tree: SysfsTree, api: FakeApiServer, start: Start
) -> None:
    tree.device("1-2", IDLE_NCS2)
    api.drop(times=1, method="PATCH")
    api.drop(times=1, method="GET")
    api.delay(3, times=1, method="GET")

    with start("--api-timeout", "1") as labeller:
        assert api.wait_for(lambda s: len(s.patches(NODE)) == 1, timeout=30)

    assert labeller.count("failed: connection dropped; retrying") == 2
    assert labeller.count("get node node-a failed: timed out; retrying") == 1
    assert owned(api.node(NODE)["metadata"]["annotations"]) == {
        "ncs2.intel.com/MYRIAD.name": NAME_X}


def test_a_forbidden_node_is_one_error_and_heals_at_resync(
    tree: SysfsTree, api: FakeApiServer, start: Start, features_dir: Path
) -> None:
    tree.device("1-2", IDLE_NCS2)
    api.fail(403, times=None, method="PATCH")

    with start(resync="1") as labeller:
        assert wait_until(lambda: (features_dir / "ncs2").exists(), 10)
        assert api.wait_for(lambda s: sum(r.status == 403 for r in s.requests) >= 3, 15)
        assert labeller.count(" ERROR ") == 1
        assert labeller.get("/readyz")[0] == 503
        api.clear_faults()
        assert api.wait_for(lambda s: len(s.patches(NODE)) == 1, timeout=10)
        labeller.wait_ready()

    assert owned(api.node(NODE)["metadata"]["annotations"]) == {
        "ncs2.intel.com/MYRIAD.name": NAME_X}


def test_the_file_keeps_working_while_the_api_is_down(
    tree: SysfsTree, api: FakeApiServer, start: Start, features_dir: Path, tmp_path: Path
) -> None:
    tree.device("1-2", IDLE_NCS2)
    port = api.port
    api.stop()

    with start(resync="1") as labeller:
        assert wait_until(lambda: (features_dir / "ncs2").exists(), 10)
        assert file_lines(features_dir) == "intel.com/ncs2=1\nncs2.intel.com/MYRIAD.FP16=true\n"
        assert labeller.wait_for_log("connection refused or unreachable; retrying", 10)
        with FakeApiServer(port=port) as revived:
            revived.add_node(NODE)
            assert revived.wait_for(lambda s: len(s.patches(NODE)) == 1, timeout=40)
            assert owned(revived.node(NODE)["metadata"]["annotations"]) == {
                "ncs2.intel.com/MYRIAD.name": NAME_X}


def test_steady_state_sends_no_patch(
    tree: SysfsTree, api: FakeApiServer, start: Start
) -> None:
    tree.device("1-2", IDLE_NCS2)

    with start(resync="1") as labeller:
        assert api.wait_for(lambda s: len(s.patches(NODE)) == 1, timeout=10)
        assert api.wait_for(lambda s: sum(r.method == "GET" for r in s.requests) >= 4, 10)

        assert labeller.metric("ncs2_node_reconciles_total", 'result="patched"') == 1.0
        assert wait_until(lambda: (labeller.metric(
            "ncs2_node_reconciles_total", 'result="unchanged"') or 0) >= 3, 5)

    assert len(api.patches(NODE)) == 1


def test_a_missed_event_is_healed_by_the_resync(
    tree: SysfsTree, api: FakeApiServer, start: Start, features_dir: Path
) -> None:
    # Changes made to the tree send no uevent: only the periodic rescan can see them.
    tree.device("1-2", IDLE_NCS2)
    with start(resync="1", grace="0") as labeller:
        assert api.wait_for(lambda s: len(s.patches(NODE)) == 1, timeout=10)
        tree.device("1-3", IDLE_NCS2)
        assert api.wait_for(lambda s: len(s.patches(NODE)) == 2, timeout=10)
        assert file_lines(features_dir).startswith("intel.com/ncs2=2\n")
        tree.remove("1-2")
        tree.remove("1-3")
        assert api.wait_for(lambda s: len(s.patches(NODE)) == 3, timeout=10)
        assert file_lines(features_dir) == ""
        code, took = labeller.stop()

    assert owned(api.node(NODE)["metadata"]["annotations"]) == {}
    assert (code, took < 1.0) == (0, True)
    assert (features_dir / "ncs2").exists()


def test_sigint_and_sigterm_stop_within_a_second(
    tree: SysfsTree, api: FakeApiServer, start: Start
) -> None:
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        with start() as labeller:
            labeller.wait_ready()
            code, took = labeller.stop(sig)
        assert code == 0 and took < 1.0, (sig, code, took)
        assert labeller.messages()[-1].endswith("stays until its expiry")


def test_bad_credentials_are_one_error_and_the_file_still_works(
    tree: SysfsTree, features_dir: Path, tmp_path: Path
) -> None:
    tree.device("1-2", IDLE_NCS2)
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text("{not: [yaml")

    with LabellerProcess(["--node-name", NODE, "--kubeconfig", str(bad), "--sysfs-root",
                          str(tree.root), "--features-dir", str(features_dir)]) as labeller:
        assert wait_until(lambda: (features_dir / "ncs2").exists(), 10)
        assert labeller.wait_for_log("cannot load Kubernetes credentials from", 10)
        assert labeller.proc.poll() is None


def test_usage_errors_exit_2() -> None:
    for argv, message in [
        ([], "no node name: set --node-name or NODE_NAME, or pass --no-api"),
        (["--no-api", "--write-labels"], "--write-labels needs the API"),
        (["--no-api", "--expiry", "60", "--resync-interval", "60"], "--expiry must be longer"),
        (["--no-api", "--debounce", "nan"], "--debounce must be a number from 0 to 60"),
        (["--no-api", "--expiry", "1e20"], "--expiry must be a number from 30 to 604800"),
        (["--no-api", "--stall-limit", "0"], "--stall-limit must be a number from 2 to 86400"),
        (["--no-api", "--metrics-address", ":\u00b2"], "--metrics-address must be"),
        (["--no-api", "--features-dir", ""], "--features-dir must not be empty"),
        (["--node-name", "node\nevil"], "--node-name must be a Node name"),
        (["--no-api", "--metrics-address", "localhost"], "--metrics-address must be"),
    ]:
        proc = subprocess.run([sys.executable, "-m", "labeller", *argv], capture_output=True,
                              text=True, env={"PATH": "/usr/bin:/bin"}, timeout=30,
                              check=False)
        assert (proc.returncode, proc.stderr) == (2, f"ncs2-labeller: error: {message}"
                                                     + proc.stderr.split(message, 1)[1]), argv


def test_environment_twins_are_checked_like_flags() -> None:
    from labeller import settings

    for env, message in [
        ({"NCS2_LOG_LEVEL": "verbose"}, "--log-level must be one of debug, info, warning"),
        ({"NCS2_UDEV_SOURCE": "bogus"}, "--udev-source must be one of kernel, udev"),
        ({"NCS2_LOG_FORMAT": "xml"}, "--log-format must be one of text, json"),
        ({"NCS2_EXPIRY": "soon"}, "bad environment setting"),
    ]:
        try:
            settings.parse(["--no-api"], env=env)
        except settings.UsageError as exc:
            assert str(exc).startswith(message), (env, str(exc))
        else:
            raise AssertionError(f"{env} was accepted")


def test_an_empty_twin_is_unset_except_the_metrics_address() -> None:
    from labeller import settings

    config = settings.parse([], env={"NODE_NAME": "n1", "NCS2_NODE_NAME": "",
                                     "NCS2_METRICS_ADDRESS": ""})

    assert config.node_name == "n1"
    assert config.metrics_address == ""


def test_environment_twins_configure_the_labeller(tmp_path: Path) -> None:
    from labeller import settings

    config = settings.parse([], env={"NODE_NAME": "n1", "NCS2_DEBOUNCE": "0.5",
                                     "NCS2_WRITE_LABELS": "true", "KUBECONFIG": "/k"})
    flagged = settings.parse(["--debounce", "2"], env={"NODE_NAME": "n1",
                                                       "NCS2_DEBOUNCE": "0.5"})

    assert (config.node_name, config.debounce, config.write_labels, config.kubeconfig) == (
        "n1", 0.5, True, "/k")
    assert flagged.debounce == 2.0
    assert json.dumps(settings.DEFAULT_FEATURES_DIR) == \
        '"/etc/kubernetes/node-feature-discovery/features.d"'
