"""The three PATCH algorithms of kube-apiserver, applied to plain JSON documents.

The stand-in API server (`support.apiserver`) answers PATCH requests from the official
client, so it must change a Node exactly the way the real server would for each content type:

- `apply_merge_patch`: RFC 7386 JSON merge patch. Objects merge recursively, `null` deletes
  a key, anything else (arrays included) replaces the target.
- `apply_strategic_merge_patch`: Kubernetes' strategic merge patch. Maps behave as in a
  merge patch; lists are replaced unless the Go type declares a patch strategy for them
  (see `NODE_LIST_STRATEGIES`). The `$patch`, `$retainKeys` and `$deleteFromPrimitiveList`
  directives are honoured; `$setElementOrder` is accepted and ignored.
- `apply_json_patch`: RFC 6902 operations addressed by RFC 6901 pointers, with the
  semantics of the json-patch library the apiserver uses (a `remove` or `replace` of a
  missing member fails; a `test` against a missing member passes only for `null`).

Nothing here knows HTTP. Failures are raised as one of three errors, which the server maps
to the status the real apiserver answers with: `MalformedPatch` (400, the patch document is
not of the right form), `PatchNotApplicable` (422, a well-formed patch that cannot apply to
this object) and `MergeKeyMissing` (500: the apiserver passes this error through unwrapped).

NB: inputs are never modified; every function works on a deep copy of the target.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

# A decoded JSON value. `Any` because JSON documents are walked by isinstance checks.
Json = Any

# Strategic-merge-patch directive keys, from k8s.io/apimachinery/pkg/util/strategicpatch.
DIRECTIVE_KEY = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER_PREFIX = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST_PREFIX = "$deleteFromPrimitiveList/"
REPLACE = "replace"
DELETE = "delete"
MERGE = "merge"

# The RFC 6902 token that addresses the position after the last array element.
APPEND_TOKEN = "-"


class PatchError(Exception):
    """A patch that could not be applied; the subclass says how the apiserver answers."""


class MalformedPatch(PatchError):
    """The patch document is not of the form its content type requires (HTTP 400)."""


class PatchNotApplicable(PatchError):
    """A well-formed patch that cannot be applied to this object (HTTP 422)."""


class MergeKeyMissing(PatchError):
    """A strategic patch list item lacks its declared merge key (HTTP 500 upstream)."""


@dataclasses.dataclass(frozen=True)
class ListStrategy:
    """How a strategic merge patch treats one list field.

    `merge_key` names the field that identifies items of a list of objects; `None` means a
    list of primitives merged as a set (Go `patchStrategy:"merge"` without a merge key).
    """

    merge_key: str | None


# Node fields that carry a patch strategy in the Go types (k8s.io/api/core/v1 types.go and
# metav1.ObjectMeta). Every other list is atomic: a patch replaces it whole. Notably
# `spec.taints` has no strategy and is replaced.
NODE_LIST_STRATEGIES: Mapping[tuple[str, ...], ListStrategy] = {
    ("metadata", "ownerReferences"): ListStrategy(merge_key="uid"),
    ("metadata", "finalizers"): ListStrategy(merge_key=None),
    ("spec", "podCIDRs"): ListStrategy(merge_key=None),
    ("status", "conditions"): ListStrategy(merge_key="type"),
    ("status", "addresses"): ListStrategy(merge_key="type"),
}

# Marks a strategic-patch value that removes its key from the parent map.
_REMOVED = object()


def apply_merge_patch(target: Json, patch: Json) -> Json:
    """Apply an RFC 7386 merge patch to `target` and return the result."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def apply_strategic_merge_patch(
    target: Mapping[str, Json],
    patch: Mapping[str, Json],
    strategies: Mapping[tuple[str, ...], ListStrategy] = NODE_LIST_STRATEGIES,
) -> dict[str, Json]:
    """Apply a strategic merge patch to the object `target` and return the result."""
    merged = _merge_map(target, patch, (), strategies)
    return {} if merged is _REMOVED else merged


