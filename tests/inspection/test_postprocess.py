"""Defect boxes explain NG verdicts only, and an NG part always gets one."""

from __future__ import annotations

import numpy as np
from fixtures.anomaly_maps import plateau

from edge.inspection.postprocess import defect_boxes


def test_an_ok_part_gets_no_box_and_an_ng_part_always_gets_one() -> None:
    fused, _ = plateau()
    valid = np.ones_like(fused, bool)
    assert defect_boxes(fused, valid, False, 1.5, 4, 1.0, 0.0) == []
    assert defect_boxes(fused, valid, True, 1.5, 4, 1.0, 0.0)
    # NG by an aggregate although the map never reaches the seed: boxed at its strongest evidence.
    weak = np.full((40, 40), 0.1, np.float32)
    weak[10:14, 20:24] = 0.8
    boxes = defect_boxes(weak, np.ones_like(weak, bool), True, 5.0, 4, 1.0, 0.0)
    assert [(b.x, b.y, b.w, b.h) for b in boxes] == [(20, 10, 4, 4)]
