"""What the evaluation records per category: plain data the runner fills and the report draws."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.inspection.box_scoring import BoxCounts, BoxXYXY
from edge.inspection.types import InspectionResult


@dataclass
class Example:
    """What the report shows for one inspected image."""

    name: str
    image: npt.NDArray[np.uint8]
    template: npt.NDArray[np.uint8]
    result: InspectionResult
    gt: list[BoxXYXY]
    defective: bool


@dataclass
class CategoryOutcome:
    """Per-image outcomes of one category, for metrics and the report."""

    scores: list[float] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)
    mask_ious: list[float] = field(default_factory=list)
    pointing: list[bool] = field(default_factory=list)  # the map's maximum inside a ground-truth box
    oracle_ious: list[float] = field(default_factory=list)  # best BBox-Mask IoU over seed levels
    part_scores: list[float] = field(default_factory=list)  # the whole-part score alone, every image
    retrieval_hits: list[bool] = field(default_factory=list)
    false_ng: list[bool] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    boxes: BoxCounts = field(default_factory=BoxCounts)
    examples: list[Example] = field(default_factory=list)
    threshold: float = 0.0
