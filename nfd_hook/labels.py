"""Node feature names and values, validated the way Kubernetes validates labels.

NFD passes every line of a feature file to nfd-master, which drops any label that fails
`k8s.io/apimachinery` validation. We validate before printing so that a bad name is caught
here, with a message, and so that nothing derived from a device can reach a feature file
unless it is a well-formed label: a feature file is line-oriented, and a newline or `=`
smuggled in a value would add a label of the device's choosing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

COUNT_LABEL = "intel.com/ncs2"
# Every per-device label and annotation lives under this prefix; it is also what the
# labeller owns and may delete on a node.
DEVICE_PREFIX = "ncs2.intel.com/"
# OpenVINO's name for the device class; the original plugin used it in its keys.
DEVICE_CLASS = "MYRIAD"
NAME_SUFFIX = "name"

# Limits from k8s.io/apimachinery/pkg/util/validation.
NAME_MAX = 63
PREFIX_MAX = 253
VALUE_MAX = 63

_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_PREFIX_RE = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")


class Indexed(Protocol):
    """What rendering needs of a device: its capabilities and full name."""

    @property
    def capabilities(self) -> Sequence[str]: ...

    @property
    def full_name(self) -> str: ...


def is_qualified_name(key: str) -> bool:
    """True if `key` is a valid label or annotation key (`[prefix/]name`)."""
    prefix, slash, name = key.rpartition("/")
    if slash and not (
        0 < len(prefix) <= PREFIX_MAX and _PREFIX_RE.fullmatch(prefix) is not None
    ):
        return False
    return 0 < len(name) <= NAME_MAX and _NAME_RE.fullmatch(name) is not None


def is_valid_label_value(value: str) -> bool:
    """True if `value` is a valid label value (empty is valid)."""
    return value == "" or (len(value) <= VALUE_MAX and _NAME_RE.fullmatch(value) is not None)


def device_key(index: int | None, leaf: str) -> str:
    """`ncs2.intel.com/MYRIAD.<index>.<leaf>`, without the index for a lone stick."""
    middle = DEVICE_CLASS if index is None else f"{DEVICE_CLASS}.{index}"
    return f"{DEVICE_PREFIX}{middle}.{leaf}"


def _indices(count: int) -> Iterable[int | None]:
    # The original plugin left the index out when a node had one stick; users' selectors
    # depend on that, so it stays.
    return [None] if count == 1 else range(count)


def feature_labels(devices: Sequence[Indexed]) -> dict[str, str]:
    """The NFD features for the counted devices, count first, in index order.

    A capability that would not make a valid label is dropped, never escaped: an escaped
    name would be a label nobody selects on.
    """
    if not devices:
        return {}
    labels = {COUNT_LABEL: str(len(devices))}
    for index, device in zip(_indices(len(devices)), devices, strict=True):
        for capability in device.capabilities:
            key = device_key(index, capability)
            if is_qualified_name(key):
                labels[key] = "true"
    return labels


def name_annotations(devices: Sequence[Indexed]) -> dict[str, str]:
    """The node annotations naming each counted device."""
    return {
        device_key(index, NAME_SUFFIX): device.full_name
        for index, device in zip(_indices(len(devices)), devices, strict=True)
    }


def render_nfd(labels: Mapping[str, str]) -> str:
    """Feature-file lines for `labels`, refusing anything that is not a valid label."""
    lines = []
    for key, value in labels.items():
        if not (is_qualified_name(key) and is_valid_label_value(value)):
            raise ValueError(f"refusing to render invalid label {key[:80]!r}")
        lines.append(f"{key}={value}\n")
    return "".join(lines)


def is_owned_key(key: str) -> bool:
    """True for the label keys this project writes and may delete."""
    return key == COUNT_LABEL or key.startswith(DEVICE_PREFIX)


def is_owned_annotation(key: str) -> bool:
    """True for the annotation keys this project writes and may delete.

    NB: narrower than labels: the count is a label only, so an annotation named
    `intel.com/ncs2` belongs to someone else.
    """
    return key.startswith(DEVICE_PREFIX)
