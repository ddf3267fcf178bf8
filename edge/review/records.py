"""What the archive index stores and returns: part and disposition records, filters, per-SKU statistics.

Plain frozen dataclasses with no database in them: the review pages, the JSON API and the archive writer all
speak these, and only :mod:`edge.review.index` knows how they map to SQLite rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Disposition = Literal["confirm_defect", "false_alarm"]
DISPOSITIONS: tuple[Disposition, ...] = ("confirm_defect", "false_alarm")
VERDICTS = ("OK", "NG", "NOT_INSPECTED", "ERROR")
IMAGE_KINDS = ("frame", "template", "heatmap", "overlay")
"""Images an archived part may have: camera frame, retrieved template, anomaly heatmap, heatmap over frame."""


@dataclass(frozen=True)
class PartRecord:
    """One archived part as the index knows it.

    Attributes:
        dir: Folder of its images, relative to the archive root (``None``: no images, e.g. no frame).
        files: Image kind (:data:`IMAGE_KINDS`) -> file name inside ``dir``.
        cut_short: Why archiving this part stopped before its images were written (the station stopped
            while it was encoding them, ...); ``None`` when the part is archived completely.
        bytes: Disk space of its files (what the quota counts).
        boxes: ``[x, y, w, h, score, area]`` in frame pixels.
        disposition: Latest disposition (filled by queries), ``None`` when not reviewed.

    """

    part_id: str
    verdict: str
    archived_at: float
    seq: int | None = None
    sku: str | None = None
    score: float | None = None
    threshold: float | None = None
    boxes: list[list[float]] = field(default_factory=list)
    template_id: str | None = None
    model_id: str | None = None
    backend: str | None = None
    config_id: str | None = None
    config_hash: str | None = None
    reason: str | None = None
    frame_ts: float | None = None
    dir: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    bytes: int = 0
    width: int | None = None
    height: int | None = None
    cut_short: str | None = None
    disposition: str | None = None
    defect_class: str | None = None
    comment: str | None = None
    reviewed_by: str | None = None
    promoted: bool = False


@dataclass(frozen=True)
class DispositionRecord:
    """A stored disposition."""

    id: int
    part_id: str
    sku: str | None
    verdict: str
    disposition: str
    defect_class: str | None
    comment: str
    user: str
    at: float
    published: bool
    publish_error: str | None


@dataclass(frozen=True)
class PartFilter:
    """Filters of the flagged-parts list; ``None`` means any.

    Attributes:
        disposition: ``confirm_defect``, ``false_alarm`` or ``none`` (not reviewed yet).
        since: Earliest ``archived_at`` (epoch seconds, inclusive).
        until: Latest ``archived_at`` (epoch seconds, exclusive).

    """

    sku: str | None = None
    verdict: str | None = None
    disposition: str | None = None
    since: float | None = None
    until: float | None = None

    def where(self) -> tuple[str, list[Any]]:
        """SQL condition over ``p`` (parts) and ``d`` (latest disposition) with its parameters."""
        clauses: list[str] = ["1=1"]
        params: list[Any] = []
        if self.sku:
            clauses.append("p.sku = ?")
            params.append(self.sku)
        if self.verdict:
            clauses.append("p.verdict = ?")
            params.append(self.verdict)
        if self.disposition == "none":
            clauses.append("d.disposition IS NULL")
        elif self.disposition:
            clauses.append("d.disposition = ?")
            params.append(self.disposition)
        if self.since is not None:
            clauses.append("p.archived_at >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("p.archived_at < ?")
            params.append(self.until)
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class SkuStats:
    """Review statistics of one SKU.

    A *false alarm* is an NG part an operator marked ``false_alarm``; an *escape* is an OK part (from the
    sampled OKs) an operator confirmed as defective.
    """

    sku: str
    archived: dict[str, int]
    ng_reviewed: int
    false_alarms: int
    ok_reviewed: int
    escapes: int

    @property
    def false_alarm_rate(self) -> float | None:
        """False alarms / reviewed NG parts."""
        return self.false_alarms / self.ng_reviewed if self.ng_reviewed else None

    @property
    def escape_rate(self) -> float | None:
        """Escapes / reviewed sampled OK parts."""
        return self.escapes / self.ok_reviewed if self.ok_reviewed else None


@dataclass(frozen=True)
class PromotionRecord:
    """A journal line of the feedback loop (golden promotion or threshold change) as the UI shows it."""

    id: int
    kind: str
    sku: str
    part_ids: list[str]
    detail: str
    user: str
    at: float
    result: str
    reason: str
    flash_id: str
