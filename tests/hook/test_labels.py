"""Label validation follows k8s.io/apimachinery to the character."""

from __future__ import annotations

import pytest

from nfd_hook import labels


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("intel.com/ncs2", True),
        ("ncs2.intel.com/MYRIAD.0.FP16", True),
        ("plain", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("x/" + "a" * 63, True),
        ("a" * 253 + "/n", True),  # apimachinery checks the total length only
        ("a" * 254 + "/n", False),
        ("Intel.com/ncs2", False),  # prefix is a lower-case DNS subdomain
        ("intel.com/", False),
        ("/name", False),
        ("intel..com/n", False),
        ("intel.com/-n", False),
        ("intel.com/n-", False),
        ("a/b/c", False),
        ("intel.com/n\n", False),
        ("intel.com/n=1", False),
        ("intel.com/MYRIAD.0.FP16 ", False),
        ("", False),
    ],
)
def test_qualified_names(key: str, valid: bool) -> None:
    assert labels.is_qualified_name(key) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("", True), ("true", True), ("2", True), ("a.b-c_d", True), ("v" * 63, True),
        ("v" * 64, False), ("-a", False), ("a-", False), ("a b", False), ("a\n", False),
        ("é", False), ("a=b", False),
    ],
)
def test_label_values(value: str, valid: bool) -> None:
    assert labels.is_valid_label_value(value) is valid


def test_render_refuses_an_invalid_label() -> None:
    with pytest.raises(ValueError, match="refusing to render invalid label"):
        labels.render_nfd({"intel.com/ncs2": "1\nevil=true"})


class FakeStick:
    def __init__(self, capabilities: tuple[str, ...], full_name: str = "X") -> None:
        self.capabilities = capabilities
        self.full_name = full_name


def test_capabilities_that_make_invalid_names_are_dropped() -> None:
    stick = FakeStick(("FP16", "BAD NAME", "x" * 80, "EXPORT_IMPORT"))

    assert labels.feature_labels([stick]) == {
        "intel.com/ncs2": "1",
        "ncs2.intel.com/MYRIAD.FP16": "true",
        "ncs2.intel.com/MYRIAD.EXPORT_IMPORT": "true",
    }


def test_owned_keys() -> None:
    assert labels.is_owned_key("intel.com/ncs2")
    assert labels.is_owned_key("ncs2.intel.com/MYRIAD.0.name")
    assert not labels.is_owned_key("intel.com/ncs2x")
    assert not labels.is_owned_key("feature.node.kubernetes.io/usb-ff_03e7_2485.present")
