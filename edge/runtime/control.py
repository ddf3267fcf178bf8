"""What the station says about itself (``state``, ``ready``) and how it answers PLC commands.

:class:`StationStatus` folds faults from several sources (camera, outbox, inference) and pause into one
``state`` status and keeps the PLC handshake in step. :class:`StationCommands` is the
:class:`edge.mqtt.CommandHandler` of a running station; :class:`SafeModeCommands` that of a station in
safe mode.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from edge.capture.settings import TriggerMode
from edge.mqtt.client import StationMqtt
from edge.mqtt.commands import CommandRejected
from edge.mqtt.handshake import Handshake
from edge.mqtt.payloads import StatePayload, VerdictPayload
from edge.runtime.pipeline import Pipeline

log = logging.getLogger(__name__)


class StationStatus:
    """Current ``state`` of the station plus the handshake; publishes on every change. Thread-safe."""

    def __init__(
        self,
        mqtt: StationMqtt,
        base: StatePayload,
        handshake: Handshake,
    ) -> None:
        self._mqtt = mqtt
        self._base = base
        self.handshake = handshake
        #: Also told every published state (Sparkplug DDATA, the OPC UA state machine): :meth:`add_listener`.
        self._listeners: list[Callable[[StatePayload], object]] = []
        self._faults: dict[str, str] = {}
        self._paused = False
        self._lock = threading.Lock()

    @property
    def current(self) -> StatePayload:
        """The state payload that describes the station now."""
        with self._lock:
            return self._compose()

    def _compose(self) -> StatePayload:
        if self._faults:
            reason = "; ".join(f"{k}: {v}" for k, v in sorted(self._faults.items()))
            return replace(self._base, status="fault", reason=reason)
        if self._paused:
            return replace(self._base, status="paused", reason="paused by cmd/pause")
        return replace(self._base, status="online", reason=None)

    def _publish(self, before: StatePayload) -> None:
        after = self._compose()
        if (after.status, after.reason, after.sku) != (before.status, before.reason, before.sku):
            after = replace(after, since=time.time())
            self._base = replace(self._base, since=after.since)
            self._mqtt.publish_state(after)
            for listener in self._listeners:
                listener(after)

    def add_listener(self, listener: Callable[[StatePayload], object]) -> None:
        """Tell ``listener`` every state this station publishes from now on."""
        with self._lock:
            self._listeners.append(listener)

    def fault(self, source: str, reason: str | None) -> None:
        """Set (``reason``) or clear (``None``) the fault of ``source``."""
        with self._lock:
            before = self._compose()
            if reason is None:
                self._faults.pop(source, None)
            else:
                self._faults[source] = reason
                log.error("fault (%s): %s", source, reason)
            self._publish(before)
            faults = "; ".join(self._faults.values())
        if faults:
            self.handshake.fault(faults)
        else:
            self.handshake.clear_fault()

    def paused(self, paused: bool) -> None:
        """Record pause/resume."""
        with self._lock:
            before = self._compose()
            self._paused = paused
            self._publish(before)
        if paused:
            self.handshake.pause()
        else:
            self.handshake.resume()

    def sku(self, sku: str | None) -> None:
        """Record the selected SKU (published on ``state`` and ``ready``)."""
        with self._lock:
            before = self._compose()
            self._base = replace(self._base, sku=sku)
            self._publish(before)
        if sku is not None:
            self.handshake.select_sku(sku)


class StationCommands:
    """Command handler of a running station (runs on the MQTT network thread: quick, raises to refuse)."""

    def __init__(
        self,
        pipeline: Pipeline,
        status: StationStatus,
        known_skus: Callable[[], list[str]],
        trigger: TriggerMode,
        request_reload: Callable[[str], None],
    ) -> None:
        self._pipeline = pipeline
        self._status = status
        self._known_skus = known_skus
        self._trigger = trigger
        self._request_reload = request_reload

    def on_sku(self, sku: str) -> None:
        """Select the recipe; refuses an SKU without a golden bank."""
        known = self._known_skus()
        if sku not in known:
            raise CommandRejected(f"unknown SKU '{sku}'; known: {', '.join(sorted(known)) or 'none'}")
        self._pipeline.sku = sku
        self._status.sku(sku)

    def on_trigger(self, part_id: str | None) -> None:
        """Start a part (software trigger mode only, and only while ``ready``)."""
        if self._trigger is not TriggerMode.SOFTWARE:
            raise CommandRejected(
                f"camera trigger mode is {self._trigger.value}; cmd/trigger needs 'software'"
            )
        ready = self._status.handshake.current()
        if not ready.ready:
            raise CommandRejected(f"not ready: {ready.reason}")
        part = self._pipeline.trigger(part_id)
        self._status.handshake.triggered(part.part_id)

    def on_ack(self, part_id: str) -> None:
        """Acknowledge the result of ``part_id``."""
        if not self._status.handshake.acked(part_id):
            raise CommandRejected(f"no result of part '{part_id}' is waiting for an ack")

    def on_pause(self) -> None:
        """Stop taking parts."""
        self._pipeline.pause()
        self._status.paused(True)

    def on_resume(self) -> None:
        """Take parts again."""
        self._pipeline.resume()
        self._status.paused(False)

    def on_reload(self) -> None:
        """Reload the station config (after the reply: the reload restarts the pipeline)."""
        self._request_reload("cmd/reload")


class SafeModeCommands:
    """Command handler in safe mode: nothing is inspected; triggers are answered ``NOT_INSPECTED``."""

    def __init__(self, mqtt: StationMqtt, reason: str, request_reload: Callable[[str], None]) -> None:
        self._mqtt = mqtt
        self._reason = reason
        self._request_reload = request_reload
        self._seq = 0
        self._lock = threading.Lock()

    def _refuse(self) -> None:
        raise CommandRejected(f"station is in safe mode: {self._reason}")

    def on_sku(self, sku: str) -> None:
        """Refused in safe mode."""
        self._refuse()

    def on_trigger(self, part_id: str | None) -> None:
        """Answer the part ``NOT_INSPECTED`` (the PLC must get a result for every trigger)."""
        with self._lock:
            self._seq += 1
            seq = self._seq
        pid = part_id or f"safe-mode-{int(time.time())}-{seq}"
        self._mqtt.publish_verdict(
            VerdictPayload.uninspected(part_id=pid, seq=seq, reason=f"station in safe mode: {self._reason}")
        )

    def on_ack(self, part_id: str) -> None:
        """Acks are accepted and ignored in safe mode."""

    def on_pause(self) -> None:
        """Refused in safe mode."""
        self._refuse()

    def on_resume(self) -> None:
        """Refused in safe mode."""
        self._refuse()

    def on_reload(self) -> None:
        """Try loading the config again."""
        self._request_reload("cmd/reload")
