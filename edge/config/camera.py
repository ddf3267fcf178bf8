"""``camera:`` section: the image source, a GenICam camera through a GenTL producer or a folder replay."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import (
    Field,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from edge.config.base import ConfigPath, Section

MAX_SENSOR_SIDE = 16384
"""Largest ROI side accepted; no industrial sensor we support is wider."""

DEFAULT_MAX_FRAME_PIXELS = 1 << 26
"""67,108,864 pixels (64 Mi): room for the 65 MP sensors (9344 x 7000), the largest area-scan industrial
sensors in common use; such a frame is 192 MiB as RGB. Equal to ``edge.capture.DEFAULT_MAX_FRAME_PIXELS``
(tested; the two packages do not import each other)."""

#: A GenICam feature name (GenApi node names are C identifiers).
FEATURE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _feature_value(value: object) -> bool | int | float | str:
    """One scalar, as the node takes it: no coercion, no NaN or infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    if not isinstance(value, bool | int | float | str):
        raise ValueError("expected one value: true/false, a number or a name (an enumeration entry)")
    return value


#: A value of ``camera.features``: a boolean, integer, float or string (an enumeration entry's name), as the
#: node takes it; checked against the node's type when the camera opens.
FeatureValue = Annotated[
    bool | int | float | str,
    PlainValidator(_feature_value),
    WithJsonSchema({"type": ["boolean", "integer", "number", "string"]}),
]
#: Features that fields of this section set; ``camera.features`` must not set them a second time.
MANAGED_FEATURES = {
    "PixelFormat": "pixel_format",
    "Width": "roi",
    "Height": "roi",
    "OffsetX": "roi",
    "OffsetY": "roi",
    "AcquisitionFrameRate": "frame_rate",
    "AcquisitionFrameRateAbs": "frame_rate",
    "AcquisitionFrameRateEnable": "frame_rate",
    "ExposureTime": "exposure_us",
    "ExposureTimeAbs": "exposure_us",
    "AcquisitionMode": "trigger",
    "TriggerMode": "trigger",
    "TriggerSelector": "trigger",
    "TriggerSource": "trigger.line",
    "TriggerActivation": "trigger.activation",
}

MAX_FRAME_PIXELS_LIMIT = 1 << 30
"""Highest ``max_frame_pixels`` accepted: OpenCV's decoders refuse larger images anyway
(``CV_IO_MAX_IMAGE_PIXELS``)."""


