"""Defect boxes of an inspected part, and how well they outline the synthetic defects of the flash.

A box explains an NG verdict: an OK part has none. The flash reports how well the boxes outline the
synthetic defects drawn onto the SKU's golden parts (whose masks are known), measured as the evaluation
measures real ones (box F1 at IoU > 0.33 and BBox-Mask IoU, :mod:`edge.inspection.box_scoring`).

Choosing the box levels per SKU by that same measure was tried and measured worse on real defects
(2026-12-02, box F1 bottle 0.77 -> 0.32, metal_plate 0.73 -> 0.54): synthetic masks are tighter and
simpler than real defects, so the box levels stay fixed defaults, measured on every dev set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.inspection.box_scoring import BoxCounts, BoxXYXY, bbox_mask_iou, match_boxes
from edge.inspection.postprocess import extract_boxes
from edge.inspection.types import Box

FloatMap = npt.NDArray[np.float32]
#: Where an NG part's map never reaches the box seed level, the box is seeded at this share of its peak.
FALLBACK_PEAK = 0.9


@dataclass(frozen=True)
class BoxSettings:
    """How boxes are drawn on an NG part's fused map.

    Attributes:
        seed: map level a box must reach (normalised units).
        box_ratio: a box grows down to ``box_ratio * seed`` (hysteresis).
        peak_ratio: a box is cut back to where the map exceeds this share of its own peak.

    """

    seed: float
    box_ratio: float = 0.5
    peak_ratio: float = 0.35


def defect_boxes(
    fused: FloatMap,
    valid: npt.NDArray[np.bool_],
    ng: bool,
    settings: BoxSettings,
    min_area_px: float,
    scale: float,
    padding_px: float,
) -> list[Box]:
    """The boxes of one inspected part: none on an OK part (a box explains an NG verdict).

    An NG part whose map never reaches the seed level (NG by the tail mean or the whole-part score) is
    boxed where its map points, so the operator sees the strongest evidence.
    """
    if not ng:
        return []
    args = (min_area_px, scale, padding_px, settings.peak_ratio)
    boxes = extract_boxes(fused, valid, settings.seed, settings.box_ratio, *args)
    if not boxes and valid.any():
        boxes = extract_boxes(
            fused, valid, FALLBACK_PEAK * float(fused[valid].max()), settings.box_ratio, *args
        )
    return boxes


@dataclass
class BoxSample:
    """One calibration part as the station would box it."""

    fused: FloatMap
    valid: npt.NDArray[np.bool_]
    ng: bool  # the verdict at the SKU's threshold
    truth: list[BoxXYXY]  # ground-truth boxes in SKU-image pixels (none for a golden part)
    defective: bool


@dataclass(frozen=True)
class BoxQuality:
    """How boxes drawn with ``settings`` outline the defects of a set of parts."""

    settings: BoxSettings
    f1: float
    miou: float


def score_boxes(
    samples: Sequence[BoxSample],
    settings: BoxSettings,
    image_size: tuple[int, int],
    min_area_px: float,
    scale: float,
    padding_px: float,
) -> BoxQuality:
    """Box F1 over every sample and mean BBox-Mask IoU over the defective ones, with ``settings``."""
    counts = BoxCounts()
    ious = []
    for s in samples:
        boxes = defect_boxes(s.fused, s.valid, s.ng, settings, min_area_px, scale, padding_px)
        pred = [((float(b.x), float(b.y), float(b.x + b.w), float(b.y + b.h)), b.score) for b in boxes]
        counts.add(match_boxes(pred, s.truth))
        if s.defective and s.truth:
            ious.append(bbox_mask_iou([p for p, _ in pred], s.truth, image_size))
    return BoxQuality(settings, counts.f1 or 0.0, float(np.mean(ious)) if ious else 0.0)
