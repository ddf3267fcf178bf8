"""Anomaly maps -> fused normalised map -> image score and defect boxes."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from edge.inspection.types import Box

FloatMap = npt.NDArray[np.float32]
FUSIONS = ("max", "mean", "geo")


def fuse(maps: Sequence[FloatMap], mode: str) -> FloatMap:
    """Combine normalised maps (each 1.0 = a high but normal value on golden parts).

    ``max``: a defect seen by any comparison counts; ``mean``: they must agree somewhat; ``geo``: geometric
    mean, each map gates the others.
    """
    if mode not in FUSIONS:
        raise ValueError(f"unknown fusion '{mode}' (expected one of {FUSIONS})")
    if not maps:
        raise ValueError("nothing to fuse")
    out = np.asarray(maps[0], np.float32)
    if len(maps) == 1:
        return out
    if mode == "max":
        for m in maps[1:]:
            out = np.maximum(out, m)
    elif mode == "mean":
        out = np.mean(np.stack(maps), axis=0)
    else:
        out = np.exp(np.mean(np.log(np.maximum(np.stack(maps), 1e-6)), axis=0))
    return np.asarray(out, dtype=np.float32)


def _regions(
    fused: FloatMap, valid: npt.NDArray[np.bool_], threshold: float, low_level: float, peak_ratio: float
) -> list[tuple[int, int, int, int, int, float]]:
    """Hysteresis regions ``(x, y, w, h, area, peak)`` in map pixels.

    A region grows from pixels above ``threshold`` down to ``low_level``; when its peak is far above the
    threshold it is cut again at ``peak_ratio * peak``, so a strong defect gets a box around itself rather
    than around every weak difference it happens to touch (lighting drift, a broad feature-level response).
    """
    low = ((fused > low_level) & valid).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(low, connectivity=8)
    high = (fused > threshold) & valid
    out = []
    for label in np.unique(labels[high]):
        if label == 0:
            continue
        x, y, w, h, area = (int(v) for v in stats[label])
        window = fused[y : y + h, x : x + w]
        inside = labels[y : y + h, x : x + w] == label
        peak = float(window[inside].max())
        cut = peak_ratio * peak
        if cut <= low_level:
            out.append((x, y, w, h, area, peak))
            continue
        sub = ((window > cut) & inside).astype(np.uint8)
        n, sub_labels, sub_stats, _ = cv2.connectedComponentsWithStats(sub, connectivity=8)
        for j in range(1, n):
            sx, sy, sw, sh, sarea = (int(v) for v in sub_stats[j])
            sub_peak = float(
                window[sy : sy + sh, sx : sx + sw][sub_labels[sy : sy + sh, sx : sx + sw] == j].max()
            )
            if sub_peak > threshold:
                out.append((x + sx, y + sy, sw, sh, sarea, sub_peak))
    return out


def extract_boxes(
    fused: FloatMap,
    valid: npt.NDArray[np.bool_],
    threshold: float,
    box_ratio: float,
    min_area_px: float,
    scale: float,
    padding_px: float = 0.0,
    peak_ratio: float = 0.35,
) -> list[Box]:
    """Defect boxes by hysteresis: regions above ``box_ratio * threshold`` that reach ``threshold``.

    Args:
        fused: normalised map at the fine resolution.
        valid: pixels that could be compared.
        threshold: the SKU's image threshold.
        box_ratio: low/high hysteresis ratio; the low level sets how far a box extends around its core.
        min_area_px: smallest defect area, in original-image pixels.
        scale: fine-map pixels per original pixel.
        padding_px: margin added around each box (original pixels), clipped to the image.
        peak_ratio: a region is confined to where the map exceeds this fraction of its own peak.

    Returns:
        Boxes in original-image pixels, highest score first.

    """
    if not ((fused > threshold) & valid).any():
        return []
    inv = 1.0 / scale
    full_h, full_w = fused.shape[0] * inv, fused.shape[1] * inv
    boxes = []
    # A box outlines what stands out from the rest of this part: never grow it through the level that most
    # of the frame reaches (a broad lighting or background change would otherwise box the whole image).
    low = max(threshold * box_ratio, float(np.percentile(fused[valid], 90)))
    for x, y, w, h, area, peak in _regions(fused, valid, threshold, low, peak_ratio):
        area_orig = area * inv * inv
        if area_orig < min_area_px:
            continue
        x1, y1 = max(0.0, x * inv - padding_px), max(0.0, y * inv - padding_px)
        x2, y2 = min(full_w, (x + w) * inv + padding_px), min(full_h, (y + h) * inv + padding_px)
        boxes.append(
            Box(
                x=round(x1),
                y=round(y1),
                w=max(1, round(x2 - x1)),
                h=max(1, round(y2 - y1)),
                score=peak,
                area_px=round(area_orig),
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
                if (
                    box.x < other.x + other.w
                    and other.x < box.x + box.w
                    and box.y < other.y + other.h
                    and other.y < box.y + box.h
                ):
                    x1, y1 = min(box.x, other.x), min(box.y, other.y)
                    x2 = max(box.x + box.w, other.x + other.w)
                    y2 = max(box.y + box.h, other.y + other.h)
                    out[i] = Box(
                        x=x1,
                        y=y1,
                        w=x2 - x1,
                        h=y2 - y1,
                        score=max(box.score, other.score),
                        area_px=box.area_px + other.area_px,
                    )
                    changed = True
                    break
            else:
                out.append(box)
        merged = out
    return merged


#: Low/high hysteresis ratio of a defect box (the box grows down to this share of the seed level).
BOX_RATIO = 0.5
#: Where an NG part's map never reaches the box seed level, the box is seeded at this share of its peak.
FALLBACK_PEAK = 0.9


def defect_boxes(
    fused: FloatMap,
    valid: npt.NDArray[np.bool_],
    ng: bool,
    seed: float,
    min_area_px: float,
    scale: float,
    padding_px: float,
) -> list[Box]:
    """The boxes of one inspected part: none on an OK part (a box explains an NG verdict).

    Regions of the fused map that reach ``seed`` (see :func:`extract_boxes`). An NG part whose map never
    reaches it (NG by the tail mean or the whole-part score) is boxed where its map points, so the operator
    sees the strongest evidence.
    """
    if not ng:
        return []
    boxes = extract_boxes(fused, valid, seed, BOX_RATIO, min_area_px, scale, padding_px)
    if not boxes and valid.any():
        peak = FALLBACK_PEAK * float(fused[valid].max())
        boxes = extract_boxes(fused, valid, peak, BOX_RATIO, min_area_px, scale, padding_px)
    return boxes