def _merge_map(
    original: Mapping[str, Json],
    patch: Mapping[str, Json],
    path: tuple[str, ...],
    strategies: Mapping[tuple[str, ...], ListStrategy],
) -> Any:
    """Merge one map of a strategic patch into `original` (returns `_REMOVED` to delete)."""
    # A `$patch` directive on a map acts on the map as a whole.
    directive = patch.get(DIRECTIVE_KEY)
    if directive == DELETE:
        return _REMOVED
    if directive == REPLACE:
        rest = {k: v for k, v in patch.items() if k != DIRECTIVE_KEY}
        return _merge_map({}, rest, path, strategies)
    if directive not in (None, MERGE):
        raise MalformedPatch(f"unknown patch type: {directive} in map: {dict(patch)}")

    # `$retainKeys` clears every field of the original that the patch does not name.
    result = copy.deepcopy(dict(original))
    retained = patch.get(RETAIN_KEYS)
    if retained is not None:
        if not isinstance(retained, list):
            raise MalformedPatch(f"invalid {RETAIN_KEYS} directive: {retained!r}")
        result = {k: v for k, v in result.items() if k in retained}

    # Ordinary keys: null deletes, maps and lists merge, anything else replaces.
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        child = (*path, key)
        if value is None:
            result.pop(key, None)
            continue
        merged = _merge_value(result.get(key), value, child, strategies)
        if merged is _REMOVED:
            result.pop(key, None)
        else:
            result[key] = merged

    # `$deleteFromPrimitiveList/<field>` removes values from a set-like list.
    for key, value in patch.items():
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST_PREFIX):
            field = key[len(DELETE_FROM_PRIMITIVE_LIST_PREFIX):]
            _delete_from_primitive_list(result, field, value)
    return result


def _merge_value(
    original: Json,
    patch: Json,
    path: tuple[str, ...],
    strategies: Mapping[tuple[str, ...], ListStrategy],
) -> Json:
    """Merge one non-null patch value into the original value at `path`."""
    if isinstance(patch, dict):
        return _merge_map(original if isinstance(original, dict) else {}, patch, path, strategies)
    if isinstance(patch, list):
        return _merge_list(original if isinstance(original, list) else [], patch, path, strategies)
    return copy.deepcopy(patch)


def _merge_list(
    original: Sequence[Json],
    patch: Sequence[Json],
    path: tuple[str, ...],
    strategies: Mapping[tuple[str, ...], ListStrategy],
) -> list[Json]:
    """Merge a patch list: replaced, merged as a set, or merged item by item by key."""
    strategy = strategies.get(path)
    if strategy is None:
        return copy.deepcopy(list(patch))

    # `{"$patch": "replace"}` as a list item replaces the list with the other items.
    directives = [item for item in patch if isinstance(item, dict) and DIRECTIVE_KEY in item]
    if any(item.get(DIRECTIVE_KEY) == REPLACE for item in directives):
        kept = [item for item in patch if not isinstance(item, dict) or DIRECTIVE_KEY not in item]
        return copy.deepcopy(kept)

    if strategy.merge_key is None:
        result = copy.deepcopy(list(original))
        result.extend(copy.deepcopy(item) for item in patch if item not in result)
        return result
    return _merge_keyed_list(original, patch, strategy.merge_key, path, strategies)


def _merge_keyed_list(
    original: Sequence[Json],
    patch: Sequence[Json],
    merge_key: str,
    path: tuple[str, ...],
    strategies: Mapping[tuple[str, ...], ListStrategy],
) -> list[Json]:
    """Merge a list of objects identified by `merge_key`.

    NB: items keep the original order and new items are appended. The real algorithm may
    interleave them differently when the patch lists several items; `$setElementOrder`,
    which would settle the order, is ignored here.
    """
    result = copy.deepcopy(list(original))
    for item in patch:
        if not isinstance(item, dict):
            raise MalformedPatch(f"expected a map in list {'.'.join(path)}, got: {item!r}")
        if merge_key not in item:
            raise MergeKeyMissing(f"map: {item} does not contain declared merge key: {merge_key}")
        position = next(
            (i for i, old in enumerate(result)
             if isinstance(old, dict) and old.get(merge_key) == item[merge_key]),
            None,
        )
        if item.get(DIRECTIVE_KEY) == DELETE:
            if position is not None:
                del result[position]
            continue
        base = result[position] if position is not None else {}
        merged = _merge_map(base, item, path, strategies)
        if position is None:
            result.append(merged)
        else:
            result[position] = merged
    return result


def _delete_from_primitive_list(result: dict[str, Json], field: str, values: Json) -> None:
    """Remove `values` from the primitive list `result[field]`, dropping it when empty."""
    if not isinstance(values, list):
        raise MalformedPatch(f"invalid {DELETE_FROM_PRIMITIVE_LIST_PREFIX}{field}: {values!r}")
    current = result.get(field)
    if not isinstance(current, list):
        return
    remaining = [item for item in current if item not in values]
    if remaining:
        result[field] = remaining
    else:
        result.pop(field, None)


# --- RFC 6902 JSON patch -----------------------------------------------------------------


