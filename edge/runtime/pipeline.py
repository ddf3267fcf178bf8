"""The hot loop: capture thread -> bounded queue -> inspection workers -> ordered publisher (outbox) + hooks.

Every part gets exactly one verdict, published in part order:

* the inspection queue is full (inspection slower than the line) -> ``NOT_INSPECTED``, reason ``overload``;
* no SKU selected, station stopping before the part was inspected -> ``NOT_INSPECTED`` with the reason;
* the frame is unreadable (replay file, malformed camera buffer), the inspection raises -> ``ERROR``;
* the inspection hangs longer than the watchdog allows -> ``ERROR`` and a fresh worker (``watchdog.py``);
* a software trigger whose frame never comes -> ``NOT_INSPECTED`` after ``trigger_timeout_s``.

Threads: ``capture`` (reads the source, creates parts), ``inspect-N`` (workers), ``watchdog``, ``publisher``.
The capture thread never blocks on inspection or on the outbox: it only enqueues or decides.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.capture.errors import (
    BadFrame,
    CaptureError,
    CaptureTimeout,
    DeviceLostError,
    DeviceUnavailableError,
    EndOfStreamError,
    MalformedBufferError,
)
from edge.capture.frame import Frame
from edge.capture.part import Part
from edge.capture.settings import TriggerMode
from edge.capture.source import FrameSource
from edge.inspection.settings import InspectionError
from edge.inspection.types import InspectionResult
from edge.model.preprocess import ImageError
from edge.mqtt.payloads import VerdictPayload
from edge.runtime.parts import PartIds
from edge.runtime.publisher import OrderedPublisher, VerdictListener, VerdictSink
from edge.runtime.watchdog import InspectionWorkers, WatchdogSettings, WorkerTicket

log = logging.getLogger(__name__)

#: ``inspector.inspect``: RGB frame and SKU -> result; raises InspectionError / ImageError for this part.
InspectFn = Callable[[npt.NDArray[np.uint8], str], InspectionResult]
FaultFn = Callable[[str, str | None], None]
"""``on_fault(source, reason)``: ``reason`` None clears the fault of that source (camera, outbox, ...)."""


@dataclass(frozen=True)
class PipelineSettings:
    """Pipeline knobs.

    Attributes:
        queue_size: Parts waiting for inspection before new ones are ``NOT_INSPECTED`` (overload).
        workers: Inspection threads (ONNX Runtime runs several sessions' calls concurrently).
        trigger: How parts start: each frame (free run, hardware trigger) or :meth:`Pipeline.trigger`.
        read_timeout_s: Longest single wait on the source (bounds how fast stop reacts).
        trigger_timeout_s: A software-triggered part without a frame after this is ``NOT_INSPECTED``.
        drain_timeout_s: At stop, how long queued parts may still be inspected.
        model_id: Published with every verdict.
        backend: Published with every verdict.
        watchdog: Hung-inference detection.

    """

    queue_size: int = 4
    workers: int = 1
    trigger: TriggerMode = TriggerMode.FREE_RUN
    read_timeout_s: float = 0.25
    trigger_timeout_s: float = 2.0
    drain_timeout_s: float = 10.0
    model_id: str | None = None
    backend: str | None = None
    watchdog: WatchdogSettings = field(default_factory=WatchdogSettings)

    def __post_init__(self) -> None:
        if self.queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {self.queue_size}")
        if self.read_timeout_s <= 0 or self.trigger_timeout_s <= 0:
            raise ValueError("read_timeout_s and trigger_timeout_s must be > 0")


@dataclass
class PipelineCounters:
    """Counters the pipeline keeps itself (verdict counts live in the metrics listener)."""

    frames_in: int = 0
    overload: int = 0
    capture_errors: int = 0
    frames_paused: int = 0
    frames_untriggered: int = 0
    trigger_timeouts: int = 0


class Pipeline:
    """Capture -> inspection -> publishing for one station.

    Args:
        source: An opened frame source (the caller owns it and closes it after :meth:`stop`).
        inspect: The inspection function.
        sink: Durable verdict destination (the MQTT outbox).
        ids: Part id allocator.
        settings: Knobs.
        listeners: Told about every published verdict, in order.
        on_fault: Fault reporting (see :data:`FaultFn`).
        sku: The initially selected SKU.

    """

    def __init__(
        self,
        source: FrameSource,
        inspect: InspectFn,
        sink: VerdictSink,
        ids: PartIds,
        settings: PipelineSettings | None = None,
        listeners: Sequence[VerdictListener] = (),
        on_fault: FaultFn | None = None,
        sku: str | None = None,
    ) -> None:
        self.source = source
        self.settings = settings or PipelineSettings()
        self.ids = ids
        self.sku = sku
        self.counters = PipelineCounters()
        self.ended = threading.Event()
        """Set when the source ends for good (end of a non-looping replay, device lost for good)."""
        self._inspect = inspect
        self._on_fault = on_fault
        self._queue: queue.Queue[Part] = queue.Queue(maxsize=self.settings.queue_size)
        self.publisher = OrderedPublisher(
            sink, ids.next_seq, listeners, on_fault=lambda r: self._fault("outbox", r)
        )
        self.workers = InspectionWorkers(
            self._queue,
            self._process,
            self._lost,
            on_fault=lambda r: self._fault("inference", r),
            count=self.settings.workers,
            settings=self.settings.watchdog,
        )
        self._paused = threading.Event()
        self._stop = threading.Event()
        self._pending: collections.deque[Part] = collections.deque()  # triggered, waiting for a frame
        self._pending_lock = threading.Lock()
        self._camera_fault = False
        self._capture = threading.Thread(target=self._capture_loop, name="capture", daemon=True)
        self._started = False

    # -- control -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the publisher, the workers and the capture thread."""
        if self._started:
            raise RuntimeError("pipeline already started")
        self._started = True
        self.publisher.start()
        self.workers.start()
        self._capture.start()

    def pause(self) -> None:
        """Stop taking parts (free-run frames are read and discarded, triggers refused by the caller)."""
        self._paused.set()

    def resume(self) -> None:
        """Take parts again."""
        self._paused.clear()

    @property
    def paused(self) -> bool:
        """Whether the pipeline is paused."""
        return self._paused.is_set()

    @property
    def queue_depth(self) -> int:
        """Parts waiting for a worker."""
        return self._queue.qsize()

    def trigger(self, part_id: str | None = None) -> Part:
        """Start a part now (software trigger); its frame is the next one the source delivers.

        Args:
            part_id: The PLC's id for the part; ``None`` lets the station number it.

        """
        with self._pending_lock:
            seq, pid = self.ids.allocate(part_id)
            part = Part(part_id=pid, seq=seq, sku=self.sku, started_at=time.time())
            self._pending.append(part)
        self.source.trigger()
        return part

    def stop(self) -> bool:
        """Stop capture, inspect what is queued (up to ``drain_timeout_s``), publish every verdict, stop.

        Returns:
            ``True`` when every part got its verdict stored in the sink.

        """
        self._stop.set()
        self._capture.join(self.settings.read_timeout_s + 5.0)
        with self._pending_lock:
            while self._pending:
                self._decide(self._pending.popleft(), "station stopping: no frame before the stop")
        deadline = time.monotonic() + self.settings.drain_timeout_s
        while (self._queue.qsize() or self.workers.busy()) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.workers.stop(timeout_s=1.0)
        while True:
            try:
                part = self._queue.get_nowait()
            except queue.Empty:
                break
            self._decide(part, "station stopping: not inspected before the drain timeout")
            self._queue.task_done()
        for part in self.workers.claim_busy():
            self._decide(part, "station stopping: inspection still running at the drain timeout", error=True)
        ok = self.publisher.wait_published(self.ids.next_seq, timeout_s=max(2.0, deadline - time.monotonic()))
        self.publisher.stop()
        return ok

    # -- capture thread ------------------------------------------------------------------------------------

    def _capture_loop(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.source.read(self.settings.read_timeout_s)
            except DeviceUnavailableError as exc:
                self._fault("camera", f"camera unavailable, reconnecting: {exc}")
                self._expire_triggers()
                continue
            except CaptureTimeout:
                self._expire_triggers()
                continue
            except (BadFrame, MalformedBufferError) as exc:
                self.counters.capture_errors += 1
                part = self._part_for_frame(getattr(exc, "sku", None))
                if part is not None:
                    self._decide(part, f"bad frame: {exc}", error=True)
                continue
            except EndOfStreamError:
                log.info("source %s ended", self.source.name)
                self.ended.set()
                return
            except DeviceLostError as exc:
                self._fault("camera", f"camera lost: {exc}")
                self.ended.set()
                return
            except CaptureError as exc:
                self.counters.capture_errors += 1
                log.error("capture failed: %s", exc)
                self._stop.wait(0.1)
                continue
            except Exception:  # the loop must outlive any bug in a source
                self.counters.capture_errors += 1
                log.exception("unexpected error reading %s", self.source.name)
                self._stop.wait(0.5)
                continue
            self._on_frame(frame)

    def _on_frame(self, frame: Frame) -> None:
        self.counters.frames_in += 1
        if self._camera_fault:
            self._fault("camera", None)
        part = self._part_for_frame(frame.sku)
        if part is None:
            return
        part.frame = frame
        part.started_at = min(part.started_at or frame.timestamp, frame.timestamp)
        if part.sku is None:
            self._decide(part, "no SKU selected (send cmd/sku)")
            return
        try:
            self._queue.put_nowait(part)
        except queue.Full:
            self.counters.overload += 1
            self._decide(part, f"overload: inspection queue full ({self.settings.queue_size} parts waiting)")

    def _part_for_frame(self, frame_sku: str | None) -> Part | None:
        """Return the part a frame (or a bad frame) belongs to; ``None`` when it belongs to no part."""
        if self.settings.trigger is TriggerMode.SOFTWARE:
            with self._pending_lock:
                if not self._pending:
                    self.counters.frames_untriggered += 1
                    return None
                part = self._pending.popleft()
            if frame_sku is not None:
                part.sku = frame_sku
            return part
        if self._paused.is_set():
            self.counters.frames_paused += 1
            return None
        seq, pid = self.ids.allocate()
        return Part(part_id=pid, seq=seq, sku=frame_sku or self.sku, started_at=time.time())

    def _expire_triggers(self) -> None:
        if self.settings.trigger is not TriggerMode.SOFTWARE:
            return
        now = time.time()
        limit = self.settings.trigger_timeout_s
        with self._pending_lock:
            while self._pending and now - self._pending[0].started_at > limit:
                part = self._pending.popleft()
                self.counters.trigger_timeouts += 1
                self._decide(part, f"no frame within {limit:g} s of the trigger")

    # -- workers -------------------------------------------------------------------------------------------

    def _process(self, part: Part, ticket: WorkerTicket) -> None:
        part.dequeued_at = time.time()
        assert part.frame is not None and part.sku is not None  # only such parts are queued
        result: InspectionResult | None = None
        try:
            result = self._inspect(part.frame.image, part.sku)
            done = time.time()
            latency = dict(result.latency_ms)
            latency["queue"] = (part.dequeued_at - part.frame.timestamp) * 1e3
            latency["station"] = (done - part.frame.timestamp) * 1e3
            verdict = VerdictPayload.from_inspection(
                result,
                part_id=part.part_id,
                seq=part.seq,
                model_id=self.settings.model_id,
                backend=self.settings.backend,
                frame_ts=part.frame.timestamp,
                latency_ms={k: max(0.0, v) for k, v in latency.items()},
            )
        except (InspectionError, ImageError) as exc:
            result = None
            verdict = self._uninspected(part, f"{type(exc).__name__}: {exc}", error=True)
        except Exception as exc:  # an inspection bug fails this part, never the loop
            log.exception("inspection of part %s failed", part.part_id)
            result = None
            verdict = self._uninspected(part, f"inspection failed: {type(exc).__name__}: {exc}", error=True)
        if ticket.release():
            self.publisher.complete(part, verdict, result)

    def _lost(self, part: Part, reason: str) -> None:
        self._decide(part, reason, error=True)

    # -- helpers -------------------------------------------------------------------------------------------

    def _uninspected(self, part: Part, reason: str, *, error: bool = False) -> VerdictPayload:
        latency = {}
        if part.frame is not None:
            latency["station"] = max(0.0, (time.time() - part.frame.timestamp) * 1e3)
        return VerdictPayload.uninspected(
            part_id=part.part_id,
            seq=part.seq,
            reason=reason,
            sku=part.sku,
            error=error,
            frame_ts=part.frame_ts,
            model_id=self.settings.model_id,
            backend=self.settings.backend,
            latency_ms=latency,
        )

    def _decide(self, part: Part, reason: str, *, error: bool = False) -> None:
        """Give ``part`` a NOT_INSPECTED (or ERROR) verdict now."""
        if error:
            log.warning("part %s: ERROR: %s", part.part_id, reason)
        else:  # debug: under overload this is every frame; the metrics count them
            log.debug("part %s: NOT_INSPECTED: %s", part.part_id, reason)
        self.publisher.complete(part, self._uninspected(part, reason, error=error))

    def _fault(self, source: str, reason: str | None) -> None:
        if source == "camera":
            if self._camera_fault == (reason is not None):
                return
            self._camera_fault = reason is not None
        if self._on_fault is not None:
            try:
                self._on_fault(source, reason)
            except Exception:
                log.exception("fault callback failed")
