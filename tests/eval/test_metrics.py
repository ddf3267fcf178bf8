"""Scoring on hand-made cases."""

from __future__ import annotations

import pytest

from edge.eval.metrics import BoxCounts, auroc, bbox_mask_iou, box_iou, match_boxes, percentiles


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


def test_auroc() -> None:
    assert auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert auroc([0.5], [True]) is None


def test_percentiles() -> None:
    assert percentiles([]) is None
    p = percentiles(list(range(1, 101)))
    assert p is not None and p["p50"] == pytest.approx(50.5)