def apply_json_patch(target: Json, operations: Json) -> Json:
    """Apply a list of RFC 6902 operations to `target` and return the result."""
    if not isinstance(operations, list):
        raise MalformedPatch("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    document = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict):
            raise MalformedPatch(f"json: cannot unmarshal {operation!r} into jsonpatch.Operation")
        document = _apply_operation(document, operation)
    return document


def _apply_operation(document: Json, operation: Mapping[str, Json]) -> Json:
    """Apply one operation; returns the new document (the root itself may be replaced)."""
    kind = operation.get("op")
    path = _pointer(operation, "path", kind)
    if kind == "add":
        return _add(document, path, _value(operation, kind), kind)
    if kind == "remove":
        document, _ = _remove(document, path, kind)
        return document
    if kind == "replace":
        document, _ = _remove(document, path, kind)
        return _add(document, path, _value(operation, kind), kind)
    if kind == "move":
        source = _pointer(operation, "from", kind)
        if path[: len(source)] == source and len(path) > len(source):
            raise PatchNotApplicable("move operation: cannot move a value into its own child")
        document, moved = _remove(document, source, kind)
        return _add(document, path, moved, kind)
    if kind == "copy":
        source = _pointer(operation, "from", kind)
        return _add(document, path, copy.deepcopy(_get(document, source, kind)), kind)
    if kind == "test":
        _test(document, path, _value(operation, kind))
        return document
    raise PatchNotApplicable(f"Unexpected kind: {kind}")


def _pointer(operation: Mapping[str, Json], member: str, kind: Json) -> list[str]:
    """Decode the RFC 6901 pointer in `operation[member]` into its reference tokens."""
    pointer = operation.get(member)
    if not isinstance(pointer, str):
        raise PatchNotApplicable(f"{kind} operation: missing or invalid '{member}'")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        message = f"{kind} operation does not apply: doc is missing path: {pointer}"
        raise PatchNotApplicable(message)
    # NB: `~1` must be decoded before `~0`, so that `~01` reads as `~1` and not as `/`.
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def _value(operation: Mapping[str, Json], kind: Json) -> Json:
    """The `value` member of an operation, which add, replace and test require."""
    if "value" not in operation:
        raise PatchNotApplicable(f"{kind} operation: missing 'value'")
    return copy.deepcopy(operation["value"])


def _array_index(token: str, length: int, *, allow_end: bool, kind: Json) -> int:
    """Decode an array index token; `allow_end` admits `-` and `length` (for add)."""
    if allow_end and token == APPEND_TOKEN:
        return length
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchNotApplicable(f"{kind} operation: invalid array index: {token}")
    index = int(token)
    if index > length or (index == length and not allow_end):
        raise PatchNotApplicable(f"{kind} operation: array index out of bounds: {index}")
    return index


def _get(document: Json, tokens: Sequence[str], kind: Json) -> Json:
    """The value at `tokens`, or PatchNotApplicable if any step is missing."""
    current = document
    for token in tokens:
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list):
            current = current[_array_index(token, len(current), allow_end=False, kind=kind)]
        else:
            raise PatchNotApplicable(f"{kind} operation does not apply: doc is missing path")
    return current


def _add(document: Json, tokens: Sequence[str], value: Json, kind: Json) -> Json:
    """Add (or overwrite) the member at `tokens`; its parent must exist."""
    if not tokens:
        return value
    parent = _get(document, tokens[:-1], kind)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), allow_end=True, kind=kind), value)
    else:
        raise PatchNotApplicable(f"{kind} operation does not apply: doc is missing path")
    return document


def _remove(document: Json, tokens: Sequence[str], kind: Json) -> tuple[Json, Json]:
    """Remove the member at `tokens`, which must exist; returns (document, removed value)."""
    if not tokens:
        return None, document
    parent = _get(document, tokens[:-1], kind)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return document, parent.pop(last)
    if isinstance(parent, list):
        return document, parent.pop(_array_index(last, len(parent), allow_end=False, kind=kind))
    raise PatchNotApplicable(f"{kind} operation does not apply: doc is missing key")


def _test(document: Json, tokens: Sequence[str], expected: Json) -> None:
    """Check the value at `tokens`; a missing member under an existing parent equals null."""
    parent = _get(document, tokens[:-1], "test") if tokens else None
    if tokens and isinstance(parent, dict) and tokens[-1] not in parent:
        actual = None
    else:
        actual = _get(document, tokens, "test")
    if not json_equal(actual, expected):
        raise PatchNotApplicable(f"testing value /{'/'.join(tokens)} failed: test failed")


def json_equal(left: Json, right: Json) -> bool:
    """Equality of JSON values; unlike `==`, `true` is not the number 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    return type(left) is type(right) and left == right
