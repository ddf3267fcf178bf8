"""Capture errors.

Every failure to deliver a frame is an exception, never an empty or ``None`` frame: on a line a missing frame
is a part that must still get a verdict (``NOT_INSPECTED`` or ``ERROR``), so the caller has to see it.
"""

from __future__ import annotations

from pathlib import Path


class CaptureError(Exception):
    """Base class of every capture failure."""


class CaptureConfigError(CaptureError):
    """The settings cannot be applied: unknown device, feature value out of range, missing folder, ..."""


class CaptureTimeout(CaptureError):  # noqa: N818 - name fixed by the capture contract
    """No frame arrived within the read timeout."""


class DeviceUnavailableError(CaptureTimeout):
    """No frame within the timeout because the device is lost and reconnection is still in progress.

    A subclass of :class:`CaptureTimeout` so a loop that treats timeouts as "no part yet" keeps running while
    the source reconnects in the background of its ``read`` calls.
    """


class DeviceLostError(CaptureError):
    """The device is lost and the bounded number of reconnection attempts is exhausted."""


class EndOfStreamError(CaptureError):
    """A non-looping replay source has delivered its last image."""


class UnsupportedPixelFormat(CaptureError):  # noqa: N818 - name fixed by the capture contract
    """The pixel format has no conversion to RGB8."""

    def __init__(self, pixel_format: str) -> None:
        super().__init__(f"unsupported pixel format {pixel_format!r}")
        self.pixel_format = pixel_format


class MalformedBufferError(CaptureError):
    """A buffer's size or dtype does not match its declared pixel format and dimensions."""


class OversizedFrameError(MalformedBufferError):
    """A camera buffer announces more pixels than ``max_frame_pixels``; refused before conversion.

    A :class:`MalformedBufferError`, so the pipeline gives that part an ``ERROR`` verdict like any other
    buffer it cannot use.
    """


class BadFrame(CaptureError):  # noqa: N818 - name fixed by the capture contract
    """An image could not be read or decoded (replay). The part still needs an ``ERROR`` verdict.

    Attributes:
        path: The offending file.
        reason: Why it was rejected.
        seq: Sequence number the frame would have had.
        sku: SKU assigned to the file, when known.

    """

    def __init__(self, path: Path, reason: str, *, seq: int, sku: str | None = None) -> None:
        super().__init__(f"bad image {path}: {reason}")
        self.path = path
        self.reason = reason
        self.seq = seq
        self.sku = sku
