"""Box scoring on hand-made cases (the measure both the evaluation and the self-configuration use)."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.anomaly_maps import plateau

from edge.inspection.box_scoring import (
    BoxCounts,
    BoxSample,
    bbox_mask_iou,
    box_iou,
    mask_boxes,
    match_boxes,
    score_boxes,
)


def test_box_iou() -> None:
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (10, 10, 20, 20)) == 0.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_match_is_one_to_one_and_greedy_by_score() -> None:
    gt = [(0, 0, 10, 10)]
    pred = [((0, 0, 10, 10), 0.5), ((1, 1, 10, 10), 0.9)]
    assert match_boxes(pred, gt) == (1, 1, 0)


def test_match_needs_iou_strictly_above_threshold() -> None:
    # DeepPCB convention: IoU > 0.33 matches, IoU == 0.33 does not.
    assert match_boxes([((0, 0, 10, 10), 1.0)], [(0, 0, 10, 30)]) == (1, 0, 0)  # IoU 1/3
    assert match_boxes([((0, 0, 33, 1), 1.0)], [(0, 0, 100, 1)]) == (0, 1, 1)  # IoU 0.33


def test_box_counts() -> None:
    c = BoxCounts()
    c.add((3, 1, 1))
    assert c.precision == 0.75 and c.recall == 0.75 and c.f1 == pytest.approx(0.75)
    assert BoxCounts().f1 is None


def test_bbox_mask_iou_rasterises_all_boxes() -> None:
    size = (20, 20)
    assert bbox_mask_iou([(0, 0, 10, 10)], [(0, 0, 10, 10)], size) == 1.0
    # Two predicted boxes covering one gt box: union of masks, not per-box.
    assert bbox_mask_iou([(0, 0, 5, 10), (5, 0, 10, 10)], [(0, 0, 10, 10)], size) == 1.0
    assert bbox_mask_iou([(0, 0, 10, 10)], [(0, 0, 10, 20)], size) == pytest.approx(0.5)
    assert bbox_mask_iou([], [(0, 0, 10, 10)], size) == 0.0


def test_mask_boxes_bound_each_connected_region() -> None:
    mask = np.zeros((20, 30), np.uint8)
    mask[2:5, 3:9] = 255
    mask[10:18, 20:22] = 255
    assert sorted(mask_boxes(mask)) == [(3.0, 2.0, 9.0, 5.0), (20.0, 10.0, 22.0, 18.0)]
    assert mask_boxes(mask > 0) == mask_boxes(mask)


def test_box_quality_counts_boxes_on_golden_parts_against() -> None:
    fused, truth = plateau(peak=1.0)  # a flat defect: the box covers it
    valid = np.ones_like(fused, bool)
    quiet = np.full_like(fused, 0.2)
    quiet[5:9, 5:9] = 2.0  # a golden part judged NG: its box is a false positive
    defect = BoxSample(fused, valid, True, [truth], True)

    def score(samples: list[BoxSample]) -> tuple[float, float]:
        return score_boxes(samples, 0.8, (80, 80), 4, 1.0, 0.0)

    assert score([defect]) == (1.0, 1.0)
    assert score([defect, BoxSample(quiet, valid, True, [], False)]) == (2 / 3, 1.0)
    assert score([BoxSample(fused, valid, False, [truth], True)]) == (0.0, 0.0)  # OK: no box drawn
