"""How well defect boxes outline defects: the one scoring the evaluation and the self-configuration share.

Boxes match class-agnostically when IoU > 0.33 (the DeepPCB convention); BBox-Mask IoU (MMAD-BBox, as in
the AD-Copilot paper) rasterises all predicted and all ground-truth boxes of an image and takes the IoU of
the two masks. Ground truth from a pixel mask is the bounding box of each connected region.

:func:`score_boxes` applies the same measure to the flash's synthetic defects (whose masks are known), for
the capability report. Choosing box levels per SKU by it was tried and measured worse on real defects
(2026-12-02, box F1 bottle 0.77 -> 0.32, metal_plate 0.73 -> 0.54: synthetic masks are tighter and simpler
than real defects), so the box levels stay fixed defaults (:mod:`edge.inspection.postprocess`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from edge.inspection.postprocess import defect_boxes

BoxXYXY = tuple[float, float, float, float]
#: A predicted box matches a ground-truth box when their IoU is strictly above this.
MATCH_IOU = 0.33


def box_iou(a: BoxXYXY, b: BoxXYXY) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(
    pred: Sequence[tuple[BoxXYXY, float]], gt: Sequence[BoxXYXY], iou: float = MATCH_IOU
) -> tuple[int, int, int]:
    """Greedy one-to-one matching by descending score; a match needs IoU strictly above ``iou``.

    Returns:
        (true positives, false positives, false negatives).

    """
    used: set[int] = set()
    tp = 0
    for box, _ in sorted(pred, key=lambda p: -p[1]):
        best, best_j = iou, -1
        for j, g in enumerate(gt):
            if j in used:
                continue
            v = box_iou(box, g)
            if v > best:
                best, best_j = v, j
        if best_j >= 0:
            used.add(best_j)
            tp += 1
    return tp, len(pred) - tp, len(gt) - tp


@dataclass
class BoxCounts:
    """Accumulated box matching counts."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, counts: tuple[int, int, int]) -> None:
        """Add one image's (tp, fp, fn)."""
        self.tp += counts[0]
        self.fp += counts[1]
        self.fn += counts[2]

    @property
    def precision(self) -> float | None:
        """TP / (TP + FP), None without predictions."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        """TP / (TP + FN), None without ground truth."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0


def bbox_mask_iou(pred: Sequence[BoxXYXY], gt: Sequence[BoxXYXY], size: tuple[int, int]) -> float:
    """MMAD-BBox: rasterise all predicted and all ground-truth boxes of an image; IoU of the two masks."""
    h, w = size
    pm = np.zeros((h, w), bool)
    gm = np.zeros((h, w), bool)
    for masks, boxes in ((pm, pred), (gm, gt)):
        for x1, y1, x2, y2 in boxes:
            xa, ya = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
            xb, yb = min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2)))
            if xb > xa and yb > ya:
                masks[ya:yb, xa:xb] = True
    union = int((pm | gm).sum())
    return float((pm & gm).sum() / union) if union else 0.0


def mask_boxes(mask: npt.NDArray[np.uint8] | npt.NDArray[np.bool_]) -> list[BoxXYXY]:
    """Bounding boxes of the connected regions of a defect mask (uint8 > 127, or bool)."""
    binary = (mask > 127) if mask.dtype == np.uint8 else mask.astype(bool)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    return [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h, _ in stats[1:count]]


@dataclass
class BoxSample:
    """One calibration part as the station would box it."""

    fused: npt.NDArray[np.float32]
    valid: npt.NDArray[np.bool_]
    ng: bool  # the verdict at the SKU's threshold
    truth: list[BoxXYXY]  # ground-truth boxes in SKU-image pixels (none for a golden part)
    defective: bool


def score_boxes(
    samples: Sequence[BoxSample],
    seed: float,
    image_size: tuple[int, int],
    min_area_px: float,
    scale: float,
    padding_px: float,
) -> tuple[float, float]:
    """(box F1 over every sample, mean BBox-Mask IoU over the defective ones) of the station's boxes."""
    counts = BoxCounts()
    ious = []
    for s in samples:
        boxes = defect_boxes(s.fused, s.valid, s.ng, seed, min_area_px, scale, padding_px)
        pred = [((float(b.x), float(b.y), float(b.x + b.w), float(b.y + b.h)), b.score) for b in boxes]
        counts.add(match_boxes(pred, s.truth))
        if s.defective and s.truth:
            ious.append(bbox_mask_iou([p for p, _ in pred], s.truth, image_size))
    return counts.f1 or 0.0, float(np.mean(ious)) if ious else 0.0
