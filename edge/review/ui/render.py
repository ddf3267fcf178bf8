"""Rendering of the review pages: the template environment, its filters, URLs, static files."""

from __future__ import annotations

import math
import mimetypes
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import jinja2
from fastapi import Request
from starlette.responses import HTMLResponse, Response

from edge.review.auth import Session
from edge.review.context import ReviewContext
from edge.review.errors import HttpError

STATIC_FILES = frozenset({"review.css", "review.js", "favicon.svg"})


def part_url(part_id: str, suffix: str = "") -> str:
    """URL of a part's page (ids are percent-encoded: PLC part ids may contain any printable character)."""
    return f"/parts/{urllib.parse.quote(part_id, safe='')}{suffix}"


def query_string(params: Mapping[str, str | None] | Iterable[tuple[str, str]]) -> str:
    """``a=1&b=2`` without empty values."""
    items = params.items() if isinstance(params, Mapping) else params
    return urllib.parse.urlencode([(k, v) for k, v in items if v])


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


TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("edge.review", "templates"),
    autoescape=True,  # every value a part id, comment or defect class brings in is escaped
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters.update(when=_when, pct=_pct, num=_num, part_url=part_url)


def render(
    ctx: ReviewContext,
    name: str,
    request: Request,
    session: Session | None,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    """Render a page with the common values (station, user, CSRF token, navigation)."""
    segments = [s for s in request.url.path.split("/") if s]
    page = TEMPLATES.get_template(name).render(
        station=ctx.station,
        session=session,
        csrf=ctx.auth.csrf_token(session.sid) if session else "",
        prometheus_url=ctx.prometheus_url,
        path=segments[0] if segments else "",
        **values,
    )
    return HTMLResponse(page, status)


def static_file(name: str) -> Response:
    """A file of the package's ``static`` folder, by name from a fixed list."""
    if name not in STATIC_FILES:
        raise HttpError(404, "not found")
    data = resources.files("edge.review").joinpath("static").joinpath(name).read_bytes()
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype.endswith("javascript"):
        ctype += "; charset=utf-8"
    return Response(data, 200, media_type=ctype, headers={"Cache-Control": "public, max-age=3600"})
