"""The Kubernetes API: one Node, our keys only, errors sorted into what to do next.

The labeller owns `intel.com/ncs2` and everything under `ncs2.intel.com/`, and nothing
else: a patch sets the keys it wants and nulls the owned keys it no longer wants, as one
JSON merge patch (`null` deletes a key; other keys are untouched). Nothing is sent when
the Node already matches.

Every `ApiException` and transport error is translated here, in one place, into
`Temporary` (retry later, with a delay) or `Permanent` (log once, wait for a change or
the next resync): the rest of the labeller never sees the client's exceptions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, cast
from urllib.parse import quote

from labeller import metrics
from nfd_hook import __version__, labels
from nfd_hook.text import one_line

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
USER_AGENT = f"ncs2-labeller/{__version__}"
# Connect timeout, in whole seconds: clients up to 35 ignore a float timeout.
CONNECT_TIMEOUT = 5
# Longest Status message kept in a log line: bodies come from the server, unbounded.
MESSAGE_MAX = 200
RBAC_HINT = (
    'grant the ServiceAccount "get" and "patch" on "nodes" (ClusterRole ncs2-labeller in '
    "deploy/base)"
)


class ApiError(Exception):
    """A failed API call, already explained for a log line."""


class Temporary(ApiError):
    """Worth retrying: 5xx, 429, 409, timeouts, refused or dropped connections."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Permanent(ApiError):
    """Not worth retrying until something changes: 401, 403, 404, 422, bad config."""


class ObjectMeta(TypedDict, total=False):
    name: str
    labels: dict[str, str]
    annotations: dict[str, str]
    resourceVersion: str


@dataclass(frozen=True)
class Desired:
    """What the Node should carry under our keys."""

    annotations: Mapping[str, str]
    labels: Mapping[str, str] | None  # None: labels are NFD's, leave them alone


def _owned_diff(current: object, wanted: Mapping[str, str],
                owned: Callable[[str], bool]) -> dict[str, str | None]:
    # A map the server omitted, or (from a broken server) one that is not a map, holds
    # nothing of ours.
    existing: Mapping[str, object] = current if isinstance(current, Mapping) else {}
    diff: dict[str, str | None] = {
        key: value for key, value in wanted.items() if existing.get(key) != value
    }
    for key in existing:
        if isinstance(key, str) and owned(key) and key not in wanted:
            diff[key] = None
    return diff


def node_patch(meta: ObjectMeta, desired: Desired) -> dict[str, Any] | None:
    """The merge patch that brings `meta` to `desired`, or None when it already matches."""
    changes: dict[str, Any] = {}
    annotations = _owned_diff(meta.get("annotations"), desired.annotations,
                              labels.is_owned_annotation)
    if annotations:
        changes["annotations"] = annotations
    if desired.labels is not None:
        label_changes = _owned_diff(meta.get("labels"), desired.labels, labels.is_owned_key)
        if label_changes:
            changes["labels"] = label_changes
    return {"metadata": changes} if changes else None


def describe_patch(patch: Mapping[str, Any]) -> str:
    """`set a, b; removed c` for a log line."""
    meta = patch.get("metadata", {})
    set_keys = [k for part in meta.values() for k, v in part.items() if v is not None]
    removed = [k for part in meta.values() for k, v in part.items() if v is None]
    words = []
    if set_keys:
        words.append("set " + ", ".join(sorted(set_keys)))
    if removed:
        words.append("removed " + ", ".join(sorted(removed)))
    return "; ".join(words)


def _status_message(body: str | bytes | None) -> str:
    import json

    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        message = json.loads(body or "").get("message", "")
    except (ValueError, AttributeError, RecursionError):
        message = ""
    return one_line(str(message), MESSAGE_MAX)


