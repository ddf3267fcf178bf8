"""``skus:`` section: the products this station inspects, each with its golden images."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge.config.base import ConfigPath, Identifier, Section
from edge.model.limits import MAX_TOP_K


class SkuSection(Section):
    """One product: golden images to compare against and its decision settings."""

    id: Identifier = Field(description="SKU id, as the PLC selects it on cmd/sku.")
    golden_dir: ConfigPath = Field(description="Folder of golden (defect-free) images of this SKU.")
    validation_defects_dir: ConfigPath | None = Field(
        default=None,
        description="Optional folder of known-defective parts: the flash self-test must catch them.",
    )
    # The bound is also the TensorRT comparison engine's largest `k` (edge.model.limits).
    top_k: int = Field(
        default=3, ge=1, le=MAX_TOP_K, description="Golden templates compared with each frame."
    )
    bank_kind: Literal["auto", "instances", "views"] = Field(
        default="auto",
        description=(
            "instances: the golden images are different good parts seen the same way (thresholds learn "
            "part-to-part variation); views: each golden image shows another view or region of the product "
            "(each frame is compared with its own view); auto: decided from the images."
        ),
    )
    pixel_compare: Literal["auto", "on", "off"] = Field(
        default="auto",
        description=(
            "Registered pixel-level comparison beside the feature comparison. auto: on unless the golden "
            "images cannot show that parts are pixel-repeatable (a single golden part, or none registers "
            "onto another, and bank_kind is not views); on/off: force it."
        ),
    )
    line_nuisance: Literal["typical", "off"] = Field(
        default="typical",
        description=(
            "typical: the calibration, the self-configuration and the patch memory also see the golden parts "
            "as a line shows them (placement, lighting, sensor noise, focus), so the threshold holds on the "
            "line; off: the golden images as captured only (frames as clean as the golden images)."
        ),
    )
    threshold: float | None = Field(
        default=None,
        gt=0,
        description="Fixed threshold (normalised score units); calibrated from golden images if absent.",
    )
    threshold_margin: float = Field(
        default=0.1, ge=0.0, le=10.0, description="Calibrated threshold = worst golden score x (1 + margin)."
    )
    min_defect_area_px: int = Field(default=12, ge=1, description="Smallest defect box reported, in pixels.")
    min_defect_area_mm2: float | None = Field(
        default=None, gt=0, description="Smallest defect area in mm^2 (needs pixel_pitch_mm)."
    )
    pixel_pitch_mm: float | None = Field(
        default=None, gt=0, le=100, description="Size of one image pixel on the part, in mm."
    )

    @model_validator(mode="after")
    def _area_in_mm_needs_pitch(self) -> SkuSection:
        if self.min_defect_area_mm2 is not None and self.pixel_pitch_mm is None:
            raise ValueError("'min_defect_area_mm2' needs 'pixel_pitch_mm'")
        return self
