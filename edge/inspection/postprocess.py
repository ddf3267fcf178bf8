"""Anomaly maps -> fused normalised map -> image score and defect boxes."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from edge.inspection.types import Box

FloatMap = npt.NDArray[np.float32]
FUSIONS = ("max", "mean", "geo")


def fuse(feature: FloatMap, pixel: FloatMap, feature_scale: float, pixel_scale: float, mode: str) -> FloatMap:
    """Combine the two normalised maps (1.0 = a high but normal value on golden parts).

    ``max``: a defect seen by either comparison counts; ``mean``: both must agree somewhat; ``geo``:
    geometric mean, each map gates the other.
    """
    zf = feature / max(feature_scale, 1e-6)
    zp = pixel / max(pixel_scale, 1e-6)
    if mode == "max":
        out = np.maximum(zf, zp)
    elif mode == "mean":
        out = 0.5 * (zf + zp)
    elif mode == "geo":
        out = np.sqrt(np.maximum(zf, 0) * np.maximum(zp, 0))
    else:
        raise ValueError(f"unknown fusion '{mode}' (expected one of {FUSIONS})")
    return out.astype(np.float32)


def image_score(fused: FloatMap, valid: npt.NDArray[np.bool_]) -> float:
    """Max of the map over valid pixels (0 when nothing is valid)."""
    return float(fused[valid].max()) if valid.any() else 0.0


def extract_boxes(fused: FloatMap, valid: npt.NDArray[np.bool_], threshold: float, box_ratio: float,
                  min_area_px: float, scale: float, padding_px: float = 0.0) -> list[Box]:
    """Defect boxes by hysteresis: regions above ``box_ratio * threshold`` that reach ``threshold``.

    Args:
        fused: normalised map at the fine resolution.
        valid: pixels that could be compared.
        threshold: the SKU's image threshold.
        box_ratio: low/high hysteresis ratio; the low level sets how far a box extends around its core.
        min_area_px: smallest defect area, in original-image pixels.
        scale: fine-map pixels per original pixel.
        padding_px: margin added around each box (original pixels), clipped to the image.

    Returns:
        Boxes in original-image pixels, highest score first.
    """
    high = (fused > threshold) & valid
    if not high.any():
        return []
    low = ((fused > threshold * box_ratio) & valid).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(low, connectivity=8)
    seeds = np.unique(labels[high])
    boxes = []
    inv = 1.0 / scale
    for label in seeds:
        if label == 0:
            continue
        x, y, w, h, area = (int(v) for v in stats[label])
        area_orig = area * inv * inv
        if area_orig < min_area_px:
            continue
        crop = labels[y : y + h, x : x + w] == label
        score = float(fused[y : y + h, x : x + w][crop].max())
        full_h, full_w = fused.shape[0] * inv, fused.shape[1] * inv
        x1, y1 = max(0.0, x * inv - padding_px), max(0.0, y * inv - padding_px)
        x2, y2 = min(full_w, (x + w) * inv + padding_px), min(full_h, (y + h) * inv + padding_px)
        boxes.append(
            Box(
                x=round(x1), y=round(y1), w=max(1, round(x2 - x1)), h=max(1, round(y2 - y1)),
                score=score, area_px=round(area_orig),
            )
        )
    boxes = merge_overlapping(boxes)
    boxes.sort(key=lambda b: -b.score)
    return boxes


def merge_overlapping(boxes: list[Box]) -> list[Box]:
    """Merge boxes that overlap (after padding): fragments of one defect become one box."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        out: list[Box] = []
        for box in merged:
            for i, other in enumerate(out):
                if (box.x < other.x + other.w and other.x < box.x + box.w
                        and box.y < other.y + other.h and other.y < box.y + box.h):
                    x1, y1 = min(box.x, other.x), min(box.y, other.y)
                    x2 = max(box.x + box.w, other.x + other.w)
                    y2 = max(box.y + box.h, other.y + other.h)
                    out[i] = Box(x=x1, y=y1, w=x2 - x1, h=y2 - y1, score=max(box.score, other.score),
                                 area_px=box.area_px + other.area_px)
                    changed = True
                    break
            else:
                out.append(box)
        merged = out
    return merged
