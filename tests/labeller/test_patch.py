"""The Node patch touches our keys only and is empty when nothing changed."""

from __future__ import annotations

from labeller import kube

NAME_X = "Intel Movidius Myriad X VPU"


def test_sets_wanted_and_nulls_stale_owned_annotations() -> None:
    meta: kube.ObjectMeta = {"annotations": {
        "ncs2.intel.com/MYRIAD.name": NAME_X,
        "ncs2.intel.com/MYRIAD.0.thermal": "40",
        "nfd.node.kubernetes.io/feature-labels": "intel.com/ncs2",
        "intel.com/other": "keep",
    }}
    desired = kube.Desired(annotations={
        "ncs2.intel.com/MYRIAD.0.name": NAME_X, "ncs2.intel.com/MYRIAD.1.name": NAME_X,
    }, labels=None)

    assert kube.node_patch(meta, desired) == {"metadata": {"annotations": {
        "ncs2.intel.com/MYRIAD.0.name": NAME_X,
        "ncs2.intel.com/MYRIAD.1.name": NAME_X,
        "ncs2.intel.com/MYRIAD.name": None,
        "ncs2.intel.com/MYRIAD.0.thermal": None,
    }}}


def test_no_patch_when_the_node_matches() -> None:
    meta: kube.ObjectMeta = {
        "annotations": {"ncs2.intel.com/MYRIAD.name": NAME_X, "other": "x"},
        "labels": {"intel.com/ncs2": "1", "kubernetes.io/hostname": "n1"},
    }
    desired = kube.Desired({"ncs2.intel.com/MYRIAD.name": NAME_X}, {"intel.com/ncs2": "1"})

    assert kube.node_patch(meta, desired) is None


def test_labels_are_left_to_nfd_unless_asked() -> None:
    meta: kube.ObjectMeta = {"labels": {"intel.com/ncs2": "3", "ncs2.intel.com/MYRIAD.0.FP16":
                                        "true"}}

    assert kube.node_patch(meta, kube.Desired({}, None)) is None


def test_write_labels_removes_stale_owned_labels_only() -> None:
    meta: kube.ObjectMeta = {"labels": {
        "intel.com/ncs2": "2",
        "ncs2.intel.com/MYRIAD.0.FP16": "true",
        "ncs2.intel.com/MYRIAD.1.FP16": "true",
        "feature.node.kubernetes.io/usb-ff_03e7_2485.present": "true",
    }}
    desired = kube.Desired({}, {"intel.com/ncs2": "1", "ncs2.intel.com/MYRIAD.FP16": "true"})

    assert kube.node_patch(meta, desired) == {"metadata": {"labels": {
        "intel.com/ncs2": "1",
        "ncs2.intel.com/MYRIAD.FP16": "true",
        "ncs2.intel.com/MYRIAD.0.FP16": None,
        "ncs2.intel.com/MYRIAD.1.FP16": None,
    }}}


def test_describe_patch_lists_set_and_removed_keys() -> None:
    patch = {"metadata": {"annotations": {"b": "1", "a": None}, "labels": {"c": "2"}}}

    assert kube.describe_patch(patch) == "set b, c; removed a"


def test_an_annotation_named_like_the_count_label_is_not_ours() -> None:
    meta: kube.ObjectMeta = {"annotations": {"intel.com/ncs2": "someone else's"}}

    assert kube.node_patch(meta, kube.Desired({}, None)) is None


def test_maps_that_are_not_maps_hold_nothing_of_ours() -> None:
    meta = {"annotations": ["x"], "labels": "y"}
    desired = kube.Desired({"ncs2.intel.com/MYRIAD.name": NAME_X}, {"intel.com/ncs2": "1"})

    assert kube.node_patch(meta, desired) == {"metadata": {  # type: ignore[arg-type]
        "annotations": {"ncs2.intel.com/MYRIAD.name": NAME_X},
        "labels": {"intel.com/ncs2": "1"},
    }}


def test_server_text_is_one_bounded_printable_line() -> None:
    body = b'{"message": "denied\\n\\u001b[31mred\\u202e \\u0000' + b"x" * 500 + b'"}'
    error = kube.translate(kube.HttpFailure(403, "Forbidden", body, {}), "n1", "patch")

    text = str(error)
    assert isinstance(error, kube.Permanent)
    assert text.isprintable() and "\x1b" not in text and "\u202e" not in text
    assert text.endswith("x" * 10 + ")") and len(text) < 400


def test_answers_that_are_not_json_are_temporary_and_bad_headers_permanent() -> None:
    not_json = kube.translate(kube.NotJson(), "n1", "get")
    bad_header = kube.translate(ValueError("Invalid header value b'Bearer SECRET\\n'"), "n1",
                                "get")

    assert isinstance(not_json, kube.Temporary)
    assert str(not_json) == "get node n1: the server's answer is not a JSON object"
    assert isinstance(bad_header, kube.Permanent)
    assert str(bad_header) == ("cannot get node n1: the request has an invalid header (check "
                               "the token or kubeconfig for a stray newline)")
    deep = b"[" * 100_000 + b"]" * 100_000
    assert str(kube.translate(kube.HttpFailure(400, "Bad Request", deep, {}), "n1", "get")) \
        == "get node n1 failed with 400: "


def test_a_deeply_nested_answer_is_not_json_to_us() -> None:
    import pytest

    with pytest.raises(kube.NotJson):
        kube._meta(b"[" * 100_000 + b"]" * 100_000)
