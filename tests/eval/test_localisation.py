"""Localisation diagnostics of ``edge eval``: pointing and the oracle box IoU read the map as it is."""

from __future__ import annotations

import numpy as np

from edge.eval.localisation import oracle_box_iou, points_at_defect
from edge.inspection.types import InspectionResult, Verdict


def _result(anomaly: np.ndarray, map_scale: float) -> InspectionResult:
    return InspectionResult(Verdict.NG, 2.0, 1.0, [], "s", [], [], [], anomaly.astype(np.float32), map_scale)


def _blob(shape: tuple[int, int], box: tuple[int, int, int, int], level: float) -> np.ndarray:
    out = np.full(shape, 0.2, np.float32)
    x1, y1, x2, y2 = box
    out[y1:y2, x1:x2] = level
    return out


def test_a_map_peaking_on_the_defect_points_at_it_and_boxes_it_exactly() -> None:
    # A 100x100 map of a 200x200 frame (2 frame pixels a map pixel); the defect: frame box (40, 60)-(80, 100).
    result = _result(_blob((100, 100), (20, 30, 40, 50), 3.0), map_scale=2.0)
    whole = (0.0, 0.0, 200.0, 200.0)
    gt = [(40.0, 60.0, 80.0, 100.0)]
    assert points_at_defect(result, gt, whole)
    assert oracle_box_iou(result, gt, whole, (200, 200)) > 0.9


def test_a_map_peaking_elsewhere_does_not_point_and_its_oracle_is_low() -> None:
    anomaly = _blob((100, 100), (70, 70, 90, 90), 3.0)  # strongest response away from the defect
    anomaly[30:50, 20:40] = 1.0  # a faint response on it
    result = _result(anomaly, map_scale=2.0)
    whole = (0.0, 0.0, 200.0, 200.0)
    gt = [(40.0, 60.0, 80.0, 100.0)]
    assert not points_at_defect(result, gt, whole)
    # The best seed level still finds both regions (the faint one is above 0.3 x peak): IoU well below 1.
    assert oracle_box_iou(result, gt, whole, (200, 200)) < 0.6


def test_only_the_scored_region_counts() -> None:
    anomaly = _blob((100, 100), (0, 0, 10, 10), 5.0)  # a border artefact outside the region
    anomaly[30:50, 20:40] = 3.0
    result = _result(anomaly, map_scale=2.0)
    gt = [(40.0, 60.0, 80.0, 100.0)]
    assert points_at_defect(result, gt, (24.0, 24.0, 176.0, 176.0))
    assert not points_at_defect(result, gt, (0.0, 0.0, 200.0, 200.0))


def test_the_oracle_is_never_below_what_the_station_drew() -> None:
    anomaly = _blob((100, 100), (70, 70, 90, 90), 3.0)
    result = _result(anomaly, map_scale=2.0)
    gt = [(40.0, 60.0, 80.0, 100.0)]
    whole = (0.0, 0.0, 200.0, 200.0)
    assert oracle_box_iou(result, gt, whole, (200, 200), station_iou=0.7) >= 0.7
