"""The review service as one ASGI app: the pages, the JSON API, their error answers and middleware.

Every path but ``/healthz``, ``/login``, ``/static/*`` and ``/api/v1/openapi.json`` needs a session or (API)
a token: see :mod:`edge.review.security`. Errors are plain text on pages and :class:`Error` JSON under
``/api/``, always with the security headers (:mod:`edge.review.middleware`).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from edge.review.api import parts as api_parts
from edge.review.api import station as api_station
from edge.review.api.common import PREFIX
from edge.review.api.models import Error
from edge.review.api.openapi import API_VERSION, DESCRIPTION, TITLE, openapi_document
from edge.review.context import ReviewContext
from edge.review.errors import HttpError
from edge.review.middleware import BodyLimit, HeadAsGet, SecurityHeaders, security_headers
from edge.review.security import LoginRequiredError
from edge.review.ui import feedback as ui_feedback
from edge.review.ui import login as ui_login
from edge.review.ui import parts as ui_parts
from edge.review.ui.render import query_string, static_file

log = logging.getLogger(__name__)

OPENAPI_PATH = f"{PREFIX}/openapi.json"


def _error(request: Request, status: int, message: str, where: str | None = None, **headers: str) -> Response:
    """JSON under ``/api/``, plain text elsewhere (what a browser shows as it is)."""
    if request.url.path.startswith("/api/"):
        body = Error(status=status, error=HTTPStatus(status).phrase, message=message, where=where)
        return JSONResponse(body.model_dump(), status, headers=headers)
    return PlainTextResponse(message, status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    return _error(request, exc.status, exc.message, exc.where, **exc.headers)


async def _starlette_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "not found" if exc.status_code == 404 else str(exc.detail)
    if exc.status_code == 404 and request.url.path.startswith("/api/"):
        message = f"no API route {request.method} {request.url.path}"
    return _error(request, exc.status_code, message, **(exc.headers or {}))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        problems.append((where, f"{where}: {error.get('msg', 'invalid')}"))
    first = problems[0][0] if problems else None
    return _error(request, 400, "; ".join(m for _, m in problems) or "bad request", first)


async def _login_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequiredError)
    return RedirectResponse("/login?" + query_string({"next": exc.target}), 303)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Answered by Starlette's outermost middleware, outside SecurityHeaders: the headers are added here.
    log.error("review: %s %s failed", request.method, request.url.path, exc_info=exc)
    response = _error(request, 500, "internal error (see the station log)")
    for name, value in security_headers(request.url.scheme == "https"):
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


def create_app(ctx: ReviewContext | None) -> FastAPI:
    """The review app over ``ctx`` (``None``: only to generate the OpenAPI document)."""
    app = FastAPI(
        title=TITLE,
        version=API_VERSION,
        description=DESCRIPTION,
        # The document is served by the route below; FastAPI's Swagger UI and ReDoc pages load scripts
        # from a CDN, which the content security policy (and a line network) does not allow.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # Operation ids are the route functions' names (list_parts, get_part ...): generated clients name
        # their methods after them.
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.review = ctx
    app.include_router(api_parts.router)
    app.include_router(api_station.router)
    app.include_router(ui_login.router)
    app.include_router(ui_parts.router)
    app.include_router(ui_feedback.router)

    @app.get("/healthz", tags=["health"], summary="Liveness (no login)")
    def healthz() -> dict[str, str]:
        """``{"status": "ok"}`` while the review service answers."""
        return {"status": "ok"}

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        return static_file(name)

    document: dict[str, Any] = {}

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi() -> JSONResponse:
        if not document:
            document.update(openapi_document(app.routes))
        return JSONResponse(document)

    app.add_exception_handler(HttpError, _http_error)
    app.add_exception_handler(HTTPException, _starlette_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(LoginRequiredError, _login_redirect)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(BodyLimit)
    app.add_middleware(HeadAsGet)
    app.add_middleware(SecurityHeaders)  # added last: outermost, so it also heads 413s and 404s
    return app


def openapi_of_app() -> dict[str, Any]:
    """The OpenAPI document, without a running service (``edge review openapi``, the drift test)."""
    return openapi_document(create_app(None).routes)
