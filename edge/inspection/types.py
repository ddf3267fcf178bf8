"""Value types shared by the inspection core and its users (runtime, eval, review)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import numpy.typing as npt

#: Reports the progress of a long step (enrollment, self-configuration): ``(step, done, total)``. Each step
#: is reported from ``0`` to ``total``; steps follow one another.
Progress = Callable[[str, int, int], None]


class Verdict(str, Enum):
    """Per-part verdict; the integer code is what a PLC reads on the ``result`` topic.

    A ``str`` enum that formats as its value (``f"{Verdict.OK}"`` is ``OK``), as ``enum.StrEnum`` does;
    spelled out because StrEnum is Python 3.11+ and JetPack 6 stations run 3.10.
    """

    OK = "OK"
    NG = "NG"
    NOT_INSPECTED = "NOT_INSPECTED"
    ERROR = "ERROR"

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @property
    def code(self) -> int:
        """PLC result code: 0 OK, 1 NG, 2 not inspected, 3 error."""
        return {"OK": 0, "NG": 1, "NOT_INSPECTED": 2, "ERROR": 3}[self.value]


@dataclass(frozen=True)
class Box:
    """A defect box in frame pixel coordinates."""

    x: int
    y: int
    w: int
    h: int
    score: float
    area_px: int

    def as_list(self) -> list[float]:
        """``[x, y, w, h, score, area]`` as published on MQTT."""
        return [self.x, self.y, self.w, self.h, round(self.score, 4), self.area_px]


@dataclass(frozen=True)
class Registration:
    """Where a template sits relative to the frame.

    ``matrix`` maps frame coordinates to template coordinates (2x3, registration-image pixels), i.e. the
    sampling map used to warp the template onto the frame.
    """

    matrix: npt.NDArray[np.float64]
    quality: float  # correlation of frame and warped template in [-1, 1]
    method: str  # "ecc", "phase", "identity"

    @property
    def shift_px(self) -> float:
        """Magnitude of the translation part (registration-image pixels)."""
        return float(np.hypot(self.matrix[0, 2], self.matrix[1, 2]))

    @property
    def angle_deg(self) -> float:
        """Rotation angle in degrees."""
        return float(np.degrees(np.arctan2(self.matrix[1, 0], self.matrix[0, 0])))


@dataclass
class InspectionResult:
    """Everything the station knows about one inspected frame."""

    verdict: Verdict
    score: float  # image score: max of the normalised anomaly map (1.0 = threshold scale)
    threshold: float
    boxes: list[Box]
    sku: str
    template_ids: list[str]
    retrieval_scores: list[float]
    registrations: list[Registration]
    anomaly_map: npt.NDArray[np.float32]  # fused, normalised, at the frame's inspection resolution
    map_scale: float  # frame pixels per anomaly-map pixel
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def template_id(self) -> str:
        """The best-matching golden template."""
        return self.template_ids[0] if self.template_ids else ""
