"""Boxes explain NG verdicts only; their quality on known defects counts every box."""

from __future__ import annotations

import numpy as np

from edge.inspection.box_config import BoxSample, BoxSettings, defect_boxes, score_boxes


def _plateau(peak: float = 3.0) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A broad weak defect (level 1.0 over 20x20) with a small strong core, on a quiet background."""
    fused = np.full((80, 80), 0.2, np.float32)
    fused[20:40, 30:50] = 1.0
    fused[28:32, 38:42] = peak
    return fused, (30.0, 20.0, 50.0, 40.0)


def test_an_ok_part_gets_no_box_and_an_ng_part_always_gets_one() -> None:
    fused, _ = _plateau()
    valid = np.ones_like(fused, bool)
    settings = BoxSettings(seed=1.5)
    assert defect_boxes(fused, valid, False, settings, 4, 1.0, 0.0) == []
    assert defect_boxes(fused, valid, True, settings, 4, 1.0, 0.0)
    # NG by an aggregate although the map never reaches the seed: boxed at its strongest evidence.
    weak = np.full((40, 40), 0.1, np.float32)
    weak[10:14, 20:24] = 0.8
    boxes = defect_boxes(weak, np.ones_like(weak, bool), True, BoxSettings(seed=5.0), 4, 1.0, 0.0)
    assert [(b.x, b.y, b.w, b.h) for b in boxes] == [(20, 10, 4, 4)]


def test_box_quality_counts_boxes_on_golden_parts_against() -> None:
    fused, truth = _plateau(peak=1.0)  # a flat defect: the box covers it
    valid = np.ones_like(fused, bool)
    quiet = np.full_like(fused, 0.2)
    quiet[5:9, 5:9] = 2.0  # a golden part judged NG: its box is a false positive
    defect = BoxSample(fused, valid, True, [truth], True)

    def score(samples: list[BoxSample]) -> tuple[float, float]:
        quality = score_boxes(samples, BoxSettings(0.8), (80, 80), 4, 1.0, 0.0)
        return quality.f1, quality.miou

    assert score([defect]) == (1.0, 1.0)
    assert score([defect, BoxSample(quiet, valid, True, [], False)]) == (2 / 3, 1.0)
    assert score([BoxSample(fused, valid, False, [truth], True)]) == (0.0, 0.0)  # OK: no box drawn
