"""Image scoring on hand-made cases."""

from __future__ import annotations

import pytest

from edge.eval.metrics import auroc, percentiles


def test_auroc() -> None:
    assert auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert auroc([0.5], [True]) is None


def test_percentiles() -> None:
    assert percentiles([]) is None
    p = percentiles(list(range(1, 101)))
    assert p is not None and p["p50"] == pytest.approx(50.5)
