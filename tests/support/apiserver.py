"""A loopback stand-in for kube-apiserver's Node API, for tests, demos and benchmarks.

No kube-apiserver can run here, and the code under test talks to the API through the
official `kubernetes` client over real HTTP. This module serves the few Node endpoints that
code uses, on 127.0.0.1 only, and answers them the way the real server does:

- `GET /api/v1/nodes[/NAME[/status]]`, `PATCH /api/v1/nodes/NAME[/status]`, and the
  discovery documents `/version`, `/api`, `/api/v1` and `/apis`.
- PATCH is dispatched on the Content-Type, like the apiserver: merge patch, strategic merge
  patch and JSON patch (see `support.patching`). The result goes through the checks the
  real server makes, in its order: the name may not change (400), a resourceVersion carried
  by the patch must match (409), then the Node strategy (a PATCH of the node ignores
  status, a PATCH of `nodes/status` ignores spec but applies metadata, as upstream does)
  and validation of labels and annotations (422, with causes). Nothing is stored unless
  every step passes, and a patch that changes nothing does not bump the resourceVersion.
- Errors are `Status` objects with the message, reason, details and code the real server
  would send, so the client raises the same `ApiException` subclass with the same body.

Fault injection (`fail`, `delay`, `drop`, `require_token`) lets a test script failures;
every request is logged as a `RequestRecord`, and `wait_for` blocks on a condition
variable until a predicate over the server holds.

Deviations from the real apiserver, chosen to keep the stand-in small:
- `application/apply-patch+yaml` (server-side apply) is answered 415, as any other type.
- No watch (`?watch=true` answers 400), no PUT, POST or DELETE (405), no `limit` paging.
- Label selectors support `k`, `!k`, `k=v`, `k==v` and `k!=v`; set-based ones answer 400.
  Field selectors support `metadata.name` only.
- Unknown fields are pruned (with a Warning header) at the top level and in metadata only.
- Strategic merge keeps the original order of merged list items and appends new ones.
- A request body is read by Content-Length only; chunked bodies are not supported.

Run as a process for demos and benchmarks:
    python tests/support/apiserver.py --port 0 --node NAME [--node NAME...] [--port-file P]
It prints its URL, serves until SIGTERM or SIGINT, and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import datetime
import json
import logging
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

if __package__ in (None, ""):
    # NB: run as a script only tests/support is on sys.path; the package root is tests/.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support import patching
from support.patching import Json

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
NODES_PATH = "/api/v1/nodes"
RESOURCE = "nodes"
STATUS_SUBRESOURCE = "status"
KIND = "Node"
API_VERSION = "v1"
# The identity named in Forbidden messages: the labeller's service account in its chart.
SERVICE_ACCOUNT_USER = "system:serviceaccount:ncs2-system:ncs2-labeller"
# Arbitrary start of the cluster-wide resourceVersion counter (etcd revisions upstream).
FIRST_RESOURCE_VERSION = 1000
# How long serve_forever() may take to notice stop(); it bounds each test's teardown.
SHUTDOWN_POLL_SECONDS = 0.05
DEFAULT_RETRY_AFTER_SECONDS = 1
# Kubernetes minor version the client 37.x pairs with, reported by /version.
SERVER_MINOR_VERSION = "37"

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH_YAML = "application/apply-patch+yaml"
SUPPORTED_PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)
CLI_DESCRIPTION = "Serve a stand-in kube-apiserver Node API on 127.0.0.1."

# Limits from k8s.io/apimachinery/pkg/util/validation and pkg/api/validation.
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
DNS_SUBDOMAIN_MAX = 253
ANNOTATIONS_TOTAL_MAX_BYTES = 256 * 1024

_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = f"({_QUALIFIED_NAME_FMT})?"
_DNS_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN_FMT = f"{_DNS_LABEL_FMT}(\\.{_DNS_LABEL_FMT})*"
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, "
    "'-', '_' or '.', and must start and end with an alphanumeric character"
)
_DNS_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)

# ObjectMeta's JSON fields in their Go order, which is also the order the server writes.
_METADATA_FIELDS = (
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
)
_NODE_FIELDS = ("kind", "apiVersion", "metadata", "spec", "status")

# Reasons of metav1.Status by HTTP code; 502 has none upstream (StatusReasonUnknown).
_REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType",
    422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
    503: "ServiceUnavailable", 504: "Timeout",
}
_REJECTED_MESSAGE = "the server rejected our request due to an error in our request"
_OPTIMISTIC_LOCK_MESSAGE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)

_FAIL, _DELAY, _DROP = "fail", "delay", "drop"


# --- Status bodies -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reply:
    """One HTTP answer: status code, JSON body and extra headers."""

    status: int
    body: Json
    headers: tuple[tuple[str, str], ...] = ()


class _Refusal(Exception):
    """Ends request processing with an error reply; raised where the check fails."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.body.get("message", ""))
        self.reply = reply


