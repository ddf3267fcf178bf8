"""The review UI's pages: one function per page, each ``(context, request, session) -> Response``.

Authentication, CSRF checks and routing happen in :mod:`edge.review.server` before a view runs; views only
check roles that are finer than "logged in" (engineer-only actions).
"""

from __future__ import annotations

import logging
import math
import mimetypes
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from edge.mqtt.payloads import ReviewPayload
from edge.review.auth import Authenticator, Session
from edge.review.feedback import FeedbackError, FeedbackResult, GoldenFeedback
from edge.review.index import (
    DISPOSITIONS,
    IMAGE_KINDS,
    VERDICTS,
    ArchiveIndex,
    PartFilter,
    PartRecord,
)
from edge.review.jobs import FeedbackJob, FeedbackJobs
from edge.review.live import StationSnapshot, StatusSource
from edge.review.web import HttpError, Request, Response, part_url, query_string

log = logging.getLogger(__name__)

DispositionSink = Callable[[ReviewPayload], object]
"""Publishes a disposition on MQTT ``review`` (the station passes ``StationMqtt.publish_review``)."""

PAGE_SIZE = 50
DEFECT_CLASSES = ("scratch", "dent", "missing_component", "contamination", "misalignment", "crack", "other")
STATIC_FILES = frozenset({"review.css", "review.js", "favicon.svg"})
MAX_COMMENT = 2000
MAX_DEFECT_CLASS = 64


@dataclass
class ReviewContext:
    """Everything the pages use.

    Attributes:
        index: The archive index (the only way pages reach archived parts).
        archive_root: The archive folder; image files are served only from inside it.
        auth: Accounts and sessions.
        status: Live station snapshot.
        publish: MQTT publisher of dispositions (``None``: stored only).
        feedback: Golden promotion and thresholds (``None``: not a flashed station).
        jobs: The feedback actions running or recently finished (each is a flash, run in the background).
        prometheus_url: Link to the Prometheus endpoint (``None``: endpoint disabled).
        station: Station name in the page header.

    """

    index: ArchiveIndex
    archive_root: Path
    auth: Authenticator
    status: StatusSource
    publish: DispositionSink | None = None
    feedback: GoldenFeedback | None = None
    prometheus_url: str | None = None
    station: str = "station"
    jobs: FeedbackJobs = field(default_factory=FeedbackJobs)

    def __post_init__(self) -> None:
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("edge.review", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(when=_when, pct=_pct, num=_num, part_url=part_url)

    def render(
        self, name: str, req: Request, session: Session | None, status: int = 200, **values: Any
    ) -> Response:
        """Render a template with the common values (user, CSRF token, station, nav)."""
        page = self.templates.get_template(name).render(
            station=self.station,
            session=session,
            csrf=self.auth.csrf_token(session.sid) if session else "",
            prometheus_url=self.prometheus_url,
            path=req.segments[0] if req.segments else "",
            **values,
        )
        return Response(page.encode("utf-8"), status)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.1f} %"


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


# -- login ---------------------------------------------------------------------------------------------------

PRE_COOKIE = "edge_review_pre"
SESSION_COOKIE = "edge_review"


def _safe_next(target: str) -> str:
    """Only same-site paths: ``//host`` or ``https://...`` would send the user elsewhere after login."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def login_form(ctx: ReviewContext, req: Request, error: str = "", status: int = 200) -> Response:
    """The login page; a pre-session nonce cookie carries the login form's CSRF token."""
    import secrets

    nonce = req.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(18)
    page = ctx.templates.get_template("login.html").render(
        station=ctx.station,
        session=None,
        csrf=ctx.auth.csrf_token("pre:" + nonce),
        next=_safe_next(req.arg("next", "/")),
        error=error,
        prometheus_url=None,
        path="login",
    )
    response = Response(page.encode("utf-8"), status)
    response.set_cookie(PRE_COOKIE, nonce, max_age=3600, secure=req.https)
    return response


