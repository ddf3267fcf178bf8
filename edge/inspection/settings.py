"""The inspection's settings: per SKU (from the station config) and station-wide, and its error type."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.inspection.augment import LinePerturbation
from edge.inspection.registration import RegistrationSettings
from edge.model.limits import MEMORY_CHUNKS
from edge.model.preprocess import ViewSettings

#: Seeds the line nuisance shown to the patch memory (enrollment is reproducible).
MEMORY_NUISANCE_SEED = 20261202

#: Every comparison :func:`edge.inspection.compare.analyze` can compute.
ALL_MAPS = frozenset({"template", "pixel", "memory", "part"})


class InspectionError(RuntimeError):
    """The inspection cannot run for this frame/SKU (the caller publishes an ERROR verdict)."""


@dataclass(frozen=True)
class SkuSettings:
    """Per-SKU knobs a line engineer may set in the station config.

    Attributes:
        top_k: golden templates compared per frame.
        bank_kind: ``instances`` (golden images are different parts seen the same way: calibrate on real
            part-to-part variation, leave-one-out), ``views`` (each golden image shows another view or region,
            e.g. crops of a board: calibrate each against itself under line nuisance) or ``auto``.
        threshold_margin: relative margin added above the highest golden calibration score.
        threshold: fixed threshold overriding calibration (normalised units), or None.
        min_defect_area_px: smallest box kept, in image pixels.
        box_padding: margin around each box as a fraction of the image's longer side (8 px at 640), so
            the operator sees the defect in its context, as inspectors draw boxes.
        pixel_compare: use the registered pixel-level comparison beside the feature comparison: ``on``,
            ``off`` or ``auto`` (on, unless the golden set cannot show that parts are pixel-repeatable: a
            single golden part, or no golden part registers onto another, and the bank is not ``views``).
        line_nuisance: ``typical``: the patch memory also holds the golden parts as the line shows them
            (lighting, sensor noise, focus: :class:`LinePerturbation`), and the calibration and the
            self-configuration see every golden part and half the synthetic defects that way too, so the
            threshold and the chosen comparisons hold on a real line; ``off``: the golden images as
            captured only (a line whose frames are as clean as its golden images).

    """

    top_k: int = 3
    bank_kind: str = "auto"
    threshold_margin: float = 0.1
    threshold: float | None = None
    min_defect_area_px: float = 12.0
    box_padding: float = 0.012
    pixel_compare: str = "auto"
    line_nuisance: str = "typical"


#: The nuisance models of ``SkuSettings.line_nuisance`` (None: none).
LINE_NUISANCE: dict[str, LinePerturbation | None] = {"off": None, "typical": LinePerturbation()}


def line_nuisance(sku: str, cfg: SkuSettings) -> LinePerturbation | None:
    """The nuisance model ``cfg`` names for ``sku`` (None: ``off``); an unknown name is an error."""
    if cfg.line_nuisance not in LINE_NUISANCE:
        raise InspectionError(
            f"SKU '{sku}': line_nuisance '{cfg.line_nuisance}' is not one of {', '.join(LINE_NUISANCE)}"
        )
    return LINE_NUISANCE[cfg.line_nuisance]


@dataclass(frozen=True)
class InspectorSettings:
    """Station-wide inspection settings.

    Attributes:
        views: resolutions of the registration and pixel-comparison views.
        registration: registration tuning.
        fusion: how the maps a SKU uses combine: ``auto`` (each SKU chooses ``max`` or ``mean`` at flash
            time, :mod:`edge.inspection.selfconfig`), or one of ``max``, ``mean``, ``geo`` for every SKU.
        pixel_blur: Gaussian sigma applied to both images before the pixel comparison.
        tolerance_px: edge tolerance of the pixel comparison (a template edge may move this much).
        min_defect_width_px: pixel differences thinner than this (fine pixels) are edge-width or
            sub-pixel registration residue, not defects; a morphological opening removes them.
        min_contrast: smallest grey-level difference that can count as a defect, as a fraction of the
            golden images' intensity range (1st to 99th percentile); floors the pixel normalisation.
        min_contrast_unseen: the same floor when the golden set could not show part-to-part variation
            (a single golden part, or no golden part with a peer) and the SKU is not a bank of views.
        map_smooth: Gaussian sigma of the pixel map (fine pixels).
        border_px: margin ignored along the edge of the warped template, on top of the comparison's own
            reach (blur, tolerance, opening).
        calib_samples: golden images used for calibration (evenly spread over the bank).
        peer_min_quality: registration correlation for a golden part to count as a peer of another.
        calib_quantile: each map is scaled by this quantile of its per-part maxima on golden parts, so one
            odd golden part does not set the scale (the threshold still sits above every golden part).
        view_mismatch_ratio: a retrieved template is compared only if its registration residual
            (1 - correlation) is at most this many times the best template's (plus 0.02): a template that
            registers much worse shows another view of the product and would explain away real defects.
        memory_chunks: patch-memory budget in feature maps of the SKU's input size (3: as many patches as
            the top-3 template comparison attends over, so it costs about the same per frame).
        synthetic_per_kind: synthetic defects of each kind drawn for the self-configuration.

    """

    views: ViewSettings = field(default_factory=ViewSettings)
    registration: RegistrationSettings = field(default_factory=RegistrationSettings)
    fusion: str = "auto"
    pixel_blur: float = 1.0
    tolerance_px: int = 2
    min_defect_width_px: int = 3
    min_contrast: float = 0.15
    min_contrast_unseen: float = 0.35
    map_smooth: float = 1.5
    border_px: int = 1
    calib_samples: int = 40
    peer_min_quality: float = 0.8
    calib_quantile: float = 0.9
    view_mismatch_ratio: float = 2.0
    memory_chunks: int = MEMORY_CHUNKS
    synthetic_per_kind: int = 6
