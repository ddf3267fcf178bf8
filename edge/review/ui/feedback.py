"""The statistics page and the engineers' feedback loop: golden promotion and thresholds, run as flashes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from edge.review.actions import find_part
from edge.review.auth import Session
from edge.review.errors import HttpError
from edge.review.feedback import FeedbackError, FeedbackResult
from edge.review.jobs import FeedbackJob
from edge.review.live import StationSnapshot
from edge.review.security import context, form_fields, form_session, page_session, require_engineer
from edge.review.ui.render import query_string, render

router = APIRouter(include_in_schema=False)


@router.get("/stats")
def stats(request: Request, session: Annotated[Session, Depends(page_session)]) -> Response:
    """Per-SKU false alarms and escapes; for engineers, promotion candidates and thresholds."""
    return stats_page(request, session)


def stats_page(
    request: Request, session: Session, result: FeedbackResult | None = None, error: str = ""
) -> Response:
    """The statistics page, showing a running feedback job, its outcome, or ``error``."""
    ctx = context(request)
    job_id = request.query_params.get("job", "")
    job = ctx.jobs.get(job_id) if job_id else None
    running = None
    if job is not None and job.running:
        running = job
    elif job is not None and job.result is not None:
        result = job.result
    elif job is not None:
        error = job.error
    sku_stats = ctx.index.sku_stats()
    engineer = session.user.is_engineer
    candidates = {s.sku: ctx.index.promotable(s.sku) for s in sku_stats} if engineer else {}
    snapshot = ctx.snapshot() if engineer else StationSnapshot()
    return render(
        ctx,
        "stats.html",
        request,
        session,
        status=200 if result is None or result.ok else 409,
        stats=sku_stats,
        candidates=candidates,
        promotions=ctx.index.promotions(),
        feedback_enabled=ctx.feedback is not None,
        thresholds=snapshot.thresholds,
        result=result,
        error=error,
        running=running,
        refresh=2 if running is not None else None,
    )


@router.post("/promote")
def promote(
    request: Request,
    session: Annotated[Session, Depends(form_session)],
    form: Annotated[FormData, Depends(form_fields)],
) -> Response:
    """Promote selected false-alarm frames into the SKU's golden bank (a new revision, flashed)."""
    require_engineer(session)
    ctx = context(request)
    sku = str(form.get("sku") or "")
    part_ids = [str(p) for p in form.getlist("part")]
    if ctx.feedback is None:
        return stats_page(request, session, error="promotion needs a flashed station (edge run --root)")
    images = []
    root = ctx.archive_root.resolve()
    for part_id in part_ids:
        part = find_part(ctx, part_id)
        frame = part.files.get("frame")
        if part.sku != sku or part.disposition != "false_alarm" or frame is None or part.dir is None:
            raise HttpError(400, f"part {part_id} is not a false alarm of {sku} with a frame")
        path = (root / part.dir / frame).resolve()
        if not path.is_relative_to(root):
            raise HttpError(404, "image not found")
        images.append((part.part_id, path))
    feedback, user = ctx.feedback, session.user.name
    return _start(
        request,
        session,
        "promote",
        sku,
        part_ids,
        lambda: feedback.promote(sku, images, user),
        lambda result: str(result.config_file.name if result.config_file else ""),
    )


@router.post("/threshold")
def threshold(
    request: Request,
    session: Annotated[Session, Depends(form_session)],
    form: Annotated[FormData, Depends(form_fields)],
) -> Response:
    """Set a SKU's fixed threshold, or clear it (calibrated), through a flashed revision."""
    require_engineer(session)
    ctx = context(request)
    sku = str(form.get("sku") or "")
    text = str(form.get("threshold") or "").strip()
    try:
        value = float(text) if text else None
    except ValueError:
        raise HttpError(400, f"threshold {text!r} is not a number") from None
    if value is not None and not (math.isfinite(value) and value > 0):
        raise HttpError(400, "threshold must be a positive number")
    if ctx.feedback is None:
        return stats_page(
            request, session, error="threshold changes need a flashed station (edge run --root)"
        )
    feedback, user = ctx.feedback, session.user.name
    what = "calibrated" if value is None else f"{value:g}"
    return _start(
        request,
        session,
        "threshold",
        sku,
        [],
        lambda: feedback.set_threshold(sku, value, user),
        lambda _result: what,
    )


def _start(
    request: Request,
    session: Session,
    kind: str,
    sku: str,
    part_ids: list[str],
    action: Callable[[], FeedbackResult],
    detail: Callable[[FeedbackResult], str],
) -> Response:
    """Run a feedback action (a flash) in the background, record its outcome, show it on the stats page."""
    ctx = context(request)

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
        return stats_page(request, session, error=str(exc))
    return RedirectResponse("/stats?" + query_string({"job": job.job_id}), 303)