def login(ctx: ReviewContext, req: Request) -> Response:
    """Check the login form (CSRF against the pre-session nonce), then issue the session cookie."""
    nonce = req.cookies.get(PRE_COOKIE, "")
    if not nonce or not ctx.auth.check_csrf("pre:" + nonce, req.field("csrf")):
        raise HttpError(403, "CSRF token missing or invalid: reload the login page")
    name = req.field("user").strip()
    wait = ctx.auth.wait_s(name, req.client)
    if wait > 0:
        response = login_form(ctx, req, f"Too many wrong passwords: try again in {math.ceil(wait)} s.", 429)
        response.headers.append(("Retry-After", str(math.ceil(wait))))
        return response
    user = ctx.auth.login(name, req.field("password"), req.client)
    if user is None:
        failures = ctx.auth.throttle.failures(name)
        if failures and failures % 10 == 0:
            # Guessing spread over many addresses shows only here: tell whoever reads the log.
            log.warning(
                "review: %d wrong passwords for user name %r (last from %s)", failures, name, req.client
            )
        return login_form(ctx, req, "Wrong user name or password.", 401)
    cookie, _ = ctx.auth.issue(user)
    log.info("review: %s (%s) logged in", user.name, user.role)
    response = Response.redirect(_safe_next(req.field("next", "/")))
    response.set_cookie(SESSION_COOKIE, cookie, max_age=8 * 3600, secure=req.https)
    response.set_cookie(PRE_COOKIE, "", max_age=0, secure=req.https)
    return response


def logout(ctx: ReviewContext, req: Request, session: Session) -> Response:
    """Revoke the session."""
    ctx.auth.revoke(session)
    response = Response.redirect("/login")
    response.set_cookie(SESSION_COOKIE, "", max_age=0, secure=req.https)
    return response


# -- status --------------------------------------------------------------------------------------------------


def _snapshot(ctx: ReviewContext) -> StationSnapshot:
    try:
        return ctx.status()
    except Exception:
        log.exception("station status unavailable")
        return StationSnapshot(status="unknown", reason="status unavailable (see the station log)")


def status_page(ctx: ReviewContext, req: Request, session: Session) -> Response:
    """Live status: state, SKU, throughput, NG rate, last parts; refreshes itself."""
    snapshot = _snapshot(ctx)
    unreviewed = ctx.index.count(PartFilter(disposition="none"))
    flagged = ctx.index.parts(limit=8)
    return ctx.render(
        "status.html", req, session, snap=snapshot, unreviewed=unreviewed, flagged=flagged, refresh=5
    )


def metrics_page(ctx: ReviewContext, req: Request, session: Session) -> Response:
    """The station's metrics snapshot, and the Prometheus link."""
    snapshot = _snapshot(ctx)
    metrics = dict(snapshot.metrics)
    latency = metrics.pop("latency_ms", {}) or {}
    return ctx.render(
        "metrics.html", req, session, snap=snapshot, metrics=metrics, latency=latency, refresh=10
    )


# -- flagged parts -------------------------------------------------------------------------------------------


def _time_arg(value: str) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()  # naive: station local time, as shown
    except ValueError:
        raise HttpError(400, f"bad time {value!r}: expected YYYY-MM-DDTHH:MM") from None


def _filter(req: Request) -> tuple[PartFilter, dict[str, str]]:
    raw = {k: req.arg(k) for k in ("sku", "verdict", "disposition", "since", "until")}
    if raw["verdict"] and raw["verdict"] not in VERDICTS:
        raise HttpError(400, f"unknown verdict {raw['verdict']!r}")
    if raw["disposition"] and raw["disposition"] not in (*DISPOSITIONS, "none"):
        raise HttpError(400, f"unknown disposition {raw['disposition']!r}")
    where = PartFilter(
        sku=raw["sku"] or None,
        verdict=raw["verdict"] or None,
        disposition=raw["disposition"] or None,
        since=_time_arg(raw["since"]),
        until=_time_arg(raw["until"]),
    )
    return where, raw


