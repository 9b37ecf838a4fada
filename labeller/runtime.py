"""The OpenVINO runtime's view of the sticks, asked only when it can have changed.

Asking costs a child process (about 0.25 s and 68 MB for its short life), so the answer
is kept until the set of idle sticks changes: the runtime lists only idle sticks, and
nothing else can change what it says. A stick that a workload boots keeps the runtime's
description of it, remembered by connector, so booting a stick (which re-enumerates it
as 03e7:f63b) does not change its labels either.
"""

from __future__ import annotations

import logging

from nfd_hook import catalogue, discovery, openvino

log = logging.getLogger(__name__)

IdleKey = tuple[tuple[str, str], ...]


class RuntimeView:
    def __init__(self, mode: str, timeout: float, python: str) -> None:
        self.mode = mode
        self.timeout = timeout
        self.python = python
        self._key: IdleKey | None = None
        self._answer = openvino.QueryResult((), None, logging.DEBUG, None)
        self._note: str | None = None
        # Connector -> the runtime's model of the stick last seen idle there.
        self._by_connector: dict[str, catalogue.Model] = {}

    def apply(self, found: discovery.Discovery) -> discovery.Discovery:
        """`found` with the runtime's names and capabilities where it knows them."""
        if self.mode == "off":
            return found
        idle = tuple((s.usb.port, s.usb.product_id) for s in found.counted
                     if s.state == catalogue.STATE_IDLE)
        if idle != self._key:
            answer = openvino.query(self.mode, self.timeout, self.python)
            if answer.note and answer.note != self._note:
                log.log(answer.level, "%s", answer.note)
            self._note = answer.note
            self._key, self._answer = idle, answer
        enriched = openvino.enrich(found, self._answer)
        return self._remember(enriched)

    def _remember(self, found: discovery.Discovery) -> discovery.Discovery:
        sticks = []
        present = set()
        for stick in found.sticks:
            present.add(stick.connector)
            identity = catalogue.IDENTITIES.get(stick.usb.product_id)
            if not stick.counted or stick.model is None:
                sticks.append(stick)
            elif stick.state == catalogue.STATE_IDLE:
                if identity is not None and stick.model != identity.model:
                    self._by_connector[stick.connector] = stick.model
                else:
                    self._by_connector.pop(stick.connector, None)
                sticks.append(stick)
            else:
                remembered = self._by_connector.get(stick.connector)
                same_chip = remembered is not None and remembered.name == stick.model.name
                sticks.append(stick._replace(model=remembered) if same_chip else stick)
        for connector in set(self._by_connector) - present:
            del self._by_connector[connector]
        return found._replace(sticks=tuple(sticks))
