"""`ncs2-labeller`: parse settings, build the parts, run. Exit 0, 1 on failure, 2 on usage."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from labeller import health, logs, settings
from labeller.daemon import Labeller, run_once
from labeller.publisher import Publisher

log = logging.getLogger("labeller")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # Ctrl-C before the loop's own handler is in place: stop quietly all the same.
        return 130


def _main(argv: Sequence[str] | None) -> int:
    try:
        config = settings.parse(argv)
    except settings.UsageError as exc:
        print(f"ncs2-labeller: error: {exc}", file=sys.stderr)
        return 2
    logs.configure(config.log_level, config.log_format)
    if config.openvino != "off" and config.openvino_timeout >= config.stall_limit:
        log.warning("--openvino-timeout (%g s) is not shorter than --stall-limit (%g s): a "
                    "hung OpenVINO runtime will fail /healthz", config.openvino_timeout,
                    config.stall_limit)

    publisher = None
    if not config.no_api:
        from labeller.kube import NodeApi

        publisher = Publisher(config.node_name,
                              lambda: NodeApi(config.node_name, config.kubeconfig,
                                              config.api_timeout))
    if config.once:
        return run_once(config, publisher)

    labeller = Labeller(config, publisher=publisher)
    if config.metrics_address:
        probes = health.Probes(
            heartbeat=lambda: labeller.heartbeat,
            ready=lambda: labeller.ready and (publisher is None
                                              or publisher.last_success is not None),
            threads_alive=lambda: publisher is None or publisher.alive(),
            stall_limit=config.stall_limit,
        )
        try:
            health.serve(config.metrics_address, probes)
        except (OSError, ValueError) as exc:
            log.error("Cannot serve metrics on %s: %s", config.metrics_address, exc)
            return 1
    if publisher is not None:
        publisher.start()
    try:
        labeller.run()
    finally:
        if publisher is not None:
            publisher.stop(timeout=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
