"""``/api/v1/parts``: archived parts (paged, filtered), one part with boxes and images, dispositions."""

from __future__ import annotations

import urllib.parse
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from edge.review.actions import find_part, image_file, record_disposition
from edge.review.api.common import AUTH_ERRORS, NOT_FOUND, PREFIX, part_url
from edge.review.api.models import (
    Box,
    Disposition,
    DispositionIn,
    Error,
    ImageKind,
    PartDetail,
    PartPage,
    PartSummary,
    Verdict,
)
from edge.review.errors import HttpError
from edge.review.records import IMAGE_KINDS, PartFilter
from edge.review.security import Principal, api_principal, context

router = APIRouter(prefix=PREFIX, tags=["parts"], responses=AUTH_ERRORS)

MAX_LIMIT = 200

TimeQuery = Annotated[
    datetime | None,
    Query(description="ISO 8601 (`2026-12-03T07:00:00Z`); without an offset: station local time."),
]


@router.get("/parts", summary="Archived parts, newest first")
def list_parts(
    request: Request,
    _: Annotated[Principal, Depends(api_principal)],
    verdict: Annotated[Verdict | None, Query(description="Only this verdict.")] = None,
    sku: Annotated[str | None, Query(max_length=128, description="Only this SKU.")] = None,
    disposition: Annotated[
        Literal["confirm_defect", "false_alarm", "none"] | None,
        Query(description="Only parts whose latest disposition is this (`none`: not reviewed yet)."),
    ] = None,
    since: TimeQuery = None,
    until: TimeQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = 50,
    offset: Annotated[int, Query(ge=0, description="Parts to skip (of the filtered list).")] = 0,
) -> PartPage:
    """Archived parts (every NG, NOT_INSPECTED and ERROR part, sampled OK parts), newest first.

    ``since`` is inclusive, ``until`` exclusive (archive time).
    """
    ctx = context(request)
    if since is not None and until is not None and until <= since:
        raise HttpError(400, "until must be later than since", where="query.until")
    where = PartFilter(
        sku=sku,
        verdict=verdict,
        disposition=disposition,
        since=since.timestamp() if since else None,
        until=until.timestamp() if until else None,
    )
    total = ctx.index.count(where)
    parts = ctx.index.parts(where, limit=limit, offset=offset)
    following = None
    if offset + len(parts) < total:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
        following = f"{PREFIX}/parts?" + urllib.parse.urlencode([*query, ("offset", str(offset + limit))])
    return PartPage(
        total=total,
        limit=limit,
        offset=offset,
        items=[PartSummary.of(p, part_url(p.part_id)) for p in parts],
        next=following,
    )


# Part ids may contain '/', so they are matched with the path converter: the routes with a suffix come
# before the part itself, whose pattern would otherwise take the suffix into the id.


@router.get(
    "/parts/{part_id:path}/images/{kind}",
    summary="One image of a part",
    response_class=Response,
    responses={
        **NOT_FOUND,
        200: {
            "description": "The image: frame and template PNG (lossless), heatmap and overlay JPEG.",
            "content": {"image/png": {}, "image/jpeg": {}},
        },
    },
)
def get_part_image(
    request: Request, part_id: str, kind: ImageKind, _: Annotated[Principal, Depends(api_principal)]
) -> Response:
    """The camera frame, the golden template it was compared with, the anomaly heatmap, or the overlay."""
    ctx = context(request)
    path, ctype = image_file(ctx, find_part(ctx, part_id), kind)
    return Response(
        path.read_bytes(), 200, media_type=ctype, headers={"Cache-Control": "private, max-age=3600"}
    )


@router.get("/parts/{part_id:path}/dispositions", summary="A part's review history", responses=NOT_FOUND)
def list_dispositions(
    request: Request, part_id: str, _: Annotated[Principal, Depends(api_principal)]
) -> list[Disposition]:
    """Every disposition of the part, oldest first (the latest one counts)."""
    ctx = context(request)
    part = find_part(ctx, part_id)
    return [Disposition.of(d) for d in ctx.index.dispositions(part.part_id)]


@router.post(
    "/parts/{part_id:path}/dispositions",
    summary="Record a disposition",
    status_code=201,
    responses={**NOT_FOUND, 400: {"model": Error, "description": "A field is missing or malformed."}},
)
def add_disposition(
    request: Request,
    part_id: str,
    body: DispositionIn,
    principal: Annotated[Principal, Depends(api_principal)],
) -> Disposition:
    """Store a disposition (operators and engineers) and publish it on MQTT ``<root>/review``.

    Stored first; if the MQTT outbox refuses it, ``published`` is false and it is retried, in order, with
    the next disposition.
    """
    ctx = context(request)
    part = find_part(ctx, part_id)
    stored = record_disposition(
        ctx, part, body.disposition, principal.name, defect_class=body.defect_class, comment=body.comment
    )
    return Disposition.of(stored)


@router.get("/parts/{part_id:path}", summary="One archived part", responses=NOT_FOUND)
def get_part(request: Request, part_id: str, _: Annotated[Principal, Depends(api_principal)]) -> PartDetail:
    """Verdict, score, threshold, boxes, provenance (model, config), image URLs and review history."""
    ctx = context(request)
    part = find_part(ctx, part_id)
    summary = PartSummary.of(part, part_url(part.part_id))
    return PartDetail(
        **summary.model_dump(),
        boxes=[Box(x=b[0], y=b[1], w=b[2], h=b[3], score=b[4], area=b[5]) for b in part.boxes],
        template_id=part.template_id,
        model_id=part.model_id,
        backend=part.backend,
        config_id=part.config_id,
        config_hash=part.config_hash,
        reason=part.reason,
        width=part.width,
        height=part.height,
        cut_short=part.cut_short,
        promoted=part.promoted,
        images={k: part_url(part.part_id, f"/images/{k}") for k in IMAGE_KINDS if k in part.files},  # type: ignore[misc]
        dispositions=[Disposition.of(d) for d in ctx.index.dispositions(part.part_id)],
    )