def status_reply(
    code: int,
    message: str,
    details: Mapping[str, Json] | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Reply:
    """A failure `Status` in the real server's field order; Go omits an empty reason."""
    body: dict[str, Json] = {
        "kind": "Status", "apiVersion": API_VERSION, "metadata": {},
        "status": "Failure", "message": message,
    }
    if code in _REASONS:
        body["reason"] = _REASONS[code]
    if details is not None:
        body["details"] = dict(details)
    body["code"] = code
    return Reply(code, body, headers)


def _resource_details(name: str | None) -> dict[str, str]:
    """Details naming the object, as NotFound, Conflict and Forbidden carry them."""
    return {"name": name, "kind": RESOURCE} if name else {"kind": RESOURCE}


def not_found_reply(name: str) -> Reply:
    """404 for a missing node."""
    return status_reply(404, f'{RESOURCE} "{name}" not found', _resource_details(name))


def conflict_reply(name: str) -> Reply:
    """409 for a stale resourceVersion, worded as the registry's optimistic lock."""
    message = f'Operation cannot be fulfilled on {RESOURCE} "{name}": {_OPTIMISTIC_LOCK_MESSAGE}'
    return status_reply(409, message, _resource_details(name))


def forbidden_reply(verb: str, resource: str, name: str | None, user: str) -> Reply:
    """403 worded as the RBAC authorizer words it."""
    subject = f'{RESOURCE} "{name}"' if name else RESOURCE
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        'in API group "" at the cluster scope'
    )
    return status_reply(403, message, _resource_details(name))


# --- Validation, as k8s.io/apimachinery words it ------------------------------------------


@dataclasses.dataclass(frozen=True)
class FieldError:
    """One field.Error: where, what kind, and the detail; `value` None means not shown."""

    field: str
    reason: str
    detail: str
    value: str | None = None

    @property
    def message(self) -> str:
        """The cause message, without the field path."""
        if self.reason == "FieldValueTooLong":
            return f"Too long: {self.detail}"
        return f"Invalid value: {json.dumps(self.value)}: {self.detail}"

    def cause(self) -> dict[str, str]:
        """The StatusCause for a 422 body."""
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    """validation.RegexError: the message, examples and the regular expression."""
    quoted = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {quoted}regex used for validation is '{fmt}')"


def dns_subdomain_errors(value: str) -> list[str]:
    """validation.IsDNS1123Subdomain."""
    errors = []
    if len(value) > DNS_SUBDOMAIN_MAX:
        errors.append(f"must be no more than {DNS_SUBDOMAIN_MAX} characters")
    if re.fullmatch(_DNS_SUBDOMAIN_FMT, value) is None:
        errors.append(_regex_error(_DNS_SUBDOMAIN_MSG, _DNS_SUBDOMAIN_FMT, "example.com"))
    return errors


def qualified_name_errors(value: str) -> list[str]:
    """validation.IsQualifiedName: an optional DNS subdomain prefix, `/`, and a name."""
    parts = value.split("/")
    examples = ("MyName", "my.name", "123-abc")
    if len(parts) > 2:
        return [
            "a qualified name " + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, *examples)
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    errors = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        errors.extend(f"prefix part {e}" for e in dns_subdomain_errors(prefix) if prefix)
    name = parts[-1]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        errors.append(f"name part must be no more than {QUALIFIED_NAME_MAX} characters")
    if re.fullmatch(_QUALIFIED_NAME_FMT, name) is None:
        errors.append(
            "name part " + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, *examples))
    return errors


def label_value_errors(value: str) -> list[str]:
    """validation.IsValidLabelValue; the empty string is valid."""
    errors = []
    if len(value) > LABEL_VALUE_MAX:
        errors.append(f"must be no more than {LABEL_VALUE_MAX} characters")
    if re.fullmatch(_LABEL_VALUE_FMT, value) is None:
        examples = ("MyValue", "my_value", "12345")
        errors.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, *examples))
    return errors


def metadata_errors(metadata: Mapping[str, Json]) -> list[FieldError]:
    """ValidateLabels and ValidateAnnotations on `metadata`, keys in sorted order."""
    errors: list[FieldError] = []
    labels: Mapping[str, str] = metadata.get("labels") or {}
    for key in sorted(labels):
        for detail in qualified_name_errors(key):
            errors.append(FieldError("metadata.labels", "FieldValueInvalid", detail, key))
        for detail in label_value_errors(labels[key]):
            errors.append(FieldError("metadata.labels", "FieldValueInvalid", detail, labels[key]))
    annotations: Mapping[str, str] = metadata.get("annotations") or {}
    for key in sorted(annotations):
        # NB: upstream checks the lower-cased key, so upper case is allowed here.
        for detail in qualified_name_errors(key.lower()):
            errors.append(FieldError("metadata.annotations", "FieldValueInvalid", detail, key))
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > ANNOTATIONS_TOTAL_MAX_BYTES:
        detail = f"may not be more than {ANNOTATIONS_TOTAL_MAX_BYTES} bytes"
        errors.append(FieldError("metadata.annotations", "FieldValueTooLong", detail))
    return errors


