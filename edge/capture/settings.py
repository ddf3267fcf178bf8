"""Plain typed capture settings.

Deliberately small frozen dataclasses with no validation side effects: the station config (pydantic, in
``edge.config``) is the user-facing schema and the runtime builds these from it. They check only their own
invariants, so a wrong value fails here with a message naming the field.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MAX_FRAME_PIXELS = 1 << 26
"""Largest frame accepted by default: 67,108,864 pixels (64 Mi), room for the 65 MP sensors (9344 x 7000), the
largest area-scan industrial sensors in common use; such a frame is 192 MiB as RGB. The station config's
``camera.max_frame_pixels`` has the same default (``tests/capture/test_settings.py`` keeps them equal)."""


class TriggerMode(enum.Enum):
    """How acquisition of a frame starts."""

    FREE_RUN = "free_run"
    SOFTWARE = "software"
    HARDWARE = "hardware"


class SkuSource(enum.Enum):
    """Where a replay source takes each image's SKU from."""

    NONE = "none"
    SUBFOLDER = "subfolder"  # <root>/<sku>/<image>
    SIDECAR = "sidecar"  # <image stem>.json next to the image, with an optional "sku" key


@dataclass(frozen=True)
class Roi:
    """Region of interest in sensor pixels."""

    width: int
    height: int
    offset_x: int = 0
    offset_y: int = 0

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"roi: width and height must be > 0, got {self.width}x{self.height}")
        if self.offset_x < 0 or self.offset_y < 0:
            raise ValueError(f"roi: offsets must be >= 0, got ({self.offset_x}, {self.offset_y})")


@dataclass(frozen=True)
class ReconnectPolicy:
    """Exponential backoff between reconnection attempts after a device loss.

    Attributes:
        initial_delay_s: Wait before the second attempt (the first is immediate).
        max_delay_s: Upper bound of the wait between attempts.
        max_attempts: Consecutive failed attempts before :class:`~edge.capture.errors.DeviceLostError` is
            raised; ``None`` keeps trying forever (a station should, and says so on its ``state`` topic).

    """

    initial_delay_s: float = 0.2
    max_delay_s: float = 5.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.initial_delay_s <= 0 or self.max_delay_s < self.initial_delay_s:
            raise ValueError("reconnect: need 0 < initial_delay_s <= max_delay_s")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("reconnect: max_attempts must be >= 1 or None")


@dataclass(frozen=True)
class GenICamSettings:
    """A GenTL camera reached through harvesters.

    Select the device with at most one of ``serial``, ``device_id`` or ``index``; none selects the only
    device (an error when several are present, so a station never grabs the wrong camera silently).

    Attributes:
        cti: Path of the GenTL producer (``.cti``).
        serial: Device serial number.
        device_id: GenTL device id.
        index: Position in the producer's device list.
        name: Source name put on frames; defaults to the selector.
        pixel_format: PFNC pixel format to set (``None`` keeps the device's).
        roi: Region of interest (``None`` keeps the device's).
        frame_rate_hz: ``AcquisitionFrameRate`` (``None`` keeps the device's).
        exposure_us: ``ExposureTime`` in microseconds (``None`` keeps the device's).
        num_buffers: Buffers announced to the producer.
        trigger: Acquisition mode.
        trigger_line: Input line for hardware trigger, e.g. ``Line0``.
        trigger_activation: Edge of the hardware trigger signal that starts a frame (``RisingEdge`` or
            ``FallingEdge``, the SFNC ``TriggerActivation`` values).
        allow_emulation: When the device lacks a feature (trigger, ROI offsets), emulate it with a WARNING;
            when ``False`` such a device is a configuration error.
        reconnect: Backoff policy after a device loss.
        stall_timeout_s: A free-running device that sends no frame for this long is treated as lost and
            reconnected (some producers report a pulled cable only as silence); ``None`` disables.
        max_frame_pixels: A buffer announcing more pixels (width x height) is refused before conversion
            (:class:`~edge.capture.errors.OversizedFrameError`); ``None``: no limit.
        features: Further GenICam features, ``(name, value)`` written in this order after the others.

    """

    cti: Path
    serial: str | None = None
    device_id: str | None = None
    index: int | None = None
    name: str | None = None
    pixel_format: str | None = None
    roi: Roi | None = None
    frame_rate_hz: float | None = None
    exposure_us: float | None = None
    num_buffers: int = 4
    trigger: TriggerMode = TriggerMode.FREE_RUN
    trigger_line: str = "Line0"
    trigger_activation: str = "RisingEdge"
    allow_emulation: bool = True
    reconnect: ReconnectPolicy = field(default_factory=ReconnectPolicy)
    stall_timeout_s: float | None = 10.0
    max_frame_pixels: int | None = DEFAULT_MAX_FRAME_PIXELS
    features: tuple[tuple[str, bool | int | float | str], ...] = ()

    def __post_init__(self) -> None:
        # Accept plain strings from a config loader; store the typed values.
        object.__setattr__(self, "cti", Path(self.cti))
        object.__setattr__(self, "trigger", TriggerMode(self.trigger))
        chosen = [
            k
            for k, v in (("serial", self.serial), ("device_id", self.device_id), ("index", self.index))
            if v is not None
        ]
        if len(chosen) > 1:
            raise ValueError(
                f"camera: give at most one of serial, device_id, index (got {', '.join(chosen)})"
            )
        if self.index is not None and self.index < 0:
            raise ValueError(f"camera: index must be >= 0, got {self.index}")
        if self.num_buffers < 1:
            raise ValueError(f"camera: num_buffers must be >= 1, got {self.num_buffers}")
        if self.frame_rate_hz is not None and self.frame_rate_hz <= 0:
            raise ValueError(f"camera: frame_rate_hz must be > 0, got {self.frame_rate_hz}")
        if self.stall_timeout_s is not None and self.stall_timeout_s <= 0:
            raise ValueError(f"camera: stall_timeout_s must be > 0 or None, got {self.stall_timeout_s}")
        if self.exposure_us is not None and self.exposure_us <= 0:
            raise ValueError(f"camera: exposure_us must be > 0, got {self.exposure_us}")
        _check_max_frame_pixels("camera", self.max_frame_pixels)

    @property
    def source_name(self) -> str:
        """Name put on frames."""
        if self.name:
            return self.name
        if self.serial is not None:
            return f"genicam:serial={self.serial}"
        if self.device_id is not None:
            return f"genicam:id={self.device_id}"
        return f"genicam:index={self.index if self.index is not None else 0}"


