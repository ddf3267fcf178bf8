"""Build the frame source a camera setting asks for."""

from __future__ import annotations

from edge.capture.genicam import GenICamSource
from edge.capture.replay import ReplaySource
from edge.capture.settings import CameraSettings, GenICamSettings, ReplaySettings
from edge.capture.source import FrameSource


def create_source(settings: CameraSettings) -> GenICamSource | ReplaySource:
    """Construct (without opening) the source for ``settings``.

    Raises:
        TypeError: ``settings`` is not a known settings type.

    """
    if isinstance(settings, GenICamSettings):
        return GenICamSource(settings)
    if isinstance(settings, ReplaySettings):
        return ReplaySource(settings)
    raise TypeError(f"unknown camera settings type {type(settings).__name__}")


def open_source(settings: CameraSettings) -> FrameSource:
    """Construct and open the source for ``settings``; use it as a context manager or call ``close()``.

    Raises:
        CaptureConfigError: The producer, device, folder or a feature value is wrong.
        UnsupportedPixelFormat: The configured pixel format cannot be converted.

    """
    source = create_source(settings)
    source.open()
    return source
