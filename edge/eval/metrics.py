"""Scoring: image AUROC, precision-recall, latency percentiles; box scoring is shared with the core.

Box matching and BBox-Mask IoU live in :mod:`edge.inspection.box_scoring`: the self-configuration chooses
each SKU's box settings by the same measure the evaluation reports.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve (ties count half); None unless both classes are present."""
    s = np.asarray(scores, float)
    y = np.asarray(labels, bool)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        return None
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def pr_curve(scores: Sequence[float], labels: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at every distinct score threshold (for the report's PR plot)."""
    s = np.asarray(scores, float)
    y = np.asarray(labels, bool)
    order = np.argsort(-s)
    tp = np.cumsum(y[order])
    fp = np.cumsum(~y[order])
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / max(int(y.sum()), 1)
    return precision, recall


def percentiles(values: Sequence[float]) -> dict[str, float] | None:
    """p50 and p99 (ms), None for no values."""
    if not len(values):
        return None
    v = np.asarray(values, float)
    return {"p50": round(float(np.percentile(v, 50)), 2), "p99": round(float(np.percentile(v, 99)), 2)}
