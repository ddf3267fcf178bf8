"""Login and logout pages: the CSRF-protected login form, throttled password checks, the session cookie."""

from __future__ import annotations

import logging
import math
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from edge.review.auth import SESSION_TTL_S, Session
from edge.review.errors import HttpError
from edge.review.security import (
    PRE_COOKIE,
    SESSION_COOKIE,
    client_address,
    context,
    form_fields,
    form_session,
    set_cookie,
)
from edge.review.ui.render import TEMPLATES

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


def _safe_next(target: str) -> str:
    """Only same-site paths: ``//host`` or ``https://...`` would send the user elsewhere after login."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_page(request: Request, next_path: str, error: str = "", status: int = 200) -> HTMLResponse:
    """The login page; a pre-session nonce cookie carries the login form's CSRF token."""
    ctx = context(request)
    nonce = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(18)
    page = TEMPLATES.get_template("login.html").render(
        station=ctx.station,
        session=None,
        csrf=ctx.auth.csrf_token("pre:" + nonce),
        next=_safe_next(next_path),
        error=error,
        prometheus_url=None,
        path="login",
    )
    response = HTMLResponse(page, status)
    set_cookie(response, request, PRE_COOKIE, nonce, 3600)
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    """The login page."""
    return _login_page(request, request.query_params.get("next", "/"))


@router.post("/login")
def login(request: Request, form: Annotated[FormData, Depends(form_fields)]) -> Response:
    """Check the login form (CSRF against the pre-session nonce), then issue the session cookie."""
    ctx = context(request)
    nonce = request.cookies.get(PRE_COOKIE, "")
    if not nonce or not ctx.auth.check_csrf("pre:" + nonce, str(form.get("csrf") or "")):
        raise HttpError(403, "CSRF token missing or invalid: reload the login page")
    name = str(form.get("user") or "").strip()
    next_path = str(form.get("next") or "/")
    address = client_address(request)
    wait = ctx.auth.wait_s(name, address)
    if wait > 0:
        seconds = math.ceil(wait)
        response = _login_page(
            request, next_path, f"Too many wrong passwords: try again in {seconds} s.", 429
        )
        response.headers["Retry-After"] = str(seconds)
        return response
    user = ctx.auth.login(name, str(form.get("password") or ""), address)
    if user is None:
        failures = ctx.auth.throttle.failures(name)
        if failures and failures % 10 == 0:
            # Guessing spread over many addresses shows only here: tell whoever reads the log.
            log.warning("review: %d wrong passwords for user name %r (last from %s)", failures, name, address)
        return _login_page(request, next_path, "Wrong user name or password.", 401)
    cookie, _ = ctx.auth.issue(user)
    log.info("review: %s (%s) logged in", user.name, user.role)
    redirect = RedirectResponse(_safe_next(next_path), 303)
    set_cookie(redirect, request, SESSION_COOKIE, cookie, int(SESSION_TTL_S))
    set_cookie(redirect, request, PRE_COOKIE, "", 0)
    return redirect


@router.post("/logout")
def logout(request: Request, session: Annotated[Session, Depends(form_session)]) -> Response:
    """Revoke the session."""
    context(request).auth.revoke(session)
    response = RedirectResponse("/login", 303)
    set_cookie(response, request, SESSION_COOKIE, "", 0)
    return response
