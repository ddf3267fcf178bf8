"""Frame capture: GenICam cameras (harvesters) and folder replay behind one :class:`FrameSource` interface.

Typical use::

    from edge.capture import GenICamSettings, open_source, simulated_cti

    with open_source(GenICamSettings(cti=simulated_cti(), serial="0", pixel_format="Mono8")) as source:
        frame = source.read(timeout_s=1.0)  # Frame, or raises CaptureTimeout / another CaptureError
"""

from edge.capture.convert import SUPPORTED_PIXEL_FORMATS, to_rgb
from edge.capture.errors import (
    BadFrame,
    CaptureConfigError,
    CaptureError,
    CaptureTimeout,
    DeviceLostError,
    DeviceUnavailableError,
    EndOfStreamError,
    MalformedBufferError,
    OversizedFrameError,
    UnsupportedPixelFormat,
)
from edge.capture.factory import create_source, open_source
from edge.capture.frame import Frame
from edge.capture.genicam import GenICamSource
from edge.capture.replay import ReplaySource
from edge.capture.settings import (
    DEFAULT_MAX_FRAME_PIXELS,
    CameraSettings,
    GenICamSettings,
    ReconnectPolicy,
    ReplaySettings,
    Roi,
    SkuSource,
    TriggerMode,
    simulated_cti,
)
from edge.capture.source import CaptureStats, FrameSource

__all__ = [
    "DEFAULT_MAX_FRAME_PIXELS",
    "SUPPORTED_PIXEL_FORMATS",
    "BadFrame",
    "CameraSettings",
    "CaptureConfigError",
    "CaptureError",
    "CaptureStats",
    "CaptureTimeout",
    "DeviceLostError",
    "DeviceUnavailableError",
    "EndOfStreamError",
    "Frame",
    "FrameSource",
    "GenICamSettings",
    "GenICamSource",
    "MalformedBufferError",
    "OversizedFrameError",
    "ReconnectPolicy",
    "ReplaySettings",
    "ReplaySource",
    "Roi",
    "SkuSource",
    "TriggerMode",
    "UnsupportedPixelFormat",
    "create_source",
    "open_source",
    "simulated_cti",
    "to_rgb",
]