def translate(exc: Exception, node: str, verb: str) -> ApiError:
    """Our error for an exception raised by the client during `verb` on `node`."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    if isinstance(exc, (ApiException, HttpFailure)) and not exc.status:
        # The client reports TLS failures as an ApiException without a status.
        reason = one_line(str(exc.reason or ""), MESSAGE_MAX)
        return Temporary(f"{verb} node {node} failed: {reason or 'no answer'}")
    if isinstance(exc, (ApiException, HttpFailure)):
        status = exc.status
        detail = _status_message(exc.body)
        if status == 403:
            return Permanent(f"forbidden to {verb} node {node}: {RBAC_HINT}"
                             + (f" (server: {detail})" if detail else ""))
        if status == 401:
            return Permanent(f"unauthorized to {verb} node {node}: the token was rejected")
        if status == 404:
            return Permanent(f"node {node} does not exist")
        if status == 422:
            return Permanent(f"the server rejected the {verb} of node {node}: {detail}")
        if status == 429 or status == 409 or status >= 500:
            retry_after = _retry_after(exc)
            reason = one_line(str(exc.reason or ""), MESSAGE_MAX) or "error"
            return Temporary(f"{verb} node {node} failed with {status} {reason}",
                             retry_after)
        return Permanent(f"{verb} node {node} failed with {status}: {detail}")
    if isinstance(exc, (HTTPError, OSError)):
        return Temporary(f"{verb} node {node} failed: {_transport_reason(exc)}")
    if isinstance(exc, NotJson):
        return Temporary(f"{verb} node {node}: the server's answer is not a JSON object")
    if isinstance(exc, ValueError):
        # http.client refuses a header with a newline, e.g. from a token file ending in
        # one. Its message quotes the header, so it is not logged: it holds the token.
        return Permanent(f"cannot {verb} node {node}: the request has an invalid header "
                         "(check the token or kubeconfig for a stray newline)")
    raise exc


def _retry_after(exc: Any) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _transport_reason(exc: Exception) -> str:
    from urllib3.exceptions import MaxRetryError

    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    name = type(exc).__name__
    if "Timeout" in name:
        return "timed out"
    if "NewConnection" in name or isinstance(exc, ConnectionRefusedError):
        return "connection refused or unreachable"
    if "Protocol" in name or "RemoteDisconnected" in str(exc):
        return "connection dropped"
    return name


class HttpFailure(Exception):
    """A non-2xx answer, for clients whose REST layer returns instead of raising."""

    def __init__(self, status: int, reason: str, body: bytes, headers: Mapping[str, str]
                 ) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body
        self.headers = headers


class NodeApi:
    """GET and merge-PATCH of one Node through the official client's REST layer.

    NB: CoreV1Api is not used. The client imports its API classes lazily, and
    `core_v1_api` alone adds about 22 MB of resident code objects for two calls; the
    ApiClient's `rest_client.request` and `Configuration.auth_settings()` keep the client's
    credential handling (kubeconfig, exec plugins, in-cluster token refresh) and TLS set-up,
    and take the same keywords on every client version.
    """

    def __init__(self, node: str, kubeconfig: str, timeout: int) -> None:
        self.node = node
        self._timeout = (min(CONNECT_TIMEOUT, timeout), timeout)
        self._configuration, self._rest = _rest_client(kubeconfig)
        self._url = f"{self._configuration.host.rstrip('/')}/api/v1/nodes/{quote(node, safe='')}"

    def get(self) -> ObjectMeta:
        return self._call("get", "GET", None)

    def patch(self, body: Mapping[str, Any]) -> ObjectMeta:
        return self._call("patch", "PATCH", body)

    def _headers(self, with_body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if with_body:
            headers["Content-Type"] = MERGE_PATCH
        for setting in self._configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        return headers

    def _call(self, verb: str, method: str, body: Mapping[str, Any] | None) -> ObjectMeta:
        try:
            response = self._rest.request(method=method, url=self._url,
                                          headers=self._headers(body is not None),
                                          body=body, _request_timeout=self._timeout)
            data = response.data if response.data is not None else response.read()
            if not 200 <= response.status < 300:
                raise HttpFailure(response.status, response.reason or "", data or b"",
                                  response.headers or {})
            meta = _meta(data)
        except Exception as exc:
            metrics.API_REQUESTS.labels(verb=verb, outcome="error").inc()
            raise translate(exc, self.node, verb) from exc
        metrics.API_REQUESTS.labels(verb=verb, outcome="ok").inc()
        return meta


class NotJson(ValueError):
    """A 2xx answer whose body is not a JSON object."""


def _meta(data: bytes) -> ObjectMeta:
    import json

    try:
        document = json.loads(data)
    except (ValueError, TypeError, RecursionError) as exc:  # deep nesting: RecursionError
        raise NotJson() from exc
    if not isinstance(document, dict):
        raise NotJson()
    meta = document.get("metadata")
    return cast(ObjectMeta, meta if isinstance(meta, dict) else {})


def _rest_client(kubeconfig: str) -> tuple[Any, Any]:
    """The client's Configuration and REST layer, with retries left to us."""
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config

    # The client ships no type hints worth checking against.
    client: Any = k8s_client
    config: Any = k8s_config

    configuration = client.Configuration()
    try:
        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        else:
            config.load_incluster_config(client_configuration=configuration)
    except Exception as exc:  # the loaders raise YAML, key and type errors too
        source = kubeconfig or "the in-cluster service account"
        reason = str(exc).splitlines()[0][:MESSAGE_MAX] if str(exc) else type(exc).__name__
        raise Permanent(f"cannot load Kubernetes credentials from {source}: {reason}") from exc
    # urllib3 would otherwise retry on its own, hiding faults and doubling requests; the
    # labeller has its own backoff.
    configuration.retries = 0
    return configuration, client.ApiClient(configuration).rest_client
