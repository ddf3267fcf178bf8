"""What the JSON API sends and takes (pydantic v2 models; their JSON Schemas make the OpenAPI document).

Times are ISO 8601 in UTC (``...Z``). Boxes are in frame pixels. Every model lists its fields explicitly, so a
field added to the index or the station does not reach clients before the API version says so.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge.review.records import DispositionRecord, PartRecord

Verdict = Literal["OK", "NG", "NOT_INSPECTED", "ERROR"]
DispositionKind = Literal["confirm_defect", "false_alarm"]
ImageKind = Literal["frame", "template", "heatmap", "overlay"]
Role = Literal["operator", "engineer"]


def utc(epoch: float | None) -> datetime | None:
    """Epoch seconds as an aware UTC datetime."""
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


class Error(BaseModel):
    """Every error the API answers: the status again, and what is wrong where."""

    status: int = Field(description="HTTP status code.", examples=[404])
    error: str = Field(description="HTTP status phrase.", examples=["Not Found"])
    message: str = Field(
        description="What went wrong, naming the parameter or object.",
        examples=["no archived part 'st1-000000009' (it may have been removed by retention)"],
    )
    where: str | None = Field(
        default=None, description="The request part concerned: `query.limit`, `path.part_id`, `body.comment`."
    )


class Box(BaseModel):
    """A defect box."""

    x: float
    y: float
    w: float
    h: float
    score: float = Field(description="Peak anomaly score inside the box.")
    area: float = Field(description="Area in pixels (or mm^2 when the SKU gives the pixel pitch).")


class Disposition(BaseModel):
    """An operator's (or machine client's) judgement of a part."""

    id: int
    part_id: str
    disposition: DispositionKind
    defect_class: str | None
    comment: str
    user: str = Field(description="Account name, or `token:<name>` for an API token.")
    at: datetime
    published: bool = Field(description="Handed to the MQTT outbox (`<root>/review`).")
    publish_error: str | None = None

    @classmethod
    def of(cls, d: DispositionRecord) -> Disposition:
        """From an index record."""
        return cls(
            id=d.id,
            part_id=d.part_id,
            disposition=d.disposition,  # type: ignore[arg-type]
            defect_class=d.defect_class,
            comment=d.comment,
            user=d.user,
            at=utc(d.at),  # type: ignore[arg-type]
            published=d.published,
            publish_error=d.publish_error,
        )


class DispositionIn(BaseModel):
    """A disposition to record."""

    model_config = ConfigDict(extra="forbid")

    disposition: DispositionKind
    defect_class: str | None = Field(
        default=None, max_length=64, description="Required for `confirm_defect` (scratch, dent, ...)."
    )
    comment: str = Field(default="", max_length=2000)


class PartSummary(BaseModel):
    """An archived part in a list."""

    part_id: str
    seq: int | None
    sku: str | None
    verdict: Verdict
    score: float | None
    threshold: float | None
    captured_at: datetime | None = Field(description="Frame time stamp.")
    archived_at: datetime
    disposition: DispositionKind | None = Field(description="Latest disposition; null: not reviewed.")
    defect_class: str | None
    reviewed_by: str | None
    url: str = Field(description="This part in the API.")

    @classmethod
    def of(cls, p: PartRecord, url: str) -> PartSummary:
        """From an index record."""
        return cls(
            part_id=p.part_id,
            seq=p.seq,
            sku=p.sku,
            verdict=p.verdict,  # type: ignore[arg-type]
            score=p.score,
            threshold=p.threshold,
            captured_at=utc(p.frame_ts),
            archived_at=utc(p.archived_at),  # type: ignore[arg-type]
            disposition=p.disposition,  # type: ignore[arg-type]
            defect_class=p.defect_class,
            reviewed_by=p.reviewed_by,
            url=url,
        )


class PartPage(BaseModel):
    """A page of archived parts, newest first."""

    total: int = Field(description="Parts matching the filters.")
    limit: int
    offset: int
    items: list[PartSummary]
    next: str | None = Field(description="The next page (same filters); null on the last page.")


class PartDetail(PartSummary):
    """One archived part: verdict, score, threshold, boxes, provenance, images, review history."""

    boxes: list[Box]
    template_id: str | None = Field(description="The golden template it was compared with.")
    model_id: str | None
    backend: str | None
    config_id: str | None
    config_hash: str | None
    reason: str | None = Field(description="Why NOT_INSPECTED or ERROR.")
    width: int | None
    height: int | None
    cut_short: str | None = Field(description="Why its images were not all archived (station stopping).")
    promoted: bool = Field(description="Its frame became a golden image.")
    images: dict[ImageKind, str] = Field(description="URL of each archived image.")
    dispositions: list[Disposition] = Field(description="Review history, oldest first.")


class ConfigRef(BaseModel):
    """The station config in force."""

    id: str | None
    version: int | None
    hash: str | None


class RecentVerdict(BaseModel):
    """One of the last verdicts (every verdict, archived or not)."""

    part_id: str
    seq: int
    sku: str | None
    verdict: Verdict
    score: float | None
    threshold: float | None
    at: datetime
    reason: str | None


class Station(BaseModel):
    """The station's state, active config and SKU."""

    station: str
    status: str = Field(description="online, paused, fault, safe_mode, offline or unknown.")
    reason: str | None
    sku: str | None = Field(description="The active SKU (recipe).")
    since: str | None = Field(description="Since when in this status (UTC).")
    config: ConfigRef | None
    backend: str | None
    thresholds: dict[str, float] = Field(description="SKU -> threshold in force.")
    recent: list[RecentVerdict] = Field(description="The last verdicts, newest first.")


class LatencyStats(BaseModel):
    """Latency percentiles of one stage (milliseconds)."""

    model_config = ConfigDict(extra="allow")

    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None


class Counters(BaseModel):
    """Counters since the station started (from its `metrics` payload) and of the archive."""

    frames_in: int | None = None
    parts_inspected: int | None = None
    parts_ng: int | None = None
    not_inspected: int | None = None
    errors: int | None = None
    drops: int | None = None
    ng_rate: float | None = None
    throughput_pps: float | None = None
    queue_depth: int | None = None
    outbox_depth: int | None = None
    latency_ms: dict[str, LatencyStats] = Field(default_factory=dict)
    gauges: dict[str, float] = Field(default_factory=dict, description="Further station gauges.")
    archived: dict[str, int] = Field(description="Archived parts by verdict.")
    to_review: int = Field(description="Archived parts without a disposition.")


class SkuReview(BaseModel):
    """Review statistics of one SKU (latest disposition of each part)."""

    sku: str
    archived: dict[str, int]
    ng_reviewed: int
    false_alarms: int
    false_alarm_rate: float | None
    ok_reviewed: int
    escapes: int
    escape_rate: float | None


class Me(BaseModel):
    """Who the API takes the caller for."""

    name: str
    role: Role
    via: Literal["session", "token"]
    csrf_token: str | None = Field(
        description="For session-cookie callers: send it as `X-CSRF-Token` on requests that change something."
    )


class Token(BaseModel):
    """An API token as stored (never the token itself)."""

    name: str
    role: Role
    created: datetime
    created_by: str
    revoked: datetime | None
