"""GenICam camera source: harvesters acquisition loop with emulated triggers, drop counting and reconnect.

The pieces live apart: :mod:`edge.capture.genicam_device` opens producers and devices,
:mod:`edge.capture.genicam_features` writes features, :mod:`edge.capture.convert` converts pixels; this
module only runs acquisition and recovers from device loss.

Threading: ``read`` is meant for one capture thread; ``trigger``, ``stats`` and ``close`` may be called from
any thread. ``close`` interrupts a ``read`` that is waiting for a trigger or a reconnection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from harvesters.core import Callback, ImageAcquirer

from edge.capture.backoff import Backoff
from edge.capture.convert import RawBuffer, check_pixel_format, to_rgb
from edge.capture.errors import (
    CaptureError,
    CaptureTimeout,
    DeviceLostError,
    DeviceUnavailableError,
    MalformedBufferError,
    OversizedFrameError,
)
from edge.capture.frame import Frame, RgbImage
from edge.capture.genicam_device import Producer, destroy_acquirer, open_acquirer
from edge.capture.genicam_features import DeviceSetup, configure_device
from edge.capture.settings import GenICamSettings, Roi, TriggerMode
from edge.capture.source import CaptureStats, ContextManagedSource, StatsCounter

log = logging.getLogger(__name__)

# Smallest fetch slice: harvesters treats a timeout of 0 as "wait forever".
_MIN_FETCH_S = 0.001


class _DeviceGoneError(Exception):
    """Internal: the acquirer is no longer usable."""


class _CountIncomplete(Callback):  # type: ignore[misc]  # harvesters is untyped
    """harvesters discards incomplete buffers itself; this callback is the only way to count them."""

    def __init__(self, stats: StatsCounter) -> None:
        super().__init__()
        self._stats = stats

    def emit(self, context: object = None) -> None:
        self._stats.add("incomplete")


def _crop(image: RgbImage, roi: Roi) -> RgbImage:
    height, width = image.shape[:2]
    if roi.offset_x + roi.width > width or roi.offset_y + roi.height > height:
        raise MalformedBufferError(f"frame {width}x{height} does not contain the ROI {roi}")
    y, x = roi.offset_y, roi.offset_x
    return np.ascontiguousarray(image[y : y + roi.height, x : x + roi.width])


def _strip_padding(data: RawBuffer, height: int, x_padding: int) -> RawBuffer:
    """Drop GenTL line padding (harvesters leaves it in; its own removal discards its result)."""
    if x_padding <= 0 or data.dtype != np.uint8 or data.size % height:
        return data
    rows = data.reshape(height, -1)
    return rows[:, : rows.shape[1] - x_padding]


class GenICamSource(ContextManagedSource):
    """Frames from a GenTL camera through harvesters.

    Args:
        settings: Device selection and features.
        producer: The producer wrapper to use (injectable for fault injection); by default one for
            ``settings.cti``.
        clock: Monotonic clock (injectable for tests of the backoff schedule).

    """

    def __init__(
        self,
        settings: GenICamSettings,
        *,
        producer: Producer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._name = settings.source_name
        self._clock = clock
        self._stats = StatsCounter()
        self._producer = producer if producer is not None else Producer(settings.cti)
        self._acquirer: Any | None = None
        self._setup: DeviceSetup | None = None
        self._io_lock = threading.RLock()  # read / reconnect / close never overlap on the acquirer
        self._closing = threading.Event()
        self._trigger_cond = threading.Condition()
        self._pending_triggers = 0
        self._seq = 0
        self._last_frame_id: int | None = None
        self._waiting_since: float | None = None  # start of the current wait for a frame, for stall detection
        self._lost = False
        self._backoff = Backoff(settings.reconnect, clock)
        self._open = False

    # -- FrameSource ---------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """Source name put on frames."""
        return self._name

    @property
    def stats(self) -> CaptureStats:
        """Counter snapshot."""
        return self._stats.snapshot()

    @property
    def acquirer(self) -> Any | None:
        """The live harvesters ``ImageAcquirer`` (``None`` while disconnected).

        For diagnostics and fault injection; do not configure the device through it.
        """
        return self._acquirer

    @property
    def setup(self) -> DeviceSetup | None:
        """What the last (re)connection applied or emulated."""
        return self._setup

    @property
    def connected(self) -> bool:
        """Whether the device is currently acquiring (``False`` while reconnecting)."""
        return self._open and not self._lost

    def open(self) -> None:
        """Load the producer, open and configure the device, start acquisition.

        Raises:
            CaptureConfigError: Producer, device or a feature value is wrong (message names which).
            UnsupportedPixelFormat: The configured pixel format cannot be converted.

        """
        with self._io_lock:
            if self._open:
                return
            if self._settings.pixel_format is not None:
                check_pixel_format(self._settings.pixel_format)
            self._closing.clear()
            self._producer.open()
            try:
                self._connect()
            except BaseException:
                self._producer.close()
                raise
            assert self._setup is not None
            for note in self._setup.notes:
                # Once per source, not per reconnect: emulation is a property of the device model.
                log.warning("%s: %s", self._name, note)
            self._open = True
            log.info("%s: acquisition started (trigger=%s)", self._name, self._settings.trigger.value)

    def close(self) -> None:
        """Stop acquisition and release the device and producer; idempotent, callable from any thread."""
        self._closing.set()
        with self._trigger_cond:
            self._trigger_cond.notify_all()
        with self._io_lock:
            self._teardown()
            self._producer.close()
            self._open = False

    def trigger(self) -> None:
        """Request one frame.

        Executes ``TriggerSoftware`` on devices that have it; otherwise (emulated) the next ``read`` returns
        the first free-run frame that starts after this call.

        Raises:
            CaptureError: The source is not in software-trigger mode, or the device rejected the command.
            DeviceUnavailableError: The device is lost; the trigger is not remembered, so the caller must give
                that part a verdict.

        """
        if self._settings.trigger is not TriggerMode.SOFTWARE:
            raise CaptureError(
                f"{self._name}: trigger() needs trigger mode 'software', not {self._settings.trigger.value!r}"
            )
        if not self._open:
            raise CaptureError(f"{self._name}: trigger() on a closed source")
        if self._setup is not None and self._setup.trigger_emulated:
            with self._trigger_cond:
                self._pending_triggers += 1
                self._trigger_cond.notify_all()
            return
        acquirer = self._acquirer
        if acquirer is None or self._lost:
            raise DeviceUnavailableError(f"{self._name}: device lost, software trigger not sent")
        try:
            acquirer.remote_device.node_map.TriggerSoftware.execute()
        except Exception as exc:
            raise CaptureError(f"{self._name}: TriggerSoftware failed: {exc}") from exc

    def read(self, timeout_s: float) -> Frame:
        """Return the next frame within ``timeout_s`` seconds.

        Raises:
            CaptureTimeout: No frame (in emulated software trigger: no trigger) within the timeout.
            DeviceUnavailableError: The device is lost and not back yet; later reads keep reconnecting.
            DeviceLostError: ``reconnect.max_attempts`` consecutive reconnections failed.
            MalformedBufferError: The buffer does not match its declared format (this frame only).
            CaptureError: The source is closed.

        """
        deadline = self._clock() + timeout_s
        if not self._open:
            raise CaptureError(f"{self._name}: read() on a closed source")
        emulated = self._setup is not None and self._setup.trigger_emulated
        if emulated:
            self._wait_for_trigger(deadline, timeout_s)
        with self._io_lock:
            while True:
                self._check_open()
                if self._lost:
                    self._reconnect_until(deadline, timeout_s)
                try:
                    if emulated:
                        self._drain_stale_buffers()
                    frame = self._fetch_frame(deadline, timeout_s, count_drops=not emulated)
                except CaptureTimeout:
                    self._stats.add("timeouts")
                    self._check_stall()
                    raise
                except MalformedBufferError:
                    self._stats.add("bad_frames")
                    raise
                except CaptureError:
                    raise
                except Exception as exc:  # _DeviceGoneError or any GenTL failure: the device is gone
                    self._mark_lost(exc)
                else:
                    if emulated:
                        with self._trigger_cond:
                            self._pending_triggers -= 1
                    return frame

    # -- connection ----------------------------------------------------------------------------------------

    def _connect(self) -> None:
        acquirer = open_acquirer(self._producer.harvester, self._settings)
        try:
            setup = configure_device(acquirer.remote_device.node_map, self._settings)
            acquirer.num_buffers = self._settings.num_buffers
            acquirer.add_callback(ImageAcquirer.Events.INCOMPLETE_BUFFER, _CountIncomplete(self._stats))
            acquirer.start()
        except BaseException:
            destroy_acquirer(acquirer)
            raise
        self._acquirer = acquirer
        self._setup = setup
        self._last_frame_id = None
        self._waiting_since = None
        self._lost = False

    def _teardown(self) -> None:
        if self._acquirer is not None:
            destroy_acquirer(self._acquirer)
            self._acquirer = None

    def _mark_lost(self, exc: BaseException) -> None:
        log.warning("%s: device lost (%s: %s); reconnecting", self._name, type(exc).__name__, exc)
        self._lost = True
        self._teardown()
        self._backoff.reset()

    def _reconnect_until(self, deadline: float, timeout_s: float) -> None:
        while self._lost:
            if self._backoff.exhausted:
                raise DeviceLostError(
                    f"{self._name}: device lost, {self._backoff.failures} reconnection attempts failed"
                )
            wait = self._backoff.due_in()
            if self._clock() + wait > deadline:
                self._closing.wait(max(0.0, deadline - self._clock()))
                self._stats.add("timeouts")
                raise DeviceUnavailableError(
                    f"{self._name}: device lost, reconnecting (no frame within {timeout_s:.3g} s)"
                )
            if self._closing.wait(wait):
                self._check_open()
            try:
                self._producer.refresh()
                self._connect()
            except Exception as exc:  # every failure is one more attempt
                delay = self._backoff.failed()
                log.warning(
                    "%s: reconnection attempt %d failed (%s); next in %.1f s",
                    self._name,
                    self._backoff.failures,
                    exc,
                    delay,
                )
            else:
                self._stats.add("reconnects")
                log.info("%s: reconnected after %d failed attempt(s)", self._name, self._backoff.failures)
                self._backoff.reset()

    def _check_stall(self) -> None:
        """Treat a free-running device that stopped streaming as lost (some producers never raise)."""
        limit = self._settings.stall_timeout_s
        assert self._setup is not None
        if limit is None or not self._setup.free_running or self._waiting_since is None:
            return
        waited = self._clock() - self._waiting_since
        if waited >= limit:
            self._mark_lost(_DeviceGoneError(f"free-running device sent no frame for {waited:.1f} s"))

    def _check_open(self) -> None:
        if self._closing.is_set():
            raise CaptureError(f"{self._name}: source closed")

    # -- acquisition ---------------------------------------------------------------------------------------

    def _wait_for_trigger(self, deadline: float, timeout_s: float) -> None:
        with self._trigger_cond:
            while self._pending_triggers <= 0:
                self._check_open()
                remaining = deadline - self._clock()
                if remaining <= 0:
                    self._stats.add("timeouts")
                    raise CaptureTimeout(f"{self._name}: no trigger within {timeout_s:.3g} s")
                self._trigger_cond.wait(remaining)

    def _drain_stale_buffers(self) -> None:
        """Requeue frames captured before the trigger, so the next fetch returns one captured after it."""
        acquirer = self._live_acquirer()
        stream = acquirer.data_streams[0].module
        for _ in range(self._settings.num_buffers + 2):  # bounded: the device keeps filling buffers meanwhile
            try:
                waiting = int(stream.num_awaiting_delivery)
            except Exception:  # optional GenTL info: without it, drain until a fetch finds nothing
                waiting = 1
            if waiting <= 0:
                return
            buffer = acquirer.try_fetch(timeout=_MIN_FETCH_S)
            if buffer is None:
                return
            buffer.queue()

    def _live_acquirer(self) -> Any:
        acquirer = self._acquirer
        if acquirer is None or not acquirer.is_valid():
            raise _DeviceGoneError("image acquirer is no longer valid")
        return acquirer

    def _fetch_frame(self, deadline: float, timeout_s: float, *, count_drops: bool) -> Frame:
        acquirer = self._live_acquirer()
        if self._waiting_since is None:
            self._waiting_since = self._clock()
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise CaptureTimeout(f"{self._name}: no frame within {timeout_s:.3g} s")
            # try_fetch returns None both on timeout and on an incomplete buffer (counted by the callback);
            # loop until our own deadline so the timeout holds whatever the producer delivers.
            buffer = acquirer.try_fetch(timeout=max(remaining, _MIN_FETCH_S))
            if buffer is None:
                continue
            with buffer:  # copy out inside: the buffer is requeued (and overwritten) on exit
                acquired_at = time.time()
                self._waiting_since = None
                return self._frame_from_buffer(buffer, acquired_at, count_drops)

    def _frame_from_buffer(self, buffer: Any, acquired_at: float, count_drops: bool) -> Frame:
        components = buffer.payload.components if buffer.payload is not None else []
        if not components:
            raise MalformedBufferError(f"{self._name}: buffer without image component")
        component = components[0]
        pixel_format = str(component.data_format)
        width, height = int(component.width), int(component.height)
        limit = self._settings.max_frame_pixels
        if limit is not None and width * height > limit:
            # Before the conversion, which would allocate three bytes per announced pixel.
            raise OversizedFrameError(
                f"{self._name}: frame {width}x{height} ({width * height} pixels) is above "
                f"max_frame_pixels ({limit})"
            )
        data = _strip_padding(component.data, height, int(component.x_padding))
        image = to_rgb(data, width, height, pixel_format)
        assert self._setup is not None
        if self._setup.software_crop is not None:
            image = _crop(image, self._setup.software_crop)
        frame_id = self._frame_id(buffer)
        if count_drops:
            self._count_drops(frame_id)
        device_ts = int(buffer.timestamp)
        seq = self._seq
        self._seq += 1
        self._stats.add("frames")
        return Frame(
            image=image,
            seq=seq,
            timestamp=acquired_at,
            source=self._name,
            pixel_format=pixel_format,
            meta={"device_frame_id": frame_id, "device_timestamp": device_ts or None},
        )

    @staticmethod
    def _frame_id(buffer: Any) -> int | None:
        try:
            return int(buffer.module.frame_id)
        except Exception:  # optional GenTL info; producers may not provide it
            return None

    def _count_drops(self, frame_id: int | None) -> None:
        last = self._last_frame_id
        if frame_id is not None and last is not None and frame_id > last + 1:
            self._stats.add("drops", frame_id - last - 1)
        # A smaller id means the device restarted its counter (reconnect, acquisition restart): resync.
        self._last_frame_id = frame_id
