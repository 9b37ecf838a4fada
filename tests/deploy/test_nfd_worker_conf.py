"""nfd-worker-conf.yaml: only keys nfd-worker knows, values that serve NCS2 nodes, and a
comment naming the NFD versions each setting is for."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from labeller import settings as labeller_settings

CONF = Path(__file__).resolve().parents[2] / "nfd-worker-conf.yaml"

# From NFD's sources: the worker's coreConfig fields and its registered feature sources.
CORE_KEYS = {"klog", "labelWhiteList", "noPublish", "featureSources", "sources",
             "labelSources", "sleepInterval"}
SOURCES = {"cpu", "custom", "fake", "kernel", "local", "memory", "network", "pci",
           "storage", "system", "usb"}
USB_KEYS = {"deviceClassWhitelist", "deviceLabelFields"}
LOCAL_KEYS = {"hooksEnabled"}
# NFD's own usb class defaults; the conf replaces the list, so it must keep them.
NFD_USB_DEFAULT_CLASSES = {"0e", "ef", "fe", "ff"}
# Go's time.ParseDuration units that a sleep interval would use.
DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def load() -> dict[str, Any]:
    conf = yaml.safe_load(CONF.read_text())
    assert isinstance(conf, dict)
    return conf


def seconds(duration: str) -> int:
    match = DURATION.match(duration)
    assert match and duration, f"not a plain Go duration: {duration!r}"
    hours, minutes, secs = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + secs


def test_every_key_is_one_nfd_worker_knows() -> None:
    conf = load()

    assert set(conf) <= {"core", "sources"}
    assert set(conf["core"]) <= CORE_KEYS
    assert set(conf["sources"]) <= SOURCES
    assert set(conf["sources"]["usb"]) <= USB_KEYS
    assert set(conf["sources"]["local"]) <= LOCAL_KEYS


def test_the_usb_source_labels_vendor_specific_interfaces() -> None:
    usb = load()["sources"]["usb"]

    assert "ff" in usb["deviceClassWhitelist"]
    assert set(usb["deviceClassWhitelist"]) >= NFD_USB_DEFAULT_CLASSES
    # The scheduling labels usb-ff_03e7_2485 and usb-ff_03e7_f63b are class_vendor_device.
    assert usb["deviceLabelFields"] == ["class", "vendor", "device"]


def test_the_sleep_interval_rereads_features_d_well_within_the_labels_expiry() -> None:
    interval = seconds(load()["core"]["sleepInterval"])

    # nfd-worker forces anything shorter than 1 s to 1 s; longer than its 60 s default
    # would defeat the purpose.
    assert 1 <= interval < 60
    # A feature file line must not expire between two reads by an NFD without the watch.
    assert interval < labeller_settings.MIN_EXPIRY <= labeller_settings.DEFAULT_EXPIRY


def test_hooks_are_enabled_for_nfd_versions_that_disable_them() -> None:
    assert load()["sources"]["local"]["hooksEnabled"] is True


def test_each_setting_says_which_nfd_versions_it_is_for() -> None:
    lines = CONF.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^\s+\w+:\s*\S", line):  # a leaf setting
            comment = []
            for above in reversed(lines[:number]):
                if not above.strip().startswith("#"):
                    break
                comment.append(above)
            if not comment:  # a sibling sharing the comment block above it
                continue
            assert re.search(r"v0\.\d+|NFD version", " ".join(comment)), line
