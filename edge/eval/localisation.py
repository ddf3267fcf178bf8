"""How well the anomaly map itself points at defects: what limits the boxes, the map or the box rule.

Two diagnostics per defective image, from the station's own fused map (``InspectionResult.anomaly_map``):

* **pointing**: the map's maximum lies inside a ground-truth box. A map that points at the wrong place
  cannot be boxed right by any rule.
* **oracle BBox-Mask IoU**: the best BBox-Mask IoU of the station's own boxes and of the boxes its box
  extraction draws with the seed level at fixed fractions of the image's map peak
  (:data:`ORACLE_FRACTIONS`; the SKU's padding and smallest area). The ground truth picks the level per
  image, so it is what a perfect per-image choice of the box level could reach on these maps, not a figure
  the station can reach.

When the oracle stays far below a box target, the maps are what has to change, not the box levels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.inspection.box_scoring import BoxXYXY, bbox_mask_iou
from edge.inspection.postprocess import BOX_RATIO, extract_boxes
from edge.inspection.types import InspectionResult

#: Box seed levels the oracle tries, as fractions of the image's map peak.
ORACLE_FRACTIONS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _valid(result: InspectionResult, region: tuple[float, float, float, float]) -> np.ndarray:
    """Map pixels inside ``region`` (frame pixels)."""
    h, w = result.anomaly_map.shape
    scale = 1.0 / result.map_scale
    valid = np.zeros((h, w), bool)
    x1, y1 = int(np.ceil(region[0] * scale)), int(np.ceil(region[1] * scale))
    valid[y1 : int(region[3] * scale), x1 : int(region[2] * scale)] = True
    return valid


def points_at_defect(
    result: InspectionResult, gt: Sequence[BoxXYXY], region: tuple[float, float, float, float]
) -> bool:
    """Whether the map's maximum inside ``region`` falls in one of the ground-truth boxes (frame pixels)."""
    valid = _valid(result, region)
    if not valid.any() or not gt:
        return False
    masked = np.where(valid, result.anomaly_map, -np.inf)
    y, x = np.unravel_index(int(np.argmax(masked)), masked.shape)
    fx, fy = (x + 0.5) * result.map_scale, (y + 0.5) * result.map_scale
    return any(b[0] <= fx <= b[2] and b[1] <= fy <= b[3] for b in gt)


def oracle_box_iou(
    result: InspectionResult,
    gt: Sequence[BoxXYXY],
    region: tuple[float, float, float, float],
    size: tuple[int, int],
    station_iou: float = 0.0,
    min_area_px: float = 0.0,
    padding_px: float = 0.0,
) -> float:
    """Best BBox-Mask IoU: the station's own (``station_iou``) or at a seed level of :data:`ORACLE_FRACTIONS`.

    Args:
        result: the inspection of the image.
        gt: ground-truth boxes (frame pixels).
        region: the scored region (frame pixels).
        size: the frame's (height, width).
        station_iou: BBox-Mask IoU of the boxes the station drew.
        min_area_px: the SKU's smallest defect area (frame pixels).
        padding_px: the SKU's box padding (frame pixels).

    """
    valid = _valid(result, region)
    if not valid.any() or not gt:
        return station_iou
    fused = result.anomaly_map
    peak = float(fused[valid].max())
    if peak <= 0:
        return station_iou
    best = station_iou
    for fraction in ORACLE_FRACTIONS:
        boxes = extract_boxes(
            fused, valid, fraction * peak, BOX_RATIO, min_area_px, 1.0 / result.map_scale, padding_px
        )
        pred = [(float(b.x), float(b.y), float(b.x + b.w), float(b.y + b.h)) for b in boxes]
        best = max(best, bbox_mask_iou(pred, gt, size))
    return best
