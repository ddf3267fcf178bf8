"""How well the anomaly map itself points at defects: what limits the boxes, the map or the box rule.

Two diagnostics per defective image, from the station's own fused map (``InspectionResult.anomaly_map``):

* **pointing**: the map's maximum lies inside a ground-truth box. A map that points at the wrong place
  cannot be boxed right by any rule.
* **oracle BBox-Mask IoU**: the best BBox-Mask IoU over box seed levels at fixed fractions of the image's
  own map peak (:data:`ORACLE_FRACTIONS`), with the station's box extraction. It uses the ground truth to
  pick the level per image, so it is an upper bound for any single box threshold on these maps, not a
  figure the station can reach.

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
    min_area_px: float = 0.0,
) -> float:
    """Best BBox-Mask IoU over the seed levels of :data:`ORACLE_FRACTIONS` (ground truth picks the level)."""
    valid = _valid(result, region)
    if not valid.any() or not gt:
        return 0.0
    fused = result.anomaly_map
    peak = float(fused[valid].max())
    if peak <= 0:
        return 0.0
    best = 0.0
    for fraction in ORACLE_FRACTIONS:
        boxes = extract_boxes(fused, valid, fraction * peak, BOX_RATIO, min_area_px, 1.0 / result.map_scale)
        pred = [(float(b.x), float(b.y), float(b.x + b.w), float(b.y + b.h)) for b in boxes]
        best = max(best, bbox_mask_iou(pred, gt, size))
    return best
