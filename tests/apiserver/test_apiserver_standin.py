"""The stand-in API server, driven by the official client as the labeller drives it.

Each test states one behaviour of kube-apiserver that the stand-in reproduces, or one way
the `kubernetes` client (37.x) reacts to it, so that tests of the labeller built on the
stand-in can trust both. Clients are built with `retries = False` unless a test is about
urllib3's own retries, so that the request log counts exactly what the code sent.
"""

from __future__ import annotations

import http.client
import json
import re
import selectors
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import (
    ApiException,
    ConflictException,
    ForbiddenException,
    NotFoundException,
    ServiceException,
    UnauthorizedException,
    UnprocessableEntityException,
)

from support import patching
from support.apiserver import (
    ANNOTATIONS_TOTAL_MAX_BYTES,
    APPLY_PATCH_YAML,
    JSON_PATCH,
    MERGE_PATCH,
    SERVICE_ACCOUNT_USER,
    STRATEGIC_MERGE_PATCH,
    FakeApiServer,
)

NODE = "worker-1"
HOSTNAME_LABEL = "kubernetes.io/hostname"
OUR_KEY = "ncs2.intel.com/MYRIAD.0.name"
# Long enough for a test to be slow if it were waited out, short enough never to matter.
WAIT_SECONDS = 5.0
PROCESS_START_SECONDS = 10.0

Json = Any


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as fake:
        fake.add_node(NODE, labels={HOSTNAME_LABEL: NODE}, annotations={"team": "edge"})
        yield fake


def make_api(server: FakeApiServer, *, retries: int | bool | None = False) -> client.CoreV1Api:
    """A CoreV1Api on the stand-in; `retries` is read when the ApiClient is built."""
    configuration = client.Configuration(host=server.url)
    if retries is not None:
        configuration.retries = retries
    return client.CoreV1Api(client.ApiClient(configuration))


@pytest.fixture
def api(server: FakeApiServer) -> Iterator[client.CoreV1Api]:
    core = make_api(server)
    yield core
    core.api_client.close()


def as_json(api: client.CoreV1Api, model: Any) -> Json:
    """A client model back as the JSON the server sent (camelCase keys, no None)."""
    return api.api_client.sanitize_for_serialization(model)


def status_of(error: ApiException) -> Json:
    """The Status body of an ApiException."""
    return json.loads(error.body or "{}")