def invalid_reply(kind: str, name: str, errors: Sequence[FieldError]) -> Reply:
    """422 Invalid as errors.NewInvalid builds it: one message, one cause per error."""
    summary = str(errors[0]) if len(errors) == 1 else f"[{', '.join(map(str, errors))}]"
    details: dict[str, Json] = {"name": name, "kind": kind} if kind else {}
    details["causes"] = [error.cause() for error in errors]
    return status_reply(422, f'{kind} "{name}" is invalid: {summary}', details)


# --- The Node document ---------------------------------------------------------------------


def _now() -> str:
    """RFC 3339 UTC with second precision, as metav1.Time serialises."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _go_json_type(value: Json) -> str:
    """The JSON type name encoding/json uses in its unmarshal errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _shape_error(document: Json) -> str | None:
    """Why the patched JSON would not decode into a v1.Node, or None if it would."""
    def wrong(value: Json, where: str, go_type: str) -> str:
        return f"json: cannot unmarshal {_go_json_type(value)} into Go {where} of type {go_type}"

    if not isinstance(document, dict):
        return wrong(document, "value", "v1.Node")
    for part, go_type in (("metadata", "v1.ObjectMeta"), ("spec", "v1.NodeSpec"),
                          ("status", "v1.NodeStatus")):
        if document.get(part) is not None and not isinstance(document[part], dict):
            return wrong(document[part], f"struct field Node.{part}", go_type)
    metadata = document.get("metadata") or {}
    for key in ("name", "uid", "resourceVersion", "creationTimestamp"):
        if metadata.get(key) is not None and not isinstance(metadata[key], str):
            return wrong(metadata[key], f"struct field ObjectMeta.metadata.{key}", "string")
    for key in ("labels", "annotations"):
        mapping = metadata.get(key)
        if mapping is not None and not isinstance(mapping, dict):
            return wrong(mapping, f"struct field ObjectMeta.metadata.{key}", "map[string]string")
        for value in (mapping or {}).values():
            if value is not None and not isinstance(value, str):
                return wrong(value, f"struct field ObjectMeta.metadata.{key}", "string")
    return None


def _prune_unknown_fields(document: dict[str, Json]) -> list[str]:
    """Drop fields a v1.Node does not have (top level and metadata); returns their paths."""
    unknown = [key for key in document if key not in _NODE_FIELDS]
    metadata = document.get("metadata") or {}
    unknown_meta = [key for key in metadata if key not in _METADATA_FIELDS]
    for key in unknown:
        del document[key]
    for key in unknown_meta:
        del metadata[key]
    return unknown + [f"metadata.{key}" for key in unknown_meta]


def _canonical(document: Mapping[str, Json]) -> dict[str, Json]:
    """The node as the server encodes it: Go field order, empty metadata omitted.

    Go's `omitempty` drops empty strings, maps and lists, so a node whose last label was
    removed has no `labels` key at all. A null label value decodes to the empty string.
    """
    metadata = dict(document.get("metadata") or {})
    for key in ("labels", "annotations"):
        if isinstance(metadata.get(key), dict):
            metadata[key] = {k: "" if v is None else v for k, v in metadata[key].items()}
    ordered_meta = {
        key: metadata[key] for key in _METADATA_FIELDS
        if metadata.get(key) not in (None, "", {}, [], 0)
    }
    return {
        "kind": KIND, "apiVersion": API_VERSION, "metadata": ordered_meta,
        "spec": document.get("spec") or {}, "status": document.get("status") or {},
    }


def new_node(
    name: str,
    resource_version: int,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    spec: Mapping[str, Json] | None = None,
    status: Mapping[str, Json] | None = None,
) -> dict[str, Json]:
    """A freshly created Node document; raises ValueError if the real server would refuse it."""
    name_errors = dns_subdomain_errors(name)
    metadata = {
        "name": name, "uid": str(uuid.uuid4()), "resourceVersion": str(resource_version),
        "creationTimestamp": _now(), "labels": dict(labels or {}),
        "annotations": dict(annotations or {}),
    }
    errors = [FieldError("metadata.name", "FieldValueInvalid", e, name) for e in name_errors]
    errors += metadata_errors(metadata)
    if errors:
        raise ValueError(f'{KIND} "{name}" is invalid: {"; ".join(map(str, errors))}')
    document = {"metadata": metadata, "spec": copy.deepcopy(dict(spec or {})),
                "status": copy.deepcopy(dict(status or {}))}
    return _canonical(document)