def parts_page(ctx: ReviewContext, req: Request, session: Session) -> Response:
    """The flagged-parts list with filters."""
    where, raw = _filter(req)
    try:
        page = max(1, int(req.arg("page", "1")))
    except ValueError:
        raise HttpError(400, "bad page number") from None
    total = ctx.index.count(where)
    parts = ctx.index.parts(where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    filters = query_string(raw)
    return ctx.render(
        "parts.html",
        req,
        session,
        parts=parts,
        total=total,
        page=page,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
        f=raw,
        filters=filters,
        skus=ctx.index.skus(),
        verdicts=VERDICTS,
    )


def _part(ctx: ReviewContext, part_id: str) -> PartRecord:
    part = ctx.index.part(part_id)
    if part is None:
        raise HttpError(404, "no such archived part (it may have been removed by retention)")
    return part


def part_page(ctx: ReviewContext, req: Request, session: Session, part_id: str) -> Response:
    """One part: frame | template | heatmap overlay, boxes, scores, disposition form."""
    part = _part(ctx, part_id)
    where, raw = _filter(req)
    newer, older = ctx.index.neighbours(part.part_id, where)
    filters = query_string(raw)
    return ctx.render(
        "part.html",
        req,
        session,
        part=part,
        history=ctx.index.dispositions(part.part_id),
        newer=newer,
        older=older,
        filters=filters,
        defect_classes=DEFECT_CLASSES,
        done=req.arg("done"),
        kinds=[k for k in IMAGE_KINDS if k in part.files],
    )


def part_image(ctx: ReviewContext, req: Request, session: Session, part_id: str, kind: str) -> Response:
    """An archived image, found through the index; never a path taken from the request."""
    if kind not in IMAGE_KINDS:
        raise HttpError(404, "no such image kind")
    part = _part(ctx, part_id)
    name = part.files.get(kind)
    if name is None or part.dir is None:
        raise HttpError(404, "this part has no such image")
    root = ctx.archive_root.resolve()
    path = (root / part.dir / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        log.warning(
            "review: refused image path %s of part %s (outside the archive or missing)", path, part_id
        )
        raise HttpError(404, "image not found")
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Response(path.read_bytes(), 200, ctype, cache="private, max-age=3600")


def disposition(ctx: ReviewContext, req: Request, session: Session, part_id: str) -> Response:
    """Store a disposition, publish it on MQTT ``review``, go on to the next part of the list."""
    part = _part(ctx, part_id)
    kind = req.field("disposition")
    if kind not in DISPOSITIONS:
        raise HttpError(400, f"disposition must be one of {', '.join(DISPOSITIONS)}")
    defect_class = req.field("defect_class").strip() or None
    comment = req.field("comment").strip()
    if kind == "confirm_defect" and defect_class is None:
        raise HttpError(400, "confirming a defect needs a defect class")
    if kind == "false_alarm":
        defect_class = None
    if defect_class is not None and (len(defect_class) > MAX_DEFECT_CLASS or not defect_class.isprintable()):
        raise HttpError(400, f"defect class: at most {MAX_DEFECT_CLASS} printable characters")
    if len(comment) > MAX_COMMENT:
        raise HttpError(400, f"comment: at most {MAX_COMMENT} characters")
    ctx.index.add_disposition(
        part.part_id, kind, session.user.name, defect_class=defect_class, comment=comment
    )
    log.info("review: %s marked %s %s", session.user.name, part.part_id, kind)
    publish_pending(ctx)
    _, older = ctx.index.neighbours(part.part_id, _filter(req)[0])
    filters = query_string({k: req.arg(k) for k in ("sku", "verdict", "disposition", "since", "until")})
    target = part_url(older) if older else part_url(part.part_id)
    return Response.redirect(f"{target}?{query_string([('done', kind)])}{'&' + filters if filters else ''}")


def publish_pending(ctx: ReviewContext) -> None:
    """Hand every not-yet-published disposition to MQTT, oldest first (the outbox makes them durable)."""
    if ctx.publish is None:
        return
    for record in ctx.index.unpublished():
        payload = ReviewPayload(
            part_id=record.part_id,
            disposition=record.disposition,  # type: ignore[arg-type]
            user=record.user,
            defect_class=record.defect_class,
            comment=record.comment,
            timestamp=record.at,
        )
        try:
            ctx.publish(payload)
        except Exception as exc:  # outbox full, broker settings gone: stored, retried with the next one
            log.error("review: disposition %d of %s not published: %s", record.id, record.part_id, exc)
            ctx.index.mark_published(record.id, f"{type(exc).__name__}: {exc}")
            return
        ctx.index.mark_published(record.id)


# -- statistics and the feedback loop ------------------------------------------------------------------------


def stats_page(
    ctx: ReviewContext, req: Request, session: Session, result: FeedbackResult | None = None, error: str = ""
) -> Response:
    """Per-SKU false alarms and escapes; for engineers, promotion candidates and thresholds."""
    job = ctx.jobs.get(req.arg("job")) if req.arg("job") else None
    running = None
    if job is not None and job.running:
        running = job
    elif job is not None and job.result is not None:
        result = job.result
    elif job is not None:
        error = job.error
    stats = ctx.index.sku_stats()
    engineer = session.user.is_engineer
    candidates = {s.sku: ctx.index.promotable(s.sku) for s in stats} if engineer else {}
    snapshot = _snapshot(ctx) if engineer else StationSnapshot()
    return ctx.render(
        "stats.html",
        req,
        session,
        status=200 if result is None or result.ok else 409,
        stats=stats,
        candidates=candidates,
        promotions=ctx.index.promotions(),
        feedback_enabled=ctx.feedback is not None,
        thresholds=snapshot.thresholds,
        result=result,
        error=error,
        running=running,
        refresh=2 if running is not None else None,
    )


def _engineer(session: Session) -> None:
    if not session.user.is_engineer:
        raise HttpError(403, "only engineers may change golden banks and thresholds")


def promote(ctx: ReviewContext, req: Request, session: Session) -> Response:
    """Promote selected false-alarm frames into the SKU's golden bank (a new revision, flashed)."""
    _engineer(session)
    sku = req.field("sku")
    part_ids = req.fields("part")
    if ctx.feedback is None:
        return stats_page(ctx, req, session, error="promotion needs a flashed station (edge run --root)")
    images = []
    for part_id in part_ids:
        part = _part(ctx, part_id)
        frame = part.files.get("frame")
        if part.sku != sku or part.disposition != "false_alarm" or frame is None or part.dir is None:
            raise HttpError(400, f"part {part_id} is not a false alarm of {sku} with a frame")
        path = (ctx.archive_root / part.dir / frame).resolve()
        if not path.is_relative_to(ctx.archive_root.resolve()):
            raise HttpError(404, "image not found")
        images.append((part.part_id, path))
    feedback, user = ctx.feedback, session.user.name
    return _start(
        ctx,
        req,
        session,
        "promote",
        sku,
        part_ids,
        lambda: feedback.promote(sku, images, user),
        lambda result: str(result.config_file.name if result.config_file else ""),
    )


def _start(
    ctx: ReviewContext,
    req: Request,
    session: Session,
    kind: str,
    sku: str,
    part_ids: list[str],
    action: Callable[[], FeedbackResult],
    detail: Callable[[FeedbackResult], str],
) -> Response:
    """Run a feedback action (a flash) in the background, record its outcome, show it on the stats page."""

    def record(job: FeedbackJob) -> None:
        if job.result is None:
            return  # refused before any flash (no flashed config, unknown SKU): nothing to journal
        ctx.index.add_promotion(
            kind=kind,
            sku=sku,
            part_ids=part_ids,
            detail=detail(job.result),
            user=job.user,
            result=job.result.result,
            reason=job.result.reason,
            flash_id=job.result.flash_id,
            ok=job.result.ok,
        )

    try:
        job = ctx.jobs.start(kind, sku, session.user.name, action, record)
    except FeedbackError as exc:
        return stats_page(ctx, req, session, error=str(exc))
    return Response.redirect("/stats?" + query_string({"job": job.job_id}))


def threshold(ctx: ReviewContext, req: Request, session: Session) -> Response:
    """Set a SKU's fixed threshold, or clear it (calibrated), through a flashed revision."""
    _engineer(session)
    sku = req.field("sku")
    text = req.field("threshold").strip()
    try:
        value = float(text) if text else None
    except ValueError:
        raise HttpError(400, f"threshold {text!r} is not a number") from None
    if value is not None and not (math.isfinite(value) and value > 0):
        raise HttpError(400, "threshold must be a positive number")
    if ctx.feedback is None:
        return stats_page(
            ctx, req, session, error="threshold changes need a flashed station (edge run --root)"
        )
    feedback, user = ctx.feedback, session.user.name
    what = "calibrated" if value is None else f"{value:g}"
    return _start(
        ctx,
        req,
        session,
        "threshold",
        sku,
        [],
        lambda: feedback.set_threshold(sku, value, user),
        lambda _result: what,
    )


# -- static files --------------------------------------------------------------------------------------------


def static_file(name: str) -> Response:
    """A file of the package's ``static`` folder, by name from a fixed list."""
    if name not in STATIC_FILES:
        raise HttpError(404, "not found")
    data = resources.files("edge.review").joinpath("static", name).read_bytes()
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype.endswith("javascript"):
        ctype += "; charset=utf-8"
    return Response(data, 200, ctype, cache="public, max-age=3600")


def require_auth(auth: Authenticator, req: Request) -> Session | None:
    """The request's session, if its cookie is valid."""
    return auth.verify(req.cookies.get(SESSION_COOKIE))