@dataclass(frozen=True)
class ReplaySettings:
    """A folder of images replayed as if from a camera.

    Attributes:
        folder: Root folder; images are found recursively and replayed in sorted relative-path order.
            The folder is followed: files added while the source runs are served too (the rule is in
            :mod:`edge.capture.replay`).
        rate_hz: Frames per second in free-run; ``None`` delivers as fast as they are read.
        loop: Start again after the last image; otherwise ``read`` raises ``EndOfStreamError`` once every
            image found, also those added meanwhile, was served (each file at most once).
        trigger: ``FREE_RUN`` (paced by ``rate_hz``) or ``SOFTWARE`` (one image per ``trigger()``).
        sku_source: Where each image's SKU comes from.
        name: Source name put on frames.
        max_frame_pixels: An image whose header announces more pixels (width x height) is refused before
            it is decoded, as a :class:`~edge.capture.errors.BadFrame`; ``None``: no limit of our own
            (OpenCV's decoder still refuses above 2^30 pixels).

    """

    folder: Path
    rate_hz: float | None = 10.0
    loop: bool = True
    trigger: TriggerMode = TriggerMode.FREE_RUN
    sku_source: SkuSource = SkuSource.NONE
    name: str | None = None
    max_frame_pixels: int | None = DEFAULT_MAX_FRAME_PIXELS

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))
        object.__setattr__(self, "trigger", TriggerMode(self.trigger))
        object.__setattr__(self, "sku_source", SkuSource(self.sku_source))
        if self.rate_hz is not None and self.rate_hz <= 0:
            raise ValueError(f"replay: rate_hz must be > 0 or None, got {self.rate_hz}")
        if self.trigger is TriggerMode.HARDWARE:
            raise ValueError("replay: hardware trigger is not possible for a folder source")
        _check_max_frame_pixels("replay", self.max_frame_pixels)

    @property
    def source_name(self) -> str:
        """Name put on frames."""
        return self.name or f"replay:{self.folder.name}"


CameraSettings = GenICamSettings | ReplaySettings


def _check_max_frame_pixels(section: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{section}: max_frame_pixels must be >= 1 or None, got {value}")


def simulated_cti() -> Path:
    """Path of ``viky.cti``, the simulated GenTL producer shipped inside the ``genicam`` wheel.

    Raises:
        FileNotFoundError: The ``genicam`` package or its producer is not installed.

    """
    import genicam  # local: only needed when the simulator is asked for

    package_dir = Path(genicam.__file__).parent
    found = sorted(package_dir.rglob("*.cti"))
    if not found:
        raise FileNotFoundError(f"no .cti producer inside the genicam package at {package_dir}")
    viky = [p for p in found if p.name == "viky.cti"]
    return viky[0] if viky else found[0]
