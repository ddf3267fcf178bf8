"""Ordered publishing: verdicts decided out of order leave in ``seq`` order, exactly once each.

Verdicts come from three places: the capture thread (overload, bad frames), the inspection workers and the
watchdog (hung inference). :class:`OrderedPublisher` holds each until every earlier part has one and then
hands it, on its own thread, to the sink (the MQTT outbox, whose fsync must not slow capture) and to the
listeners (metrics, handshake, archive). Sequence numbers are contiguous per run, so "every earlier part" is
well defined; the pipeline guarantees every allocated number gets exactly one verdict.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from edge.capture.part import Part
from edge.inspection.types import InspectionResult
from edge.mqtt.outbox import OutboxFull
from edge.mqtt.payloads import VerdictPayload

log = logging.getLogger(__name__)


class VerdictSink(Protocol):
    """Where verdicts go durably (:class:`edge.mqtt.StationMqtt` implements it)."""

    def publish_verdict(self, verdict: VerdictPayload) -> int:
        """Store the verdict (and its result) for delivery; raises ``OutboxFull`` when it cannot."""
        ...


class VerdictListener(Protocol):
    """Told about every published verdict, in order (metrics, PLC handshake, archive)."""

    def __call__(self, part: Part, verdict: VerdictPayload, result: InspectionResult | None) -> None:
        """React to one published verdict; must be quick and must not raise."""
        ...


class OrderedPublisher:
    """Re-orders decided verdicts by ``seq`` and publishes them on a dedicated thread.

    Args:
        sink: Durable destination.
        first_seq: The first sequence number of this run.
        listeners: Called after each verdict is stored.
        on_fault: Called with a reason when the sink refuses verdicts (full outbox) and with ``None`` when it
            takes them again.
        retry_s: Wait between attempts while the sink refuses.

    """

    def __init__(
        self,
        sink: VerdictSink,
        first_seq: int,
        listeners: Sequence[VerdictListener] = (),
        on_fault: Callable[[str | None], None] | None = None,
        retry_s: float = 1.0,
    ) -> None:
        self._sink = sink
        self._next = first_seq
        self._listeners = list(listeners)
        self._on_fault = on_fault
        self._retry_s = retry_s
        self._done: dict[int, tuple[Part, VerdictPayload, InspectionResult | None]] = {}
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self.published = 0
        self.duplicates = 0

    def add_listener(self, listener: VerdictListener) -> None:
        """Register another listener (before :meth:`start`)."""
        self._listeners.append(listener)

    def start(self) -> None:
        """Start the publishing thread."""
        self._thread.start()

    def complete(self, part: Part, verdict: VerdictPayload, result: InspectionResult | None = None) -> bool:
        """Hand over the verdict of ``part``; ``False`` (ignored, logged) if the part already has one."""
        with self._cond:
            if part.seq < self._next or part.seq in self._done:
                self.duplicates += 1
                log.error(
                    "part %s (seq %d) already has a verdict; %s ignored",
                    part.part_id,
                    part.seq,
                    verdict.verdict.value,
                )
                return False
            self._done[part.seq] = (part, verdict, result)
            self._cond.notify_all()
            return True

    @property
    def next_seq(self) -> int:
        """The sequence number the publisher waits for."""
        with self._cond:
            return self._next

    @property
    def backlog(self) -> int:
        """Verdicts decided but not yet published (waiting for an earlier part, or for the sink)."""
        with self._cond:
            return len(self._done)

    def wait_published(self, until_seq: int, timeout_s: float) -> bool:
        """Wait until every part before ``until_seq`` is published; ``True`` if so."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._next < until_seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
            return True

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread (after :meth:`wait_published` when nothing must be left behind)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        with self._cond:
            if self._done:
                lost = ", ".join(p.part_id for p, _, _ in list(self._done.values())[:10])
                log.error(
                    "%d verdicts could not be stored before stopping (first: %s)", len(self._done), lost
                )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and self._next not in self._done:
                    self._cond.wait(0.5)
                if self._next not in self._done:
                    return  # stopping and nothing publishable is left
                part, verdict, result = self._done[self._next]
            stamped = replace(verdict, published_at=time.time())
            if not self._store(stamped):
                return
            with self._cond:
                del self._done[self._next]
                self._next += 1
                self.published += 1
                self._cond.notify_all()
            for listener in self._listeners:
                try:
                    listener(part, stamped, result)
                except Exception:  # a listener bug must not stop verdicts
                    log.exception("verdict listener %r failed", listener)

    def _store(self, verdict: VerdictPayload) -> bool:
        faulted = False
        while True:
            try:
                self._sink.publish_verdict(verdict)
            except OutboxFull as exc:
                if not faulted and self._on_fault is not None:
                    self._on_fault(f"outbox full, verdicts held in memory: {exc}")
                faulted = True
                with self._cond:
                    if self._stop:
                        return False
                    self._cond.wait(self._retry_s)
                continue
            except Exception:
                # Anything else is a bug or a broken disk: retrying forever would hang the line silently,
                # dropping would lose a verdict; hold it and keep reporting loudly.
                log.exception("storing the verdict of part %s failed; retrying", verdict.part_id)
                with self._cond:
                    if self._stop:
                        return False
                    self._cond.wait(self._retry_s)
                continue
            if faulted and self._on_fault is not None:
                self._on_fault(None)
            return True
