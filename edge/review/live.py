"""What the status page shows about the running station: a snapshot type and the last-parts listener."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.capture.part import Part
from edge.inspection.types import InspectionResult
from edge.mqtt.payloads import VerdictPayload


@dataclass(frozen=True)
class RecentPart:
    """One of the last parts, whatever its verdict."""

    part_id: str
    seq: int
    sku: str | None
    verdict: str
    score: float | None
    threshold: float | None
    at: float
    reason: str | None = None


class RecentParts:
    """A verdict listener keeping the last ``size`` parts (all verdicts, not only archived ones)."""

    def __init__(self, size: int = 15) -> None:
        self._parts: collections.deque[RecentPart] = collections.deque(maxlen=size)
        self._lock = threading.Lock()

    def __call__(self, part: Part, verdict: VerdictPayload, result: InspectionResult | None) -> None:
        """Record one published verdict."""
        entry = RecentPart(
            verdict.part_id,
            verdict.seq,
            verdict.sku,
            verdict.verdict.value,
            verdict.score,
            verdict.threshold,
            verdict.published_at,
            verdict.reason,
        )
        with self._lock:
            self._parts.appendleft(entry)

    def latest(self) -> list[RecentPart]:
        """Newest first."""
        with self._lock:
            return list(self._parts)


@dataclass(frozen=True)
class StationSnapshot:
    """The station as the status page shows it.

    Attributes:
        status: ``online``, ``paused``, ``fault``, ``safe_mode``, ``offline`` or ``unknown``.
        metrics: The station's ``metrics`` payload (``edge.mqtt.payloads.MetricsPayload.to_dict``).
        config: The config in force, as shown (``"st1 v3 · 0123456789ab"``).
        config_ref: The config in force as on MQTT ``state``: ``id``, ``version``, ``hash``.
        thresholds: SKU -> threshold in force (calibrated or fixed), when known.

    """

    status: str = "unknown"
    reason: str | None = None
    sku: str | None = None
    since: str | None = None
    config: str | None = None
    config_ref: Mapping[str, Any] = field(default_factory=dict)
    backend: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    recent: list[RecentPart] = field(default_factory=list)
    thresholds: Mapping[str, float] = field(default_factory=dict)

    @property
    def throughput_pps(self) -> float:
        """Parts per second over the metrics window."""
        return float(self.metrics.get("throughput_pps", 0.0))

    @property
    def ng_rate(self) -> float:
        """NG / inspected parts since start."""
        return float(self.metrics.get("ng_rate", 0.0))


StatusSource = Callable[[], StationSnapshot]
"""Called on every status page view."""
