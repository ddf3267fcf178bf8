"""Typed builders of the station's outgoing MQTT payloads (contract version :data:`SCHEMA_VERSION`).

Each dataclass mirrors one JSON Schema in ``edge/mqtt/schemas/`` and turns into the published dict with
``to_dict()``. Invariants the schema states (a reason for NOT_INSPECTED/ERROR, finite scores) are checked at
construction, so a bad payload fails where it is built rather than on the wire.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final, Literal

from edge.inspection.types import Box, InspectionResult, Verdict

#: Version of the MQTT contract, published in every ``state`` message.
SCHEMA_VERSION: Final = 1

Status = Literal["online", "offline", "paused", "fault", "safe_mode"]
Disposition = Literal["confirm_defect", "false_alarm"]
JsonDict = dict[str, Any]


def iso_utc(epoch_s: float | None = None) -> str:
    """``epoch_s`` (default: now) as ISO 8601 UTC with millisecond precision and a ``Z`` suffix."""
    moment = datetime.fromtimestamp(time.time() if epoch_s is None else epoch_s, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(payload: Mapping[str, Any]) -> bytes:
    """Serialise a payload as compact UTF-8 JSON (NaN/Infinity are refused: they are not JSON)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _finite(name: str, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


@dataclass(frozen=True)
class ConfigRef:
    """Which station config is in force."""

    id: str
    version: int | str
    hash: str

    def to_dict(self) -> JsonDict:
        """Return the ``config`` object of a ``state`` payload."""
        return {"id": self.id, "version": self.version, "hash": self.hash}


@dataclass(frozen=True)
class StatePayload:
    """Retained station status on ``<root>/state``."""

    status: Status
    since: float
    config: ConfigRef | None = None
    sku: str | None = None
    backend: str | None = None
    reason: str | None = None
    inference: Mapping[str, object] | None = None  # backend, precision, fallback_reasons

    def to_dict(self) -> JsonDict:
        """Return the published dict."""
        return {
            "schema": SCHEMA_VERSION,
            "status": self.status,
            "reason": self.reason,
            "config": None if self.config is None else self.config.to_dict(),
            "sku": self.sku,
            "backend": self.backend,
            "inference": None if self.inference is None else dict(self.inference),
            "since": iso_utc(self.since),
        }


@dataclass(frozen=True)
class ResultPayload:
    """Fixed-shape PLC result on ``<root>/result``: part id and integer code (0 OK, 1 NG, 2, 3)."""

    part_id: str
    seq: int
    code: int

    def to_dict(self) -> JsonDict:
        """Return the published dict."""
        return {"part_id": self.part_id, "seq": self.seq, "code": self.code}


@dataclass(frozen=True)
class VerdictPayload:
    """Full verdict of one part on ``<root>/verdict``.

    Attributes:
        part_id: Unique part id; subscribers drop QoS 1 duplicates by it.
        seq: Station sequence number, increasing in publish order.
        frame_ts: Capture time (epoch seconds), ``None`` when there was no frame.
        published_at: When the verdict was emitted (epoch seconds); replays keep it.
        reason: Required for NOT_INSPECTED and ERROR.

    """

    part_id: str
    seq: int
    sku: str | None
    verdict: Verdict
    score: float | None = None
    threshold: float | None = None
    boxes: Sequence[Box] = ()
    template_id: str | None = None
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    model_id: str | None = None
    backend: str | None = None
    frame_ts: float | None = None
    published_at: float = field(default_factory=time.time)
    reason: str | None = None

    def __post_init__(self) -> None:
        if not self.part_id:
            raise ValueError("verdict needs a non-empty part_id")
        if self.verdict in (Verdict.NOT_INSPECTED, Verdict.ERROR) and not self.reason:
            raise ValueError(f"a {self.verdict.value} verdict needs a reason (part {self.part_id})")
        if self.verdict in (Verdict.OK, Verdict.NG) and (self.score is None or self.threshold is None):
            raise ValueError(
                f"a {self.verdict.value} verdict needs a score and a threshold (part {self.part_id})"
            )
        _finite("score", self.score)
        _finite("threshold", self.threshold)
        for stage, ms in self.latency_ms.items():
            _finite(f"latency_ms[{stage}]", ms)

    @classmethod
    def from_inspection(
        cls,
        result: InspectionResult,
        *,
        part_id: str,
        seq: int,
        model_id: str | None,
        backend: str | None,
        frame_ts: float | None,
        latency_ms: Mapping[str, float] | None = None,
    ) -> VerdictPayload:
        """Build the verdict of an inspected part; ``latency_ms`` defaults to the result's own."""
        return cls(
            part_id=part_id,
            seq=seq,
            sku=result.sku,
            verdict=result.verdict,
            score=float(result.score),
            threshold=float(result.threshold),
            boxes=tuple(result.boxes),
            template_id=result.template_id or None,
            latency_ms=dict(result.latency_ms if latency_ms is None else latency_ms),
            model_id=model_id,
            backend=backend,
            frame_ts=frame_ts,
        )

    @classmethod
    def uninspected(
        cls,
        *,
        part_id: str,
        seq: int,
        reason: str,
        sku: str | None = None,
        error: bool = False,
        frame_ts: float | None = None,
        model_id: str | None = None,
        backend: str | None = None,
        latency_ms: Mapping[str, float] | None = None,
    ) -> VerdictPayload:
        """Build a NOT_INSPECTED (or, with ``error=True``, ERROR) verdict: never drop a part silently."""
        return cls(
            part_id=part_id,
            seq=seq,
            sku=sku,
            verdict=Verdict.ERROR if error else Verdict.NOT_INSPECTED,
            frame_ts=frame_ts,
            model_id=model_id,
            backend=backend,
            latency_ms=dict(latency_ms or {}),
            reason=reason,
        )

    def result(self) -> ResultPayload:
        """Return the PLC-friendly ``result`` that goes with this verdict."""
        return ResultPayload(part_id=self.part_id, seq=self.seq, code=self.verdict.code)

    def to_dict(self) -> JsonDict:
        """Return the published dict."""
        return {
            "schema": SCHEMA_VERSION,
            "part_id": self.part_id,
            "seq": self.seq,
            "sku": self.sku,
            "verdict": self.verdict.value,
            "code": self.verdict.code,
            "score": None if self.score is None else round(self.score, 6),
            "threshold": None if self.threshold is None else round(self.threshold, 6),
            "boxes": [box.as_list() for box in self.boxes],
            "template_id": self.template_id,
            "latency_ms": {stage: round(ms, 3) for stage, ms in self.latency_ms.items()},
            "model": {"id": self.model_id, "backend": self.backend},
            "frame_ts": None if self.frame_ts is None else iso_utc(self.frame_ts),
            "published_at": iso_utc(self.published_at),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ReadyPayload:
    """Retained trigger-ready flag on ``<root>/ready`` (PLC handshake)."""

    ready: bool
    sku: str | None
    reason: str | None = None
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> JsonDict:
        """Return the published dict."""
        return {
            "ready": self.ready,
            "sku": self.sku,
            "reason": None if self.ready else (self.reason or "not ready"),
            "timestamp": iso_utc(self.timestamp),
        }


@dataclass(frozen=True)
class LatencyStats:
    """Latency percentiles of one pipeline stage, in milliseconds."""

    p50: float
    p90: float
    p99: float
    max: float

    def to_dict(self) -> JsonDict:
        """Return the published dict."""
        values = {"p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max}
        return {k: round(v, 3) for k, v in values.items()}


@dataclass(frozen=True)
class MetricsPayload:
    """Periodic snapshot on ``<root>/metrics`` (QoS 0). Counters are totals since start."""

    window_s: float
    frames_in: int
    parts_inspected: int
    parts_ng: int
    not_inspected: int
    errors: int
    drops: int
    throughput_pps: float
    queue_depth: int
    outbox_depth: int
    latency_ms: Mapping[str, LatencyStats] = field(default_factory=dict)
    extra: Mapping[str, float] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> JsonDict:
        """Return the published dict; ``extra`` counters are merged in at the top level."""
        body: JsonDict = dict(self.extra)
        body.update(
            {
                "timestamp": iso_utc(self.timestamp),
                "window_s": self.window_s,
                "frames_in": self.frames_in,
                "parts_inspected": self.parts_inspected,
                "parts_ng": self.parts_ng,
                "not_inspected": self.not_inspected,
                "errors": self.errors,
                "drops": self.drops,
                "ng_rate": self.parts_ng / self.parts_inspected if self.parts_inspected else 0.0,
                "throughput_pps": self.throughput_pps,
                "queue_depth": self.queue_depth,
                "outbox_depth": self.outbox_depth,
                "latency_ms": {stage: stats.to_dict() for stage, stats in self.latency_ms.items()},
            }
        )
        return body


@dataclass(frozen=True)
class ReviewPayload:
    """An operator's disposition of an NG part on ``<root>/review``."""

    part_id: str
    disposition: Disposition
    user: str
    defect_class: str | None = None
    comment: str = ""
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> JsonDict:
        """Return the published dict."""
        return {
            "part_id": self.part_id,
            "disposition": self.disposition,
            "defect_class": self.defect_class,
            "comment": self.comment,
            "user": self.user,
            "timestamp": iso_utc(self.timestamp),
        }


@dataclass(frozen=True)
class ReplyPayload:
    """Outcome of one received command, on ``<root>/reply``."""

    command: str | None
    topic: str
    ok: bool
    error: str | None = None
    request_id: str | None = None
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> JsonDict:
        """Return the published dict."""
        return {
            "command": self.command,
            "topic": self.topic,
            "ok": self.ok,
            "error": self.error,
            "request_id": self.request_id,
            "timestamp": iso_utc(self.timestamp),
        }
