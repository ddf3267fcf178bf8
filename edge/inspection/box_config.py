"""Per-SKU box settings, chosen at flash time from the SKU's own golden parts and synthetic defects.

How far a box reaches around the evidence depends on the product: a crisp scratch on a moulded part is a
tight peak in the anomaly map, a stain on fried food or a crack in a grey tile is a broad, weak plateau. So
the level that seeds a box, the hysteresis level it grows to, and the share of its own peak it is cut
back to are chosen per SKU, by how well the boxes outline the synthetic defects drawn onto its golden
parts (whose masks are known), measured as the evaluation measures real ones (box F1 at IoU > 0.33 and
BBox-Mask IoU, :mod:`edge.inspection.box_scoring`), with a box on a golden part counting against.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.inspection.box_scoring import BoxCounts, BoxXYXY, bbox_mask_iou, match_boxes
from edge.inspection.postprocess import extract_boxes
from edge.inspection.types import Box

FloatMap = npt.NDArray[np.float32]
#: Seed level multipliers (of the SKU's map threshold), hysteresis ratios and peak cuts tried.
SEED_FACTORS = (0.6, 0.8, 1.0, 1.25)
BOX_RATIOS = (0.3, 0.5, 0.7)
PEAK_RATIOS = (0.2, 0.35, 0.5, 0.7)
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
class BoxChoice:
    """The chosen settings and how they did on the calibration parts."""

    settings: BoxSettings
    f1: float
    miou: float

    @property
    def objective(self) -> float:
        """Half box F1, half BBox-Mask IoU."""
        return 0.5 * self.f1 + 0.5 * self.miou


def score_boxes(
    samples: Sequence[BoxSample],
    settings: BoxSettings,
    image_size: tuple[int, int],
    min_area_px: float,
    scale: float,
    padding_px: float,
) -> BoxChoice:
    """Box F1 over every sample and mean BBox-Mask IoU over the defective ones, with ``settings``."""
    counts = BoxCounts()
    ious = []
    for s in samples:
        boxes = defect_boxes(s.fused, s.valid, s.ng, settings, min_area_px, scale, padding_px)
        pred = [((float(b.x), float(b.y), float(b.x + b.w), float(b.y + b.h)), b.score) for b in boxes]
        counts.add(match_boxes(pred, s.truth))
        if s.defective and s.truth:
            ious.append(bbox_mask_iou([p for p, _ in pred], s.truth, image_size))
    return BoxChoice(settings, counts.f1 or 0.0, float(np.mean(ious)) if ious else 0.0)


def choose_boxes(
    samples: Sequence[BoxSample],
    base_seed: float,
    image_size: tuple[int, int],
    min_area_px: float,
    scale: float,
    padding_px: float,
) -> BoxChoice:
    """The box settings that outline the synthetic defects best (the default settings on a tie).

    Args:
        samples: golden and synthetic parts with their fused maps and verdicts.
        base_seed: the SKU's map threshold (seed levels are tried around it).
        image_size: (h, w) of the SKU's images, the frame of the ground-truth boxes.
        min_area_px: smallest box kept, in image pixels.
        scale: map pixels per image pixel.
        padding_px: margin around each box, image pixels.

    """
    default = score_boxes(samples, BoxSettings(base_seed), image_size, min_area_px, scale, padding_px)
    best = default
    for factor, ratio, peak in itertools.product(SEED_FACTORS, BOX_RATIOS, PEAK_RATIOS):
        settings = BoxSettings(base_seed * factor, ratio, peak)
        if settings == default.settings:
            continue
        trial = score_boxes(samples, settings, image_size, min_area_px, scale, padding_px)
        if trial.objective > best.objective + 1e-9:
            best = trial
    return best
