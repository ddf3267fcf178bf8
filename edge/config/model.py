"""``model:`` section: which exported model artifacts to run and on which backend."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from edge.config.base import ConfigPath, Section
from edge.model.backbone_catalog import DEFAULT_BACKBONE, BackboneName

Backend = Literal["tensorrt", "onnxruntime-cuda", "onnxruntime-cpu"]

DEFAULT_BACKENDS: tuple[Backend, ...] = ("tensorrt", "onnxruntime-cuda", "onnxruntime-cpu")

INPUT_SIDE_MULTIPLE = 64
"""The vision encoder pools a 4x4 descriptor grid at stride 16, so input sides are multiples of 64."""


class ModelSection(Section):
    """Model artifacts and inference backend."""

    artifact_dir: ConfigPath = Field(
        default="/var/lib/edge/artifacts",
        description="Folder with the exported model (manifest.json, ONNX files, device-built engines).",
    )
    backends: list[Backend] = Field(
        default_factory=lambda: list(DEFAULT_BACKENDS),
        min_length=1,
        description="Backend preference: the first one available on the device is used.",
    )
    input_size: tuple[int, int] = Field(
        default=(320, 320),
        strict=False,  # a YAML list; the items stay strict integers
        description=f"Inference input [height, width], multiples of {INPUT_SIDE_MULTIPLE}.",
    )
    backbone: BackboneName = Field(
        default=DEFAULT_BACKBONE,
        description=(
            "ImageNet backbone of the vision encoder (lite0, lite1, lite2: EfficientNet-Lite; mobilenetv2). "
            "Part of the model id: artifacts and golden banks are made for one backbone."
        ),
    )
    precision: Literal["fp32", "fp16", "int8"] = Field(
        default="fp32", description="Numeric precision of the engine (int8 needs the calibrated Q/DQ ONNX)."
    )

    @field_validator("backends")
    @classmethod
    def _unique_backends(cls, value: list[Backend]) -> list[Backend]:
        if len(set(value)) != len(value):
            raise ValueError("backends must not repeat")
        return value

    @field_validator("input_size")
    @classmethod
    def _input_side_multiple(cls, value: tuple[int, int]) -> tuple[int, int]:
        for side in value:
            if side < INPUT_SIDE_MULTIPLE or side > 4096 or side % INPUT_SIDE_MULTIPLE:
                raise ValueError(f"sides must be multiples of {INPUT_SIDE_MULTIPLE} between 64 and 4096")
        return value
