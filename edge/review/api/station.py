"""``/api/v1`` on the station: the caller, state and active config, counters, review statistics, tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from edge.review.api.common import AUTH_ERRORS, PREFIX
from edge.review.api.models import (
    ConfigRef,
    Counters,
    Error,
    LatencyStats,
    Me,
    RecentVerdict,
    SkuReview,
    Station,
    Token,
    utc,
)
from edge.review.errors import HttpError
from edge.review.records import PartFilter
from edge.review.security import Principal, api_engineer, api_principal, context
from edge.review.tokens import TokenError, TokenStore

router = APIRouter(prefix=PREFIX, responses=AUTH_ERRORS)

_COUNTERS = (
    "frames_in", "parts_inspected", "parts_ng", "not_inspected", "errors", "drops", "ng_rate",
    "throughput_pps", "queue_depth", "outbox_depth",
)  # fmt: skip
_NOT_GAUGES = {*_COUNTERS, "latency_ms", "timestamp", "window_s"}


@router.get("/session", tags=["auth"], summary="Who the API takes the caller for")
def get_session(request: Request, principal: Annotated[Principal, Depends(api_principal)]) -> Me:
    """The caller's name and role; for session-cookie callers also the CSRF token their writes must send."""
    session = principal.session
    csrf = context(request).auth.csrf_token(session.sid) if session is not None else None
    return Me(name=principal.name, role=principal.role, via=principal.via, csrf_token=csrf)


@router.get("/station", tags=["station"], summary="State, active config and SKU")
def get_station(request: Request, _: Annotated[Principal, Depends(api_principal)]) -> Station:
    """The station's status (as on MQTT ``state``), the config in force, the active SKU, the last verdicts."""
    ctx = context(request)
    snap = ctx.snapshot()
    config = snap.config_ref
    return Station(
        station=ctx.station,
        status=snap.status,
        reason=snap.reason,
        sku=snap.sku,
        since=snap.since,
        config=ConfigRef(id=config.get("id"), version=config.get("version"), hash=config.get("hash"))
        if config
        else None,
        backend=snap.backend,
        thresholds=dict(snap.thresholds),
        recent=[
            RecentVerdict(
                part_id=r.part_id,
                seq=r.seq,
                sku=r.sku,
                verdict=r.verdict,  # type: ignore[arg-type]
                score=r.score,
                threshold=r.threshold,
                at=utc(r.at),  # type: ignore[arg-type]
                reason=r.reason,
            )
            for r in snap.recent
        ],
    )


@router.get("/counters", tags=["station"], summary="Counters of the station and the archive")
def get_counters(request: Request, _: Annotated[Principal, Depends(api_principal)]) -> Counters:
    """Totals since the station started (its ``metrics`` payload), and archived parts by verdict."""
    ctx = context(request)
    metrics: dict[str, Any] = dict(ctx.snapshot().metrics)
    archived: dict[str, int] = {}
    for s in ctx.index.sku_stats():
        for verdict, n in s.archived.items():
            archived[verdict] = archived.get(verdict, 0) + n
    return Counters(
        **{k: metrics[k] for k in _COUNTERS if k in metrics},
        latency_ms={k: LatencyStats(**v) for k, v in (metrics.get("latency_ms") or {}).items()},
        gauges={
            k: float(v) for k, v in metrics.items() if k not in _NOT_GAUGES and isinstance(v, int | float)
        },
        archived=archived,
        to_review=ctx.index.count(PartFilter(disposition="none")),
    )


@router.get("/stats", tags=["station"], summary="Review statistics per SKU")
def get_stats(request: Request, _: Annotated[Principal, Depends(api_principal)]) -> list[SkuReview]:
    """False alarms (NG marked false alarm) and escapes (sampled OK confirmed defective) per SKU."""
    return [
        SkuReview(
            sku=s.sku,
            archived=s.archived,
            ng_reviewed=s.ng_reviewed,
            false_alarms=s.false_alarms,
            false_alarm_rate=s.false_alarm_rate,
            ok_reviewed=s.ok_reviewed,
            escapes=s.escapes,
            escape_rate=s.escape_rate,
        )
        for s in context(request).index.sku_stats()
    ]


def _tokens(request: Request) -> TokenStore:
    store = context(request).tokens
    if store is None:
        raise HttpError(404, "this review service has no token store")
    return store


@router.get("/tokens", tags=["auth"], summary="API tokens (engineers)")
def list_tokens(request: Request, _: Annotated[Principal, Depends(api_engineer)]) -> list[Token]:
    """Every API token made on this station, revoked ones too (never the tokens themselves)."""
    return [
        Token(
            name=t.name,
            role=t.role,
            created=utc(t.created),  # type: ignore[arg-type]
            created_by=t.created_by,
            revoked=utc(t.revoked),
        )
        for t in _tokens(request).tokens()
    ]


@router.delete(
    "/tokens/{name}",
    tags=["auth"],
    summary="Revoke an API token (engineers)",
    status_code=204,
    response_class=Response,
    responses={404: {"model": Error, "description": "No active token with this name."}},
)
def revoke_token(request: Request, name: str, _: Annotated[Principal, Depends(api_engineer)]) -> Response:
    """Refuse the token from the next request on (made again with ``edge review token create``)."""
    try:
        _tokens(request).revoke(name)
    except TokenError as exc:
        raise HttpError(404, str(exc), where="path.name") from None
    return Response(status_code=204)
