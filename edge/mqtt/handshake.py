"""PLC handshake: when the station can take the next trigger, and the retained ``ready`` flag saying so.

The sequence PLC programmers know from vision sensors::

    PLC                          station
    cmd/sku {"sku": "A"}   ->    reply ok, ready {ready: true, sku: A}
    cmd/trigger            ->    ready {ready: false, reason: "inspecting part P1"}
                           <-    result {part_id: P1, code: 0}, ready {false, "waiting for ack of P1"}
    cmd/ack {"part_id": P1}->    ready {ready: true}

:class:`Handshake` holds that state and publishes ``ready`` (through a callback, normally
:meth:`edge.mqtt.client.StationMqtt.publish_ready`) whenever the flag, the SKU or the reason changes. With
``require_ack=False`` a result needs no acknowledgement; ``max_in_flight`` > 1 lets a pipelined station take
triggers while earlier parts are still being inspected.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from edge.inspection.types import Verdict
from edge.mqtt.payloads import ReadyPayload, ResultPayload


def result_code(verdict: Verdict) -> int:
    """Return the integer a PLC reads on ``result``: 0 OK, 1 NG, 2 not inspected, 3 error."""
    return verdict.code


class Handshake:
    """Trigger-ready state of the station. Thread-safe.

    Args:
        publish: Called with the new ``ready`` payload on every change (and by :meth:`publish_current`).
        require_ack: A result must be acknowledged (``cmd/ack``) before the next trigger.
        max_in_flight: Parts triggered and not yet answered before ``ready`` drops.

    """

    def __init__(
        self, publish: Callable[[ReadyPayload], None], *, require_ack: bool = True, max_in_flight: int = 1
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self._publish = publish
        self._require_ack = require_ack
        self._max_in_flight = max_in_flight
        self._lock = threading.Lock()
        self._sku: str | None = None
        self._paused = False
        self._fault: str | None = None
        self._in_flight: list[str] = []
        self._unacked: list[str] = []
        self._last: tuple[bool, str | None, str | None] | None = None

    @property
    def sku(self) -> str | None:
        """The selected SKU."""
        return self._sku

    @property
    def ready(self) -> bool:
        """Whether the station takes a trigger now."""
        with self._lock:
            return self._state()[0]

    def select_sku(self, sku: str) -> None:
        """Record the selected recipe (the runtime checked that it exists)."""
        with self._lock:
            self._sku = sku
            self._changed()

    def pause(self) -> None:
        """Stop being ready until :meth:`resume`."""
        with self._lock:
            self._paused = True
            self._changed()

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        with self._lock:
            self._paused = False
            self._changed()

    def fault(self, reason: str) -> None:
        """Not ready because of a fault (camera lost, outbox full, ...) until :meth:`clear_fault`."""
        with self._lock:
            self._fault = reason
            self._changed()

    def clear_fault(self) -> None:
        """Forget the fault."""
        with self._lock:
            self._fault = None
            self._changed()

    def triggered(self, part_id: str) -> None:
        """Record a started part (software or hardware trigger)."""
        with self._lock:
            self._in_flight.append(part_id)
            self._changed()

    def answered(self, result: ResultPayload) -> None:
        """Record a published ``result``; the part now waits for its ack if acks are required."""
        with self._lock:
            if result.part_id in self._in_flight:
                self._in_flight.remove(result.part_id)
            if self._require_ack:
                self._unacked.append(result.part_id)
            self._changed()

    def acked(self, part_id: str) -> bool:
        """Record the PLC's ack of ``part_id``; ``False`` when no result of that part awaits one."""
        with self._lock:
            if part_id not in self._unacked:
                return False
            self._unacked.remove(part_id)
            self._changed()
            return True

    def current(self) -> ReadyPayload:
        """Return the ``ready`` payload for the present state."""
        with self._lock:
            ready, sku, reason = self._state()
        return ReadyPayload(ready=ready, sku=sku, reason=reason)

    def publish_current(self) -> None:
        """Publish the present state even if unchanged (e.g. at start-up)."""
        with self._lock:
            self._last = None
            self._changed()

    def _state(self) -> tuple[bool, str | None, str | None]:
        if self._fault is not None:
            return False, self._sku, f"fault: {self._fault}"
        if self._paused:
            return False, self._sku, "paused"
        if self._sku is None:
            return False, None, "no SKU selected (send cmd/sku)"
        if self._unacked:
            return False, self._sku, f"waiting for ack of part {self._unacked[0]}"
        if len(self._in_flight) >= self._max_in_flight:
            return False, self._sku, f"inspecting part {self._in_flight[0]}"
        return True, self._sku, None

    def _changed(self) -> None:
        # Called with the lock held, so ready messages leave in the order of the changes that caused them.
        state = self._state()
        if state != self._last:
            self._last = state
            self._publish(ReadyPayload(ready=state[0], sku=state[1], reason=state[2]))