# --- PATCH: the apiserver's steps, in its order --------------------------------------------


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, parameters dropped, lower case."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _decode_patch(body: bytes) -> Json:
    """The patch body as JSON, or 400 as the apiserver answers an undecodable patch."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _Refusal(status_reply(400, f"error decoding patch: {error}")) from error


def _apply(kind: str, current: dict[str, Json], patch: Json) -> Json:
    """Run the algorithm of the patch type and map its failures to the upstream status."""
    try:
        if kind == JSON_PATCH:
            return patching.apply_json_patch(current, patch)
        if kind == MERGE_PATCH:
            return patching.apply_merge_patch(current, patch)
        if not isinstance(patch, dict):
            message = (f"json: cannot unmarshal {_go_json_type(patch)} "
                       "into Go value of type map[string]interface {}")
            raise _Refusal(status_reply(400, message))
        return patching.apply_strategic_merge_patch(current, patch)
    except patching.MalformedPatch as error:
        raise _Refusal(status_reply(400, str(error))) from error
    except patching.PatchNotApplicable as error:
        # NB: upstream hides the json-patch error behind this generic message.
        logger.debug("Rejected a patch that does not apply: %s", error)
        raise _Refusal(status_reply(422, _REJECTED_MESSAGE, {})) from error
    except patching.MergeKeyMissing as error:
        # Upstream passes this error through unwrapped: 500 with no reason.
        reply = status_reply(500, str(error))
        reply.body.pop("reason")
        raise _Refusal(reply) from error


def patched_node(
    current: dict[str, Json],
    kind: str,
    patch: Json,
    subresource: str | None,
    strict: bool,
) -> tuple[dict[str, Json], list[str]]:
    """The node after `patch`, checked as upstream does; returns it and the warnings.

    Raises `_Refusal` with the upstream answer at the first failing step; `current` is
    never modified, so a refused patch stores nothing.
    """
    document = _apply(kind, current, patch)
    reset = "spec" if subresource == STATUS_SUBRESOURCE else "status"
    return checked_update(current, document, reset, strict)


def checked_update(
    current: dict[str, Json],
    document: Json,
    reset: str | None,
    strict: bool,
) -> tuple[dict[str, Json], list[str]]:
    """Check a changed node as the registry does; returns it and the warnings.

    `reset` names the part the strategy keeps from `current` ("status" for the node,
    "spec" for nodes/status, None to keep nothing). Raises `_Refusal` at the first failing
    step.
    """
    name = current["metadata"]["name"]

    # The patched JSON must still decode into a v1.Node.
    shape_error = _shape_error(document)
    if shape_error is not None:
        cause = FieldError("patch", "FieldValueInvalid", shape_error, json.dumps(document))
        raise _Refusal(invalid_reply("", "", [cause]))

    # Unknown fields are dropped with a warning, or refused under fieldValidation=Strict.
    unknown = _prune_unknown_fields(document)
    warnings = [f'unknown field "{path}"' for path in unknown]
    if strict and warnings:
        raise _Refusal(status_reply(400, "strict decoding error: " + ", ".join(warnings)))

    # checkName() in the patch handler: the URL names the object.
    metadata = document["metadata"] = document.get("metadata") or {}
    if metadata.get("name", "") != name:
        message = (f"the name of the object ({metadata.get('name', '')}) "
                   f"does not match the name on the URL ({name})")
        raise _Refusal(status_reply(400, message))

    # The registry's optimistic lock: a carried resourceVersion must be the stored one.
    stored_version = current["metadata"]["resourceVersion"]
    if metadata.get("resourceVersion") not in (None, "", stored_version):
        raise _Refusal(conflict_reply(name))

    # BeforeUpdate and the Node strategies: system fields kept, status or spec reset.
    uid = metadata.get("uid") or current["metadata"]["uid"]
    metadata.update(uid=uid, resourceVersion=stored_version,
                    creationTimestamp=current["metadata"]["creationTimestamp"])
    metadata.pop("namespace", None)
    if reset is not None:
        document[reset] = copy.deepcopy(current[reset])
    document = _canonical(document)

    # Validation: immutable uid, then labels and annotations.
    errors = metadata_errors(document["metadata"])
    if uid != current["metadata"]["uid"]:
        immutable = FieldError("metadata.uid", "FieldValueInvalid", "field is immutable", uid)
        errors.insert(0, immutable)
    if errors:
        raise _Refusal(invalid_reply(KIND, name, errors))
    return document, warnings


# --- Selectors ------------------------------------------------------------------------------


def _label_requirements(selector: str) -> list[tuple[str, str, str]]:
    """Parse an equality-based label selector into (key, operator, value) triples.

    Operators are `exists`, `!exists`, `=` and `!=`; set-based syntax answers 400.
    """
    if "(" in selector:
        message = f"set-based label selectors are not supported by the stand-in: {selector}"
        raise _Refusal(status_reply(400, message))
    requirements = []
    for text in filter(None, (part.strip() for part in selector.split(","))):
        match = re.fullmatch(r"([^!=\s]+)\s*(!=|==|=)\s*(\S*)", text)
        if match is not None:
            key, operator, value = match.groups()
            requirements.append((key, "!=" if operator == "!=" else "=", value))
        elif text.startswith("!"):
            requirements.append((text[1:].strip(), "!exists", ""))
        else:
            requirements.append((text, "exists", ""))
    return requirements


def _label_matcher(selector: str) -> Callable[[Mapping[str, str]], bool]:
    """A label selector as a predicate over a node's labels."""
    requirements = _label_requirements(selector)

    def matches(labels: Mapping[str, str]) -> bool:
        for key, operator, value in requirements:
            present = key in labels
            if (operator == "exists" and not present) or (operator == "!exists" and present):
                return False
            if operator == "=" and labels.get(key) != value:
                return False
            if operator == "!=" and labels.get(key) == value:
                return False
        return True

    return matches