def raw_request(
    server: FakeApiServer,
    method: str,
    path: str,
    body: bytes = b"",
    content_type: str | None = None,
) -> tuple[int, Json, http.client.HTTPMessage]:
    """One request without the client, for bodies and types the client would not send."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_SECONDS)
    headers = {"Content-Type": content_type} if content_type else {}
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read()), response.headers
    finally:
        connection.close()


def labels_of(server: FakeApiServer, name: str = NODE) -> Json:
    return server.node(name)["metadata"].get("labels")


def annotations_of(server: FakeApiServer, name: str = NODE) -> Json:
    return server.node(name)["metadata"].get("annotations")


def version_of(server: FakeApiServer, name: str = NODE) -> str:
    version: str = server.node(name)["metadata"]["resourceVersion"]
    return version


# --- Reading ---------------------------------------------------------------------------------


def test_node_reads_back_shaped_like_a_real_node(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    raw = server.node(NODE)
    assert list(raw) == ["kind", "apiVersion", "metadata", "spec", "status"]
    assert (raw["kind"], raw["apiVersion"], raw["spec"], raw["status"]) == ("Node", "v1", {}, {})
    metadata = raw["metadata"]
    assert list(metadata) == [
        "name", "uid", "resourceVersion", "creationTimestamp", "labels", "annotations"]
    assert metadata["labels"] == {HOSTNAME_LABEL: NODE}
    assert metadata["annotations"] == {"team": "edge"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", metadata["creationTimestamp"])
    assert isinstance(metadata["resourceVersion"], str)

    node = api.read_node(NODE)
    assert node.metadata is not None
    assert (node.metadata.name, node.metadata.uid) == (NODE, metadata["uid"])
    assert node.metadata.resource_version == metadata["resourceVersion"]


def test_empty_label_and_annotation_maps_are_omitted(server: FakeApiServer) -> None:
    server.add_node("bare", labels={}, annotations={})
    assert "labels" not in server.node("bare")["metadata"]
    assert "annotations" not in server.node("bare")["metadata"]


def test_list_returns_nodes_by_name_with_the_cluster_resource_version(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    server.add_node("a-first")
    listing = as_json(api, api.list_node())
    assert [item["metadata"]["name"] for item in listing["items"]] == ["a-first", NODE]
    assert listing["metadata"]["resourceVersion"] == version_of(server, "a-first")

    status, raw, _ = raw_request(server, "GET", "/api/v1/nodes")
    assert (status, raw["kind"], raw["apiVersion"]) == (200, "NodeList", "v1")
    assert "kind" not in raw["items"][0]


def test_list_filters_by_label_and_field_selector(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    server.add_node("other", labels={"intel.com/ncs2": "2"})

    def names(label: str | None = None, field: str | None = None) -> list[str]:
        listing = as_json(api, api.list_node(label_selector=label, field_selector=field))
        return [item["metadata"]["name"] for item in listing["items"]]

    assert names(label="intel.com/ncs2") == ["other"]
    assert names(label="!intel.com/ncs2") == [NODE]
    assert names(label="intel.com/ncs2=2") == ["other"]
    assert names(label="intel.com/ncs2!=2") == [NODE]
    assert names(field=f"metadata.name={NODE}") == [NODE]
    assert names(field=f"metadata.name!={NODE}") == ["other"]


def test_missing_node_answers_404_not_found(api: client.CoreV1Api) -> None:
    with pytest.raises(NotFoundException) as reading:
        api.read_node("ghost")
    with pytest.raises(NotFoundException) as patching_it:
        api.patch_node("ghost", {"metadata": {"labels": {"a": "b"}}})

    for error in (reading.value, patching_it.value):
        assert error.status == 404
        assert status_of(error) == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'nodes "ghost" not found', "reason": "NotFound",
            "details": {"name": "ghost", "kind": "nodes"}, "code": 404,
        }


def test_a_deleted_node_answers_404_and_bumps_the_counter(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    server.add_node("doomed")
    before = int(version_of(server, "doomed"))
    server.delete_node("doomed")

    with pytest.raises(NotFoundException):
        api.read_node("doomed")
    listing = as_json(api, api.list_node())
    assert int(listing["metadata"]["resourceVersion"]) == before + 1


def test_unknown_path_answers_404_status(server: FakeApiServer) -> None:
    status, body, _ = raw_request(server, "GET", "/apis/example.com/v1/widgets")
    assert status == 404
    assert body["message"] == "the server could not find the requested resource"
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "NotFound", 404)


def test_discovery_documents_are_served(server: FakeApiServer) -> None:
    assert raw_request(server, "GET", "/version")[1]["major"] == "1"
    assert raw_request(server, "GET", "/api")[1]["versions"] == ["v1"]
    assert raw_request(server, "GET", "/apis")[1]["groups"] == []


# --- The three patch types --------------------------------------------------------------------


def test_a_dict_patch_goes_as_strategic_merge_and_merges_annotations(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    node = api.patch_node(NODE, {"metadata": {"annotations": {OUR_KEY: "stick"}}})

    assert server.requests[-1].content_type == STRATEGIC_MERGE_PATCH
    assert annotations_of(server) == {"team": "edge", OUR_KEY: "stick"}
    assert as_json(api, node)["metadata"]["annotations"] == {"team": "edge", OUR_KEY: "stick"}


def test_a_list_patch_goes_as_json_patch(server: FakeApiServer, api: client.CoreV1Api) -> None:
    api.patch_node(NODE, [{"op": "add", "path": "/metadata/labels/zone", "value": "a"}])

    assert server.requests[-1].content_type == JSON_PATCH
    assert labels_of(server) == {HOSTNAME_LABEL: NODE, "zone": "a"}


def test_merge_patch_by_content_type_argument(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    api.patch_node(NODE, {"metadata": {"labels": {"zone": "a"}}}, _content_type=MERGE_PATCH)

    assert server.requests[-1].content_type == MERGE_PATCH
    assert labels_of(server) == {HOSTNAME_LABEL: NODE, "zone": "a"}


def test_merge_patch_by_default_header_overrides_the_chosen_type(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    api.api_client.set_default_header("Content-Type", MERGE_PATCH)
    api.patch_node(NODE, {"metadata": {"labels": {"zone": "b"}}})
    api.patch_node(NODE, {"metadata": {"labels": {"zone": "c"}}}, _content_type=JSON_PATCH)

    assert [r.content_type for r in server.requests] == [MERGE_PATCH, MERGE_PATCH]
    assert labels_of(server) == {HOSTNAME_LABEL: NODE, "zone": "c"}


@pytest.mark.parametrize("content_type", [MERGE_PATCH, STRATEGIC_MERGE_PATCH])
def test_null_deletes_a_key(
    server: FakeApiServer, api: client.CoreV1Api, content_type: str
) -> None:
    api.patch_node(NODE, {"metadata": {"annotations": {"team": None, "b": "2"}}},
                   _content_type=content_type)
    assert annotations_of(server) == {"b": "2"}

    api.patch_node(NODE, {"metadata": {"annotations": {"b": None}}}, _content_type=content_type)
    assert "annotations" not in server.node(NODE)["metadata"]


def test_json_patch_decodes_an_escaped_slash(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    api.patch_node(NODE, [
        {"op": "add", "path": "/metadata/labels/ncs2.intel.com~1MYRIAD.0.name", "value": "ma2485"},
    ])
    assert labels_of(server)["ncs2.intel.com/MYRIAD.0.name"] == "ma2485"


@pytest.mark.parametrize("operations", [
    [{"op": "remove", "path": "/metadata/labels/absent"}],
    [{"op": "replace", "path": "/metadata/labels/absent", "value": "x"}],
    [{"op": "test", "path": f"/metadata/labels/{HOSTNAME_LABEL.replace('/', '~1')}",
      "value": "someone-else"}],
], ids=["remove-missing", "replace-missing", "failed-test"])
def test_json_patch_that_does_not_apply_is_422_and_stores_nothing(
    server: FakeApiServer, api: client.CoreV1Api, operations: list[Json]
) -> None:
    before = server.node(NODE)
    first = [{"op": "add", "path": "/metadata/labels/first", "value": "applied?"}]

    with pytest.raises(UnprocessableEntityException) as raised:
        api.patch_node(NODE, first + operations)

    assert raised.value.status == 422
    assert status_of(raised.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the server rejected our request due to an error in our request",
        "reason": "Invalid", "details": {}, "code": 422,
    }
    assert server.node(NODE) == before


def test_json_patch_add_under_an_omitted_map_is_422(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    server.add_node("bare")
    with pytest.raises(UnprocessableEntityException):
        api.patch_node("bare", [{"op": "add", "path": "/metadata/labels/a", "value": "b"}])

    api.patch_node("bare", [{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}])
    assert labels_of(server, "bare") == {"a": "b"}


def test_json_patch_test_of_an_absent_member_against_null_passes(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    api.patch_node(NODE, [
        {"op": "test", "path": "/metadata/labels/zone", "value": None},
        {"op": "add", "path": "/metadata/labels/zone", "value": "a"},
    ])
    assert labels_of(server)["zone"] == "a"


def test_json_patch_that_is_not_a_list_is_400(server: FakeApiServer) -> None:
    body = json.dumps({"op": "add"}).encode()
    status, reply, _ = raw_request(server, "PATCH", f"/api/v1/nodes/{NODE}", body, JSON_PATCH)
    assert (status, reply["reason"]) == (400, "BadRequest")


@pytest.mark.parametrize("content_type", [APPLY_PATCH_YAML, "application/json", "text/plain"])
def test_unsupported_patch_types_are_415(server: FakeApiServer, content_type: str) -> None:
    before = server.node(NODE)
    body = b'{"metadata": {"labels": {"a": "b"}}}'
    status, reply, _ = raw_request(server, "PATCH", f"/api/v1/nodes/{NODE}", body, content_type)

    assert (status, reply["kind"], reply["reason"], reply["code"]) == (
        415, "Status", "UnsupportedMediaType", 415)
    assert reply["message"].startswith("the body of the request was in an unknown format")
    assert server.node(NODE) == before


def test_content_type_parameters_are_ignored(server: FakeApiServer) -> None:
    body = b'{"metadata": {"labels": {"a": "b"}}}'
    status, _, _ = raw_request(server, "PATCH", f"/api/v1/nodes/{NODE}", body,
                               f"{MERGE_PATCH}; charset=utf-8")
    assert status == 200
    assert labels_of(server)["a"] == "b"


def test_a_body_that_is_not_json_is_400(server: FakeApiServer) -> None:
    before = server.node(NODE)
    status, reply, _ = raw_request(server, "PATCH", f"/api/v1/nodes/{NODE}", b"{labels: x",
                                   MERGE_PATCH)
    assert (status, reply["reason"], reply["code"]) == (400, "BadRequest", 400)
    assert server.node(NODE) == before
    assert server.requests[-1].body == "{labels: x"


def test_strategic_merge_merges_conditions_by_type_and_replaces_taints(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    server.add_node("kubelet", spec={"taints": [{"key": "a", "effect": "NoSchedule"}]},
                    status={"conditions": [{"type": "Ready", "status": "False"},
                                           {"type": "DiskPressure", "status": "False"}]})

    api.patch_node_status("kubelet", {"status": {"conditions": [
        {"type": "Ready", "status": "True"}, {"type": "PIDPressure", "status": "False"}]}})
    api.patch_node("kubelet", {"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}})

    stored = server.node("kubelet")
    assert stored["status"]["conditions"] == [
        {"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"},
        {"type": "PIDPressure", "status": "False"}]
    assert stored["spec"]["taints"] == [{"key": "b", "effect": "NoExecute"}]


def test_strategic_list_item_without_its_merge_key_is_500(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    with pytest.raises(ServiceException) as raised:
        api.patch_node_status(NODE, {"status": {"conditions": [{"status": "True"}]}})
    assert raised.value.status == 500
    assert "does not contain declared merge key: type" in status_of(raised.value)["message"]


# --- What the apiserver checks after patching --------------------------------------------------


def test_stale_resource_version_is_409_and_stores_nothing(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    stale = version_of(server)
    api.patch_node(NODE, {"metadata": {"labels": {"zone": "a"}}})
    before = server.node(NODE)

    with pytest.raises(ConflictException) as raised:
        api.patch_node(NODE, {"metadata": {"resourceVersion": stale, "labels": {"zone": "b"}}})

    assert raised.value.status == 409
    assert status_of(raised.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'Operation cannot be fulfilled on nodes "{NODE}": the object has been '
                   "modified; please apply your changes to the latest version and try again",
        "reason": "Conflict", "details": {"name": NODE, "kind": "nodes"}, "code": 409,
    }
    assert server.node(NODE) == before


def test_current_resource_version_is_accepted(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    current = version_of(server)
    api.patch_node(NODE, {"metadata": {"resourceVersion": current, "labels": {"zone": "a"}}},
                   _content_type=MERGE_PATCH)
    assert labels_of(server)["zone"] == "a"
    assert int(version_of(server)) > int(current)


def test_a_change_elsewhere_makes_a_read_version_stale(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    read = version_of(server)
    server.edit_node(NODE, lambda node: node["metadata"]["labels"].update(zone="x"))

    with pytest.raises(ConflictException):
        api.patch_node(NODE, [{"op": "replace", "path": "/metadata/resourceVersion",
                               "value": read}])
    assert labels_of(server)["zone"] == "x"


def test_a_noop_patch_keeps_the_resource_version(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    before = version_of(server)
    node = api.patch_node(NODE, {"metadata": {"labels": {HOSTNAME_LABEL: NODE}}})

    assert version_of(server) == before
    assert node.metadata is not None and node.metadata.resource_version == before


def test_every_change_bumps_the_cluster_wide_counter(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    server.add_node("second")
    first_before, second_before = int(version_of(server)), int(version_of(server, "second"))

    api.patch_node("second", {"metadata": {"labels": {"zone": "a"}}})
    api.patch_node(NODE, {"metadata": {"labels": {"zone": "a"}}})

    assert int(version_of(server, "second")) > second_before > first_before
    assert int(version_of(server)) > int(version_of(server, "second"))


def test_invalid_label_value_is_422_with_a_cause_and_stores_nothing(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    before = server.node(NODE)
    with pytest.raises(UnprocessableEntityException) as raised:
        api.patch_node(NODE, {"metadata": {"labels": {"zone": "not valid!"}}})

    detail = (
        "a valid label must be an empty string or consist of alphanumeric characters, '-', "
        "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  "
        "or 'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    )
    assert status_of(raised.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'Node "{NODE}" is invalid: metadata.labels: Invalid value: '
                   f'"not valid!": {detail}',
        "reason": "Invalid",
        "details": {"name": NODE, "kind": "Node", "causes": [{
            "reason": "FieldValueInvalid", "message": f'Invalid value: "not valid!": {detail}',
            "field": "metadata.labels"}]},
        "code": 422,
    }
    assert server.node(NODE) == before


def test_invalid_keys_and_oversized_annotations_are_422(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    before = server.node(NODE)
    bad_patches = [
        {"metadata": {"labels": {"-bad": "x"}}},
        {"metadata": {"labels": {"a/b/c": "x"}}},
        {"metadata": {"labels": {"x" * 64: "x"}}},
        {"metadata": {"labels": {"zone": "v" * 64}}},
        {"metadata": {"annotations": {"Bad_Prefix/x": "y"}}},
        {"metadata": {"annotations": {"big": "x" * ANNOTATIONS_TOTAL_MAX_BYTES}}},
    ]
    for patch in bad_patches:
        with pytest.raises(UnprocessableEntityException) as raised:
            api.patch_node(NODE, patch)
        assert status_of(raised.value)["reason"] == "Invalid", patch
    assert server.node(NODE) == before


def test_a_label_of_the_wrong_json_type_is_422(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    with pytest.raises(UnprocessableEntityException) as raised:
        api.patch_node(NODE, {"metadata": {"labels": {"count": 2}}})
    assert "cannot unmarshal number" in status_of(raised.value)["message"]


def test_renaming_through_a_patch_is_400(server: FakeApiServer, api: client.CoreV1Api) -> None:
    before = server.node(NODE)
    with pytest.raises(ApiException) as raised:
        api.patch_node(NODE, {"metadata": {"name": "renamed"}})

    assert raised.value.status == 400
    assert status_of(raised.value)["message"] == (
        f"the name of the object (renamed) does not match the name on the URL ({NODE})")
    assert server.node(NODE) == before


def test_node_patch_ignores_status(server: FakeApiServer, api: client.CoreV1Api) -> None:
    api.patch_node(NODE, {"metadata": {"labels": {"zone": "a"}},
                          "status": {"phase": "Running"}})
    assert server.node(NODE)["status"] == {}
    assert labels_of(server)["zone"] == "a"


def test_status_patch_applies_metadata_and_status_but_not_spec(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    api.patch_node_status(NODE, {"metadata": {"labels": {"zone": "a"}},
                                 "spec": {"unschedulable": True},
                                 "status": {"capacity": {"intel.com/ncs2": "1"}}})
    stored = server.node(NODE)
    assert stored["metadata"]["labels"]["zone"] == "a"
    assert stored["status"] == {"capacity": {"intel.com/ncs2": "1"}}
    assert stored["spec"] == {}


def test_unknown_metadata_fields_are_dropped_with_a_warning(server: FakeApiServer) -> None:
    body = b'{"metadata": {"colour": "blue", "labels": {"a": "b"}}}'
    status, reply, headers = raw_request(server, "PATCH", f"/api/v1/nodes/{NODE}", body,
                                         MERGE_PATCH)
    assert status == 200
    assert "colour" not in reply["metadata"]
    assert headers["Warning"] == '299 - "unknown field \\"metadata.colour\\""'

    strict = f"/api/v1/nodes/{NODE}?fieldValidation=Strict"
    assert raw_request(server, "PATCH", strict, body, MERGE_PATCH)[0] == 400


def test_dry_run_answers_without_storing(server: FakeApiServer, api: client.CoreV1Api) -> None:
    before = server.node(NODE)
    node = api.patch_node(NODE, {"metadata": {"labels": {"zone": "a"}}}, dry_run="All")
    assert node.metadata is not None and node.metadata.labels is not None
    assert node.metadata.labels["zone"] == "a"
    assert server.node(NODE) == before


# --- Fault injection ----------------------------------------------------------------------------


def test_injected_403_raises_forbidden_and_leaves_the_node_unchanged(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    before = server.node(NODE)
    server.fail(403, method="PATCH")

    with pytest.raises(ForbiddenException) as raised:
        api.patch_node(NODE, {"metadata": {"labels": {"zone": "a"}}})

    assert raised.value.status == 403
    assert status_of(raised.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'nodes "{NODE}" is forbidden: User "{SERVICE_ACCOUNT_USER}" cannot patch '
                   'resource "nodes" in API group "" at the cluster scope',
        "reason": "Forbidden", "details": {"name": NODE, "kind": "nodes"}, "code": 403,
    }
    assert server.node(NODE) == before
    assert server.patches() == []
    assert server.requests[-1].status == 403


def test_injected_500_then_success(server: FakeApiServer, api: client.CoreV1Api) -> None:
    server.fail(500)

    with pytest.raises(ServiceException) as raised:
        api.patch_node(NODE, {"metadata": {"labels": {"zone": "a"}}})
    assert status_of(raised.value)["reason"] == "InternalError"
    assert "zone" not in labels_of(server)

    api.patch_node(NODE, {"metadata": {"labels": {"zone": "a"}}})
    assert labels_of(server)["zone"] == "a"
    assert [record.status for record in server.requests] == [500, 200]
    assert len(server.patches(NODE)) == 1


@pytest.mark.parametrize(("code", "reason"), [
    (403, "Forbidden"), (404, "NotFound"), (409, "Conflict"), (422, "Invalid"),
    (429, "TooManyRequests"), (500, "InternalError"), (502, None),
    (503, "ServiceUnavailable"), (504, "Timeout"),
])
def test_injected_failures_carry_a_status_body(
    server: FakeApiServer, code: int, reason: str | None
) -> None:
    server.fail(code)
    status, body, _ = raw_request(server, "GET", f"/api/v1/nodes/{NODE}")
    assert (status, body["kind"], body["status"]) == (code, "Status", "Failure")
    assert body["code"] == code
    assert body.get("reason") == reason
    assert body["message"]


def test_injected_429_carries_retry_after(server: FakeApiServer, api: client.CoreV1Api) -> None:
    server.fail(429, retry_after=7)
    with pytest.raises(ApiException) as raised:
        api.read_node(NODE)
    assert raised.value.status == 429
    assert raised.value.headers is not None and raised.value.headers["Retry-After"] == "7"
    assert status_of(raised.value)["details"] == {"retryAfterSeconds": 7}


def test_faults_match_method_and_path_suffix_and_count_down(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    server.fail(503, method="PATCH", path_suffix="/status", times=2)

    api.patch_node(NODE, {"metadata": {"labels": {"zone": "a"}}})
    api.read_node(NODE)
    for _ in range(2):
        with pytest.raises(ServiceException):
            api.patch_node_status(NODE, {"status": {"phase": "Running"}})
    api.patch_node_status(NODE, {"status": {"phase": "Running"}})

    assert [record.status for record in server.requests] == [200, 200, 503, 503, 200]


def test_a_fault_without_a_count_lasts_until_cleared(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    server.fail(502, times=None)
    for _ in range(3):
        with pytest.raises(ServiceException):
            api.read_node(NODE)
    server.clear_faults()
    assert api.read_node(NODE).metadata is not None


def test_a_dropped_patch_raises_protocol_error_and_stores_nothing(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    before = server.node(NODE)
    server.drop(method="PATCH")

    # urllib3 never retries a read error on PATCH, whatever the client's retries are.
    with pytest.raises(urllib3.exceptions.ProtocolError):
        api.patch_node(NODE, {"metadata": {"labels": {"zone": "a"}}})

    assert server.node(NODE) == before
    assert [(r.status, r.dropped) for r in server.requests] == [(None, True)]
    api.patch_node(NODE, {"metadata": {"labels": {"zone": "a"}}})
    assert labels_of(server)["zone"] == "a"


def test_the_default_client_silently_retries_a_dropped_get(server: FakeApiServer) -> None:
    default_api = make_api(server, retries=None)
    server.drop(method="GET")
    assert default_api.read_node(NODE).metadata is not None
    assert [r.status for r in server.requests] == [None, 200]

    server.reset_log()
    server.drop(method="GET")
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        make_api(server, retries=0).read_node(NODE)
    server.drop(method="GET")
    with pytest.raises(urllib3.exceptions.ProtocolError):
        make_api(server, retries=False).read_node(NODE)
    assert [r.status for r in server.requests] == [None, None]


def test_a_delayed_patch_times_out_in_the_client_but_is_applied(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    server.delay(0.6, method="PATCH")

    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        api.patch_node(NODE, {"metadata": {"labels": {"zone": "late"}}},
                       _request_timeout=(1, 0.2))

    assert server.wait_for(lambda fake: len(fake.patches(NODE)) == 1, WAIT_SECONDS)
    assert labels_of(server)["zone"] == "late"


def test_require_token_answers_401_without_the_bearer_token(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    server.require_token("s3cret")
    with pytest.raises(UnauthorizedException) as raised:
        api.read_node(NODE)
    assert status_of(raised.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401}

    configuration = client.Configuration(host=server.url, api_key={"authorization": "s3cret"},
                                         api_key_prefix={"authorization": "Bearer"})
    configuration.retries = False
    authorised = client.CoreV1Api(client.ApiClient(configuration))
    assert authorised.read_node(NODE).metadata is not None
    assert server.requests[-1].headers["authorization"] == "Bearer s3cret"


# --- The request log -----------------------------------------------------------------------------


def test_the_log_records_what_was_sent(server: FakeApiServer, api: client.CoreV1Api) -> None:
    api.patch_node(NODE, {"metadata": {"labels": {"zone": "a"}}}, field_manager="ncs2")

    (record,) = server.requests
    assert (record.method, record.path, record.query) == (
        "PATCH", f"/api/v1/nodes/{NODE}", {"fieldManager": "ncs2"})
    assert record.body == {"metadata": {"labels": {"zone": "a"}}}
    assert (record.status, record.node_name) == (200, NODE)
    server.reset_log()
    assert server.requests == []


def test_wait_for_wakes_when_a_request_arrives_from_another_thread(
    server: FakeApiServer, api: client.CoreV1Api
) -> None:
    assert not server.wait_for(lambda fake: bool(fake.patches()), 0.05)

    worker = threading.Thread(
        target=api.patch_node, args=(NODE, {"metadata": {"labels": {"zone": "a"}}}))
    worker.start()
    assert server.wait_for(lambda fake: bool(fake.patches(NODE)), WAIT_SECONDS)
    worker.join(WAIT_SECONDS)
    assert labels_of(server)["zone"] == "a"


# --- Patch algorithms, directly ------------------------------------------------------------------


def test_strategic_directives_replace_delete_and_trim() -> None:
    original: Json = {
        "metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"]},
        "status": {"conditions": [{"type": "Ready"}, {"type": "Gone"}], "capacity": {"c": "1"}},
    }
    patch = {
        "metadata": {"labels": {"$patch": "replace", "c": "3"},
                     "$deleteFromPrimitiveList/finalizers": ["x"]},
        "status": {"conditions": [{"type": "Gone", "$patch": "delete"}],
                   "$retainKeys": ["conditions"]},
    }
    assert patching.apply_strategic_merge_patch(original, patch) == {
        "metadata": {"labels": {"c": "3"}, "finalizers": ["y"]},
        "status": {"conditions": [{"type": "Ready"}]},
    }
    assert original["metadata"]["labels"] == {"a": "1", "b": "2"}


def test_json_patch_move_copy_and_array_positions() -> None:
    document = {"a": {"b": 1}, "list": [1, 2]}
    operations = [
        {"op": "copy", "from": "/a/b", "path": "/c"},
        {"op": "move", "from": "/a", "path": "/moved"},
        {"op": "add", "path": "/list/-", "value": 3},
        {"op": "add", "path": "/list/0", "value": 0},
        {"op": "remove", "path": "/list/1"},
        {"op": "test", "path": "/c", "value": 1},
    ]
    assert patching.apply_json_patch(document, operations) == {
        "c": 1, "moved": {"b": 1}, "list": [0, 2, 3]}
    with pytest.raises(patching.PatchNotApplicable):
        patching.apply_json_patch(document, [{"op": "test", "path": "/a/b", "value": True}])


def test_json_pointers_decode_tilde_after_slash() -> None:
    document = {"a/b": 1, "c~d": 2, "e~1f": 3}
    operations = [
        {"op": "remove", "path": "/a~1b"},
        {"op": "remove", "path": "/c~0d"},
        {"op": "remove", "path": "/e~01f"},
    ]
    assert patching.apply_json_patch(document, operations) == {}


# --- As a process ------------------------------------------------------------------------------


def test_runs_as_a_process_until_sigterm(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "support" / "apiserver.py"
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--node", "n1", "--node", "n2",
         "--port-file", str(port_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(PROCESS_START_SECONDS), "the server printed no URL"
        url = process.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port_file.read_text().strip()}"

        configuration = client.Configuration(host=url)
        configuration.retries = False
        core = client.CoreV1Api(client.ApiClient(configuration))
        listing = as_json(core, core.list_node())
        assert [item["metadata"]["name"] for item in listing["items"]] == ["n1", "n2"]

        process.send_signal(signal.SIGTERM)
        assert process.wait(PROCESS_START_SECONDS) == 0
    finally:
        process.kill()
        process.communicate()
