"""Prometheus metrics of the labeller, on the default registry (with process metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Info, disable_created_metrics

from nfd_hook import __version__

# The *_created series double the output and say nothing a restart counter does not.
disable_created_metrics()  # type: ignore[no-untyped-call]

STICKS = Gauge("ncs2_sticks", "Movidius compute sticks present, by model and state",
               ["model", "state"])
RECONCILES = Counter("ncs2_node_reconciles", "Node reconciliations, by result "
                     "(patched, unchanged, retry, failed, error)", ["result"])
API_REQUESTS = Counter("ncs2_api_requests", "Kubernetes API requests, by verb and outcome",
                       ["verb", "outcome"])
FILE_WRITES = Counter("ncs2_feature_file_writes", "Feature file writes, by result",
                      ["result"])
UDEV_EVENTS = Counter("ncs2_udev_events", "USB device uevents seen, by action and whether "
                      "they concerned a Movidius device", ["action", "relevant"])
SCANS = Counter("ncs2_bus_scans", "Scans of the USB bus in sysfs, by what asked for them "
                "(start, event, resync)", ["reason"])
LAST_RECONCILE = Gauge("ncs2_last_successful_reconcile_timestamp_seconds",
                       "Unix time of the last reconcile that brought file and Node up to date")
BUILD = Info("ncs2_labeller_build", "Version of the labeller")
BUILD.info({"version": __version__})