class DeviceSelector(Section):
    """Which camera to open when several are visible; at most one key. Empty selects the first device."""

    serial: str | None = Field(default=None, min_length=1, description="Camera serial number.")
    id: str | None = Field(default=None, min_length=1, description="GenTL device id.")
    index: int | None = Field(default=None, ge=0, description="Index in the producer's device list.")

    @model_validator(mode="after")
    def _at_most_one(self) -> DeviceSelector:
        given = [k for k in ("serial", "id", "index") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of serial, id or index (got {', '.join(given)})")
        return self


class Roi(Section):
    """Region of interest on the sensor, in sensor pixels."""

    x: int = Field(default=0, ge=0, description="Left offset.")
    y: int = Field(default=0, ge=0, description="Top offset.")
    width: int = Field(ge=32, le=MAX_SENSOR_SIDE, description="Width in pixels.")
    height: int = Field(ge=32, le=MAX_SENSOR_SIDE, description="Height in pixels.")

    @model_validator(mode="after")
    def _inside_sensor_limits(self) -> Roi:
        if self.x + self.width > MAX_SENSOR_SIDE or self.y + self.height > MAX_SENSOR_SIDE:
            raise ValueError(f"ROI extends past the largest supported sensor ({MAX_SENSOR_SIDE} px)")
        return self


class Trigger(Section):
    """How frames are triggered."""

    mode: Literal["free_run", "software", "hardware"] = Field(
        default="free_run",
        description="free_run: camera streams; software: the PLC sends cmd/trigger; hardware: an input line.",
    )
    line: str | None = Field(
        default=None,
        pattern=r"^Line[0-9]+$",
        description="Input line for hardware trigger (GenICam TriggerSource, e.g. Line0).",
    )
    activation: Literal["RisingEdge", "FallingEdge"] = Field(
        default="RisingEdge", description="Edge of the hardware trigger signal."
    )

    @model_validator(mode="after")
    def _hardware_needs_line(self) -> Trigger:
        if self.mode == "hardware" and self.line is None:
            raise ValueError("hardware trigger needs 'line' (e.g. Line0)")
        return self


class Replay(Section):
    """Folder replay: images played back as if a camera delivered them (demo, tests, offline checks)."""

    dir: ConfigPath = Field(description="Folder of images (png, jpg, bmp, tif), played in name order.")
    fps: float = Field(default=5.0, gt=0, le=1000, description="Frames per second.")
    loop: bool = Field(default=True, description="Start again from the first image at the end.")


class CameraSection(Section):
    """Image source and acquisition settings."""

    source: Literal["genicam", "replay"] = Field(
        default="genicam", description="genicam: a camera through a GenTL producer; replay: a folder."
    )
    cti: ConfigPath | None = Field(
        default=None, description="Path of the GenTL producer (.cti) library; required for genicam."
    )
    device: DeviceSelector = Field(default_factory=DeviceSelector, description="Which camera to open.")
    pixel_format: str = Field(
        default="Mono8", pattern=r"^[A-Za-z0-9]+$", description="GenICam PixelFormat, e.g. Mono8, BayerRG8."
    )
    roi: Roi | None = Field(default=None, description="Sensor region of interest; full sensor when absent.")
    exposure_us: float | None = Field(
        default=None,
        gt=0,
        le=10_000_000,
        description="Exposure time in microseconds; camera default if absent.",
    )
    frame_rate: float | None = Field(
        default=None, gt=0, le=10_000, description="Acquisition frame rate limit (free run)."
    )
    buffers: int = Field(default=4, ge=2, le=64, description="Number of acquisition buffers.")
    trigger: Trigger = Field(default_factory=Trigger, description="Triggering.")
    replay: Replay | None = Field(default=None, description="Folder replay settings; required for replay.")
    fetch_timeout_s: float = Field(
        default=2.0, gt=0, le=60, description="Longest wait for a frame before the part is NOT_INSPECTED."
    )
    features: dict[Annotated[str, StringConstraints(pattern=FEATURE_NAME)], FeatureValue] = Field(
        default_factory=dict,
        description="Further GenICam features of the device, written in the order given after the ones "
        "above, before acquisition starts: a vendor's features or SFNC ones this section has no field "
        "for, e.g. {GainAuto: Continuous, BlackLevel: 8, ReverseX: true}. A feature the device lacks, "
        "cannot write now, or refuses the value of stops the camera from opening, with the feature named.",
    )
    max_frame_pixels: int = Field(
        default=DEFAULT_MAX_FRAME_PIXELS,
        ge=32 * 32,
        le=MAX_FRAME_PIXELS_LIMIT,
        description="Largest frame accepted, in pixels (width x height); default 67108864 (64 Mi, room for "
        "65 MP sensors). A replay image whose header announces more, or a camera buffer that is larger, is "
        "refused before it is decoded or converted and the part gets an ERROR verdict with the reason.",
    )

    @field_validator("features")
    @classmethod
    def _not_managed(cls, value: dict[str, FeatureValue]) -> dict[str, FeatureValue]:
        for name in value:
            if name in MANAGED_FEATURES:
                raise ValueError(f"{name} is set by camera.{MANAGED_FEATURES[name]}, not in camera.features")
        return value

    @model_validator(mode="after")
    def _source_has_its_settings(self) -> CameraSection:
        if self.source == "genicam" and self.cti is None:
            raise ValueError("source genicam needs 'cti' (path of the GenTL producer)")
        if self.source == "replay" and self.replay is None:
            raise ValueError("source replay needs a 'replay' section with 'dir'")
        if self.cti is not None and not self.cti.endswith(".cti"):
            raise ValueError("'cti' must name a GenTL producer file ending in .cti")
        return self

    @model_validator(mode="after")
    def _roi_within_frame_limit(self) -> CameraSection:
        # Otherwise every frame of this camera would be refused, one ERROR verdict at a time.
        roi = self.roi
        if roi is not None and roi.width * roi.height > self.max_frame_pixels:
            raise ValueError(
                f"roi {roi.width}x{roi.height} = {roi.width * roi.height} pixels is above "
                f"max_frame_pixels ({self.max_frame_pixels}): every frame would be refused"
            )
        return self