def _field_matcher(selector: str) -> Callable[[str], bool]:
    """A `metadata.name` field selector as a predicate over node names."""
    requirements = []
    for text in filter(None, (part.strip() for part in selector.split(","))):
        match = re.fullmatch(r"([^!=\s]+)\s*(!=|==|=)\s*(\S*)", text)
        if match is None or match.group(1) != "metadata.name":
            field = match.group(1) if match else text
            raise _Refusal(status_reply(400, f"field label not supported: {field}"))
        requirements.append((match.group(2) == "!=", match.group(3)))

    def matches(name: str) -> bool:
        return all((name == value) != negated for negated, value in requirements)

    return matches


# --- Requests, faults and their log ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it, and how it was answered.

    `body` is the parsed JSON, the raw text if it was not JSON, or None if empty.
    `status` is None while the request is in flight and for a dropped connection.
    `time` is `time.monotonic()` at arrival.
    """

    method: str
    path: str
    query: Mapping[str, str]
    content_type: str | None
    body: Json
    headers: Mapping[str, str]
    time: float
    status: int | None = None
    dropped: bool = False

    @property
    def node_name(self) -> str | None:
        """The node the request addressed, if any."""
        target = _parse_node_path(self.path)
        return target.name if target else None


@dataclasses.dataclass(frozen=True)
class _Target:
    """What a `/api/v1/nodes...` path addresses."""

    name: str | None
    subresource: str | None

    @property
    def resource(self) -> str:
        return f"{RESOURCE}/{self.subresource}" if self.subresource else RESOURCE


def _parse_node_path(path: str) -> _Target | None:
    """The node and subresource of a path, or None if it is not a Node path."""
    if path == NODES_PATH:
        return _Target(None, None)
    if not path.startswith(NODES_PATH + "/"):
        return None
    parts = path[len(NODES_PATH) + 1:].split("/")
    if parts[0] == "" or len(parts) > 2 or (len(parts) == 2 and parts[1] != STATUS_SUBRESOURCE):
        return None
    return _Target(unquote(parts[0]), parts[1] if len(parts) == 2 else None)


@dataclasses.dataclass
class _Fault:
    """A scripted misbehaviour for the next `remaining` matching requests (None: forever)."""

    action: str
    remaining: int | None
    method: str | None
    path_suffix: str | None
    status: int = 0
    message: str | None = None
    seconds: float = 0.0
    retry_after: int = DEFAULT_RETRY_AFTER_SECONDS

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path_suffix is None or path.endswith(self.path_suffix))


def _verb(method: str, target: _Target | None) -> str:
    """The Kubernetes verb of a request, as RBAC names it."""
    if method == "GET":
        return "list" if target is not None and target.name is None else "get"
    return {"PATCH": "patch", "PUT": "update", "POST": "create"}.get(method, method.lower())


def injected_reply(fault: _Fault, method: str, path: str, user: str) -> Reply:
    """The Status a real server sends with the injected code, for this request."""
    target = _parse_node_path(path)
    name = target.name if target else None
    code, message = fault.status, fault.message
    if code == 403 and message is None:
        return forbidden_reply(_verb(method, target), target.resource if target else RESOURCE,
                               name, user)
    if code == 404 and message is None and name:
        return not_found_reply(name)
    if code == 409 and message is None and name:
        return conflict_reply(name)
    if code == 429:
        retry = str(fault.retry_after)
        return status_reply(429, message or "Too many requests, please try again later.",
                            {"retryAfterSeconds": fault.retry_after}, (("Retry-After", retry),))
    if code == 500:
        cause = message or "injected failure"
        text = message or f"Internal error occurred: {cause}"
        return status_reply(500, text, {"causes": [{"message": cause}]})
    defaults = {
        401: "Unauthorized",
        404: "the server could not find the requested resource",
        409: _OPTIMISTIC_LOCK_MESSAGE,
        422: _REJECTED_MESSAGE,
        503: "the server is currently unable to handle the request",
        504: "Timeout: request did not complete within requested timeout",
    }
    details = _resource_details(name) if code in (403, 404, 409) else {}
    return status_reply(code, message or defaults.get(code, f"injected HTTP {code}"), details)


# --- The server ---------------------------------------------------------------------------


class FakeApiServer:
    """kube-apiserver's Node API on 127.0.0.1, served from a daemon thread.

    All state (nodes, the resourceVersion counter, faults and the request log) is guarded
    by one condition variable, which every change notifies, so that `wait_for` can block
    until a predicate holds instead of polling.
    """

    def __init__(self, *, port: int = 0, user: str = SERVICE_ACCOUNT_USER) -> None:
        self._cond = threading.Condition()  # NB: an RLock inside, predicates may re-enter
        self._nodes: dict[str, dict[str, Json]] = {}
        self._revision = FIRST_RESOURCE_VERSION
        self._faults: list[_Fault] = []
        self._token: str | None = None
        self._log: list[RequestRecord] = []
        self._connections: set[socket.socket] = set()
        self._user = user
        self._stopping = threading.Event()
        self._httpd = _HttpServer((LOOPBACK, port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(SHUTDOWN_POLL_SECONDS,),
            name=f"fake-apiserver-{self.port}", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def __enter__(self) -> FakeApiServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving, wake delayed handlers and close open connections; idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._cond:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join()

    # Nodes ---------------------------------------------------------------------------------

    def add_node(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        *,
        spec: Mapping[str, Json] | None = None,
        status: Mapping[str, Json] | None = None,
    ) -> dict[str, Json]:
        """Create a node (ValueError if it exists or is invalid); returns a copy."""
        with self._cond:
            if name in self._nodes:
                raise ValueError(f"node {name!r} already exists")
            document = new_node(name, self._revision + 1, labels, annotations, spec, status)
            self._store(name, document)
            return copy.deepcopy(document)

    def node(self, name: str) -> dict[str, Json]:
        """A deep copy of the stored node; KeyError if there is none."""
        with self._cond:
            return copy.deepcopy(self._nodes[name])

    def delete_node(self, name: str) -> None:
        """Delete a node (KeyError if missing); the deletion bumps the resourceVersion."""
        with self._cond:
            del self._nodes[name]
            self._revision += 1
            self._cond.notify_all()

    def edit_node(self, name: str, change: Callable[[dict[str, Json]], None]) -> dict[str, Json]:
        """Change a node as another client would: `change` edits a copy in place.

        The result is validated like a patch (ValueError if refused) and stored with a new
        resourceVersion if anything changed; returns a copy of the stored node.
        """
        with self._cond:
            current = self._nodes[name]
            document = copy.deepcopy(current)
            change(document)
            try:
                updated, _ = checked_update(current, document, reset=None, strict=True)
            except _Refusal as refusal:
                raise ValueError(refusal.reply.body["message"]) from refusal
            if updated != current:
                self._store(name, updated)
            return copy.deepcopy(self._nodes[name])

    def _store(self, name: str, document: dict[str, Json]) -> None:
        """Store a changed node under the next cluster-wide resourceVersion."""
        self._revision += 1
        document["metadata"]["resourceVersion"] = str(self._revision)
        self._nodes[name] = document
        self._cond.notify_all()

    # Faults ----------------------------------------------------------------------------------

    def fail(
        self,
        status: int,
        *,
        times: int | None = 1,
        method: str | None = None,
        path_suffix: str | None = None,
        message: str | None = None,
        retry_after: int = DEFAULT_RETRY_AFTER_SECONDS,
    ) -> None:
        """Answer the next `times` matching requests with `status` and its Status body.

        `times=None` lasts until `clear_faults`. Such a request stores nothing. `message`
        replaces the default message; 429 carries `retry_after` in Retry-After and details.
        """
        if not 400 <= status <= 599:
            raise ValueError(f"not an error status: {status}")
        self._add_fault(_Fault(_FAIL, times, method, path_suffix, status=status,
                               message=message, retry_after=retry_after))

    def delay(
        self,
        seconds: float,
        *,
        times: int | None = 1,
        method: str | None = None,
        path_suffix: str | None = None,
    ) -> None:
        """Wait `seconds` before handling the next `times` matching requests.

        NB: the request is still applied after the delay even if the client has given up
        meanwhile, as a real server may apply a request its client timed out on. Its log
        record gets the status it was answered with; the answer itself goes nowhere.
        """
        self._add_fault(_Fault(_DELAY, times, method, path_suffix, seconds=seconds))

    def drop(
        self, *, times: int | None = 1, method: str | None = None, path_suffix: str | None = None
    ) -> None:
        """Read the next `times` matching requests, then close the connection unanswered."""
        self._add_fault(_Fault(_DROP, times, method, path_suffix))

    def require_token(self, token: str | None) -> None:
        """Answer 401 to requests without `Authorization: Bearer <token>` (None: no check)."""
        with self._cond:
            self._token = token

    def clear_faults(self) -> None:
        """Forget every scripted fault (not the token requirement)."""
        with self._cond:
            self._faults.clear()

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError(f"times must be None or at least 1, not {fault.remaining}")
        with self._cond:
            self._faults.append(fault)

    def _take_fault(self, action: str, method: str, path: str) -> _Fault | None:
        """Consume one use of the first fault of `action` matching the request."""
        with self._cond:
            for fault in self._faults:
                if fault.action == action and fault.matches(method, path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
            return None

    # Request log -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request since start or `reset_log`, in arrival order (a copy)."""
        with self._cond:
            return list(self._log)

    def patches(self, name: str | None = None) -> list[RequestRecord]:
        """PATCH requests answered 2xx, optionally only those addressing node `name`."""
        return [
            record for record in self.requests
            if record.method == "PATCH" and record.status is not None
            and 200 <= record.status < 300 and (name is None or record.node_name == name)
        ]

    def wait_for(self, predicate: Callable[[FakeApiServer], bool], timeout: float) -> bool:
        """Block until `predicate(self)` is true or `timeout` seconds pass; returns it."""
        with self._cond:
            return bool(self._cond.wait_for(lambda: predicate(self), timeout))

    def reset_log(self) -> None:
        """Forget the logged requests (requests in flight are not logged when answered)."""
        with self._cond:
            self._log.clear()

    def _log_arrival(self, record: RequestRecord) -> RequestRecord:
        with self._cond:
            self._log.append(record)
            self._cond.notify_all()
        return record

    def _log_answer(self, record: RequestRecord, status: int | None) -> None:
        """Replace the arrival record with its answered form (frozen records are shared)."""
        with self._cond:
            answered = dataclasses.replace(record, status=status, dropped=status is None)
            for index in range(len(self._log) - 1, -1, -1):
                if self._log[index] is record:
                    self._log[index] = answered
                    break
            self._cond.notify_all()

    # Serving -----------------------------------------------------------------------------------

    def _answer(self, method: str, path: str, query: Mapping[str, str],
                headers: Mapping[str, str], body: bytes) -> Reply:
        """Authentication, then injected failures, then the API itself."""
        with self._cond:
            token = self._token
        if token is not None and headers.get("authorization") != f"Bearer {token}":
            return status_reply(401, "Unauthorized")
        fault = self._take_fault(_FAIL, method, path)
        if fault is not None:
            return injected_reply(fault, method, path, self._user)
        try:
            return self._route(method, path, query, headers.get("content-type"), body)
        except _Refusal as refusal:
            return refusal.reply

    def _route(self, method: str, path: str, query: Mapping[str, str],
               content_type: str | None, body: bytes) -> Reply:
        """Dispatch on method and path; unknown paths get the generic 404 Status."""
        if method == "GET" and path in _DISCOVERY:
            return Reply(200, _DISCOVERY[path](self))
        target = _parse_node_path(path)
        if target is None:
            return status_reply(404, "the server could not find the requested resource", {})
        if method == "GET" and target.name is None:
            return self._list_nodes(query)
        if method == "GET" and target.name is not None:
            with self._cond:
                if target.name not in self._nodes:
                    return not_found_reply(target.name)
                return Reply(200, copy.deepcopy(self._nodes[target.name]))
        if method == "PATCH" and target.name is not None:
            return self._patch_node(target, content_type, body, query)
        message = "the server does not allow this method on the requested resource"
        return status_reply(405, message, {})

    def _list_nodes(self, query: Mapping[str, str]) -> Reply:
        """A NodeList sorted by name (etcd key order); items carry no kind or apiVersion."""
        if query.get("watch", "").lower() in ("true", "1"):
            return status_reply(400, "watch is not implemented by the stand-in API server")
        label_match = _label_matcher(query.get("labelSelector", ""))
        field_match = _field_matcher(query.get("fieldSelector", ""))
        with self._cond:
            items = [
                {k: copy.deepcopy(v) for k, v in node.items() if k not in ("kind", "apiVersion")}
                for name, node in sorted(self._nodes.items())
                if field_match(name) and label_match(node["metadata"].get("labels", {}))
            ]
            revision = str(self._revision)
        body = {"kind": "NodeList", "apiVersion": API_VERSION,
                "metadata": {"resourceVersion": revision}, "items": items}
        return Reply(200, body)

    def _patch_node(self, target: _Target, content_type: str | None, body: bytes,
                    query: Mapping[str, str]) -> Reply:
        """Apply a PATCH as upstream: type check, lookup, decode, patch, check, store."""
        kind = media_type(content_type)
        if kind not in SUPPORTED_PATCH_TYPES:
            message = ("the body of the request was in an unknown format - accepted media "
                       f"types include: {', '.join(SUPPORTED_PATCH_TYPES)}")
            return status_reply(415, message)
        name = target.name or ""
        strict = query.get("fieldValidation") == "Strict"
        with self._cond:
            current = self._nodes.get(name)
            if current is None:
                return not_found_reply(name)
            patch = _decode_patch(body)
            updated, warnings = patched_node(current, kind, patch, target.subresource, strict)
            if updated != current and query.get("dryRun") != "All":
                self._store(name, updated)
            answer = copy.deepcopy(updated)
        return Reply(200, answer, tuple(("Warning", _warning(text)) for text in warnings))


