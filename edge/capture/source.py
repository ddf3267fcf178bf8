"""The interface every frame source implements, and the counters they share."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from types import TracebackType
from typing import Protocol, runtime_checkable

from typing_extensions import Self  # typing.Self is Python 3.11+

from edge.capture.frame import Frame


@dataclass(frozen=True)
class CaptureStats:
    """Snapshot of a source's counters since it was created.

    Attributes:
        frames: Frames delivered by ``read``.
        incomplete: Buffers the producer delivered incomplete (discarded).
        drops: Frames the device produced but this process never received (gaps in the device frame id).
        reconnects: Successful reconnections after a device loss.
        bad_frames: Frames that could not be decoded (replay: unreadable files).
        timeouts: ``read`` calls that ended in :class:`~edge.capture.errors.CaptureTimeout`.

    """

    frames: int = 0
    incomplete: int = 0
    drops: int = 0
    reconnects: int = 0
    bad_frames: int = 0
    timeouts: int = 0


class StatsCounter:
    """Thread-safe mutable counters behind :class:`CaptureStats` (producer callbacks run on other threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = {f.name: 0 for f in fields(CaptureStats)}

    def add(self, name: str, n: int = 1) -> None:
        """Increment counter ``name`` (a :class:`CaptureStats` field) by ``n``."""
        with self._lock:
            if name not in self._values:
                raise KeyError(f"unknown capture counter {name!r}")
            self._values[name] += n

    def snapshot(self) -> CaptureStats:
        """Consistent copy of all counters."""
        with self._lock:
            return CaptureStats(**self._values)


@runtime_checkable
class FrameSource(Protocol):
    """A camera or camera-like source of frames.

    ``read`` either returns a frame or raises a :class:`~edge.capture.errors.CaptureError`; it never returns
    ``None`` or an empty image. ``trigger`` may be called from another thread than ``read``.
    """

    @property
    def name(self) -> str:
        """Source name, as put on its frames."""
        ...

    @property
    def stats(self) -> CaptureStats:
        """Snapshot of the counters."""
        ...

    def open(self) -> None:
        """Acquire the device or folder and start acquisition."""
        ...

    def close(self) -> None:
        """Stop acquisition and release everything; idempotent."""
        ...

    def read(self, timeout_s: float) -> Frame:
        """Return the next frame, waiting at most ``timeout_s`` seconds.

        Raises:
            CaptureTimeout: No frame within the timeout (``DeviceUnavailableError`` while reconnecting).
            CaptureError: Any other failure to produce this frame.

        """
        ...

    def trigger(self) -> None:
        """Request one frame (software trigger); the frame is returned by a following ``read``."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class ContextManagedSource(ABC):
    """Base of the concrete sources: ``with source:`` opens and closes it."""

    @abstractmethod
    def open(self) -> None:
        """Acquire the device or folder and start acquisition."""

    @abstractmethod
    def close(self) -> None:
        """Stop acquisition and release everything; idempotent."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
