"""The station and parts pages: status, metrics, flagged parts, one part, its images, dispositions."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from edge.review.actions import DEFECT_CLASSES, find_part, image_file, record_disposition
from edge.review.auth import Session
from edge.review.errors import HttpError
from edge.review.records import DISPOSITIONS, IMAGE_KINDS, VERDICTS, PartFilter
from edge.review.security import context, form_fields, form_session, page_session, ui_session
from edge.review.ui.render import part_url, query_string, render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
FILTERS = ("sku", "verdict", "disposition", "since", "until")


@router.get("/")
def status_page(request: Request, session: Annotated[Session, Depends(page_session)]) -> Response:
    """Live status: state, SKU, throughput, NG rate, last parts; refreshes itself."""
    ctx = context(request)
    return render(
        ctx,
        "status.html",
        request,
        session,
        snap=ctx.snapshot(),
        unreviewed=ctx.index.count(PartFilter(disposition="none")),
        flagged=ctx.index.parts(limit=8),
        refresh=5,
    )


@router.get("/metrics")
def metrics_page(request: Request, session: Annotated[Session, Depends(page_session)]) -> Response:
    """The station's metrics snapshot, and the Prometheus link."""
    ctx = context(request)
    snapshot = ctx.snapshot()
    metrics = dict(snapshot.metrics)
    latency = metrics.pop("latency_ms", {}) or {}
    return render(
        ctx, "metrics.html", request, session, snap=snapshot, metrics=metrics, latency=latency, refresh=10
    )


def _time_arg(value: str) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()  # naive: station local time, as shown
    except ValueError:
        raise HttpError(400, f"bad time {value!r}: expected YYYY-MM-DDTHH:MM") from None


def _filter(request: Request) -> tuple[PartFilter, dict[str, str]]:
    raw = {k: request.query_params.get(k, "") for k in FILTERS}
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


@router.get("/parts")
def parts_page(request: Request, session: Annotated[Session, Depends(page_session)]) -> Response:
    """The flagged-parts list with filters."""
    ctx = context(request)
    where, raw = _filter(request)
    try:
        page = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        raise HttpError(400, "bad page number") from None
    total = ctx.index.count(where)
    return render(
        ctx,
        "parts.html",
        request,
        session,
        parts=ctx.index.parts(where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE),
        total=total,
        page=page,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
        f=raw,
        filters=query_string(raw),
        skus=ctx.index.skus(),
        verdicts=VERDICTS,
    )


# Part ids may contain '/', so they are matched with the path converter: the routes with a suffix come
# before the part page, whose pattern would otherwise take the suffix into the id.


@router.get("/parts/{part_id:path}/image/{kind}")
def part_image(
    request: Request, part_id: str, kind: str, session: Annotated[Session, Depends(ui_session)]
) -> Response:
    """An archived image, found through the index; never a path taken from the request."""
    ctx = context(request)
    if kind not in IMAGE_KINDS:  # before the lookup: an unknown kind says nothing about which parts exist
        raise HttpError(404, "no such image kind")
    path, ctype = image_file(ctx, find_part(ctx, part_id), kind)
    return Response(
        path.read_bytes(), 200, media_type=ctype, headers={"Cache-Control": "private, max-age=3600"}
    )


@router.post("/parts/{part_id:path}/disposition")
def disposition(
    request: Request,
    part_id: str,
    session: Annotated[Session, Depends(form_session)],
    form: Annotated[FormData, Depends(form_fields)],
) -> Response:
    """Store a disposition, publish it on MQTT ``review``, go on to the next part of the list."""
    ctx = context(request)
    part = find_part(ctx, part_id)
    kind = str(form.get("disposition") or "")
    record_disposition(
        ctx,
        part,
        kind,
        session.user.name,
        defect_class=str(form.get("defect_class") or ""),
        comment=str(form.get("comment") or ""),
    )
    where, raw = _filter(request)
    _, older = ctx.index.neighbours(part.part_id, where)
    filters = query_string(raw)
    target = part_url(older) if older else part_url(part.part_id)
    done = query_string([("done", kind)])
    return RedirectResponse(f"{target}?{done}{'&' + filters if filters else ''}", 303)


@router.get("/parts/{part_id:path}")
def part_page(request: Request, part_id: str, session: Annotated[Session, Depends(page_session)]) -> Response:
    """One part: frame | template | heatmap overlay, boxes, scores, disposition form."""
    ctx = context(request)
    part = find_part(ctx, part_id)
    where, raw = _filter(request)
    newer, older = ctx.index.neighbours(part.part_id, where)
    return render(
        ctx,
        "part.html",
        request,
        session,
        part=part,
        history=ctx.index.dispositions(part.part_id),
        newer=newer,
        older=older,
        filters=query_string(raw),
        defect_classes=DEFECT_CLASSES,
        done=request.query_params.get("done", ""),
        kinds=[k for k in IMAGE_KINDS if k in part.files],
    )