def _warning(text: str) -> str:
    """A Warning header value (RFC 7234 code 299, as the apiserver sends)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


def _version(server: FakeApiServer) -> Json:
    return {"major": "1", "minor": SERVER_MINOR_VERSION,
            "gitVersion": f"v1.{SERVER_MINOR_VERSION}.0", "platform": "linux/amd64"}


def _api_versions(server: FakeApiServer) -> Json:
    address = f"{LOOPBACK}:{server.port}"
    return {"kind": "APIVersions", "versions": [API_VERSION], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}


def _api_groups(server: FakeApiServer) -> Json:
    return {"kind": "APIGroupList", "apiVersion": API_VERSION, "groups": []}


def _core_resources(server: FakeApiServer) -> Json:
    verbs = ["get", "list", "patch"]
    resources = [
        {"name": RESOURCE, "singularName": "node", "namespaced": False, "kind": KIND,
         "verbs": verbs, "shortNames": ["no"]},
        {"name": f"{RESOURCE}/{STATUS_SUBRESOURCE}", "singularName": "", "namespaced": False,
         "kind": KIND, "verbs": ["get", "patch"]},
    ]
    return {"kind": "APIResourceList", "groupVersion": API_VERSION, "resources": resources}


_DISCOVERY: Mapping[str, Callable[[FakeApiServer], Json]] = {
    "/version": _version, "/api": _api_versions, "/apis": _api_groups,
    "/api/v1": _core_resources,
}


# --- HTTP plumbing -------------------------------------------------------------------------


class _HttpServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its FakeApiServer."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: FakeApiServer) -> None:
        self.api = api
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-request is normal here (drops, timeouts, stop()).
        logger.debug("Connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as the client's urllib3 pool expects."""

    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        with self.server.api._cond:
            self.server.api._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.api._cond:
                self.server.api._connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve()

    do_PATCH = do_POST = do_PUT = do_DELETE = do_GET

    def _serve(self) -> None:
        """Read, log, apply faults, answer.

        NB: the answer is logged before it is written, so a client holding its response
        already finds it in the log.
        """
        api = self.server.api
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        headers = {key.lower(): value for key, value in self.headers.items()}
        record = api._log_arrival(RequestRecord(
            method=self.command, path=url.path, query=dict(parse_qsl(url.query)),
            content_type=self.headers.get("Content-Type"), body=_record_body(body),
            headers=headers, time=time.monotonic()))

        if api._take_fault(_DROP, self.command, url.path) is not None:
            api._log_answer(record, None)
            self.close_connection = True
            return
        delay = api._take_fault(_DELAY, self.command, url.path)
        if delay is not None and api._stopping.wait(delay.seconds):
            self.close_connection = True
            return

        try:
            reply = api._answer(self.command, url.path, record.query, headers, body)
        except Exception:  # a bug in the stand-in must reach the test as a 500
            logger.exception("The stand-in failed on %s %s", self.command, self.path)
            reply = status_reply(500, "Internal error occurred: stand-in failure")
        api._log_answer(record, reply.status)
        self._write(reply)

    def _write(self, reply: Reply) -> None:
        """Send the reply as compact JSON; a client that went away is not an error."""
        payload = (json.dumps(reply.body, separators=(",", ":")) + "\n").encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-cache, private")
            self.send_header("Audit-Id", str(uuid.uuid4()))
            for key, value in reply.headers:
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            logger.debug("The client went away before its answer to %s", self.path)
            self.close_connection = True


def _record_body(body: bytes) -> Json:
    """A request body for the log: JSON if it parses, else text, None if empty."""
    if not body:
        return None
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# --- Command line --------------------------------------------------------------------------


def _write_port_file(path: Path, port: int) -> None:
    """Write the port atomically, so a caller polling the file never reads half of it."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(descriptor, "w") as handle:
        handle.write(f"{port}\n")
    os.replace(temporary, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT: exit 0, 1 if the port cannot be bound, 2 on usage."""
    parser = argparse.ArgumentParser(description=CLI_DESCRIPTION)
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument("--node", action="append", default=[], metavar="NAME",
                        help="create a node with this name (repeatable)")
    parser.add_argument("--port-file", type=Path, help="write the chosen port to this file")
    parser.add_argument("--token", help="require this bearer token")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        server = FakeApiServer(port=args.port)
    except OSError as error:
        print(f"cannot listen on {LOOPBACK}:{args.port}: {error}", file=sys.stderr)
        return 1
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with server:
        try:
            for name in args.node:
                server.add_node(name)
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        server.require_token(args.token)
        if args.port_file is not None:
            _write_port_file(args.port_file, server.port)
        print(server.url, flush=True)
        stop_requested.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
