"""Who is asking, and may they: sessions, CSRF, roles and API tokens as FastAPI dependencies.

* **Pages** need a session cookie: a page request without one is redirected to the login page
  (:class:`LoginRequiredError`), anything else (images, forms) gets 401. Every form POST must carry the
  session's CSRF token in its ``csrf`` field (403 without).
* **The JSON API** takes ``Authorization: Bearer <token>`` (machine clients, :mod:`edge.review.tokens`) or the
  same session cookie as the pages (an HMI page on the station). A cookie request that changes something must
  send the session's CSRF token in ``X-CSRF-Token``: a browser attaches the cookie to a forged cross-site
  request, never this header. A bearer token is never sent by a browser on its own, so it needs none.
* **Roles**: ``operator`` reviews; ``engineer`` also changes golden banks, thresholds and API tokens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Literal, cast

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import FormData
from starlette.responses import Response

from edge.review.auth import Role, Session
from edge.review.context import ReviewContext
from edge.review.errors import HttpError

log = logging.getLogger(__name__)

SESSION_COOKIE = "edge_review"
PRE_COOKIE = "edge_review_pre"
"""Pre-session nonce of the login form (its CSRF token is derived from it)."""
CSRF_HEADER = "X-CSRF-Token"
MAX_FORM_FIELDS = 1000
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def context(request: Request) -> ReviewContext:
    """The review context the app was made with."""
    return cast(ReviewContext, request.app.state.review)


def client_address(request: Request) -> str:
    """The client's address as the socket saw it.

    ``X-Forwarded-For`` is not trusted (the server runs with uvicorn's proxy headers off): the review service
    is served directly on the line network, and a header any client can write must not choose whose login
    attempts are throttled.
    """
    return request.client.host if request.client else "unknown"


def is_https(request: Request) -> bool:
    """Whether the request came over TLS."""
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """Set a cookie: always ``HttpOnly`` and ``SameSite=Strict``, ``Secure`` under HTTPS (0: delete it)."""
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=is_https(request), httponly=True, samesite="strict"
    )


# -- pages ---------------------------------------------------------------------------------------------------


class LoginRequiredError(Exception):
    """A page was asked for without a session: answered with a redirect to the login page."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


def _session(request: Request) -> Session | None:
    return context(request).auth.verify(request.cookies.get(SESSION_COOKIE))


def page_session(request: Request) -> Session:
    """The session of a page request; without one the browser is sent to log in first."""
    session = _session(request)
    if session is None:
        # The still-encoded path: a part id may contain '/' or '?', which the decoded path has lost.
        raw = request.scope.get("raw_path") or request.url.path.encode()
        raise LoginRequiredError(bytes(raw).decode("latin-1"))
    return session


def ui_session(request: Request) -> Session:
    """The session of a non-page request (image, form): 401 without one."""
    session = _session(request)
    if session is None:
        raise HttpError(401, "log in first")
    return session


async def form_fields(request: Request) -> FormData:
    """The URL-encoded form of a POST (its size is capped by :class:`edge.review.middleware.BodyLimit`)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        raise HttpError(415, "forms must be application/x-www-form-urlencoded")
    if not ctype:
        return FormData()
    return await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)


def form_session(
    request: Request,
    session: Annotated[Session, Depends(ui_session)],
    form: Annotated[FormData, Depends(form_fields)],
) -> Session:
    """The session of a form POST whose ``csrf`` field is the session's CSRF token (403 otherwise)."""
    if not context(request).auth.check_csrf(session.sid, str(form.get("csrf") or "")):
        log.warning("review: POST %s by %s without a valid CSRF token", request.url.path, session.user.name)
        raise HttpError(403, "CSRF token missing or invalid: reload the page and try again")
    return session


def require_engineer(session: Session) -> None:
    """403 unless the session's user is an engineer."""
    if not session.user.is_engineer:
        raise HttpError(403, "only engineers may change golden banks and thresholds")


# -- the JSON API --------------------------------------------------------------------------------------------

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token made on the station: `edge review token create NAME --role operator`.",
)
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="session",
    description="The review UI's session cookie (log in at /login). Requests that change something must "
    f"also send the session's CSRF token (GET /api/v1/session) in the `{CSRF_HEADER}` header.",
)


@dataclass(frozen=True)
class Principal:
    """Who makes an API request.

    Attributes:
        name: Account name, or ``token:<name>`` for an API token (as recorded in dispositions).
        via: ``session`` (cookie) or ``token`` (bearer).
        session: The session when ``via`` is ``session``.

    """

    name: str
    role: Role
    via: Literal["session", "token"]
    session: Session | None = None

    @property
    def is_engineer(self) -> bool:
        """Engineers may also manage API tokens, golden banks and thresholds."""
        return self.role == "engineer"


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="edge-review"'}


def api_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    cookie: Annotated[str | None, Security(_cookie)],
) -> Principal:
    """Authenticate an API request (bearer token first, then session cookie; CSRF for cookie writes)."""
    ctx = context(request)
    if bearer is not None:
        token = ctx.tokens.verify(bearer.credentials) if ctx.tokens is not None else None
        if token is None:
            log.warning("review API: unknown or revoked token from %s", client_address(request))
            raise HttpError(
                401,
                "API token unknown or revoked",
                headers={"WWW-Authenticate": 'Bearer realm="edge-review", error="invalid_token"'},
                where="header.Authorization",
            )
        return Principal(f"token:{token.name}", token.role, "token")
    if request.headers.get("authorization"):
        raise HttpError(
            401, "Authorization must be 'Bearer <token>'", headers=_CHALLENGE, where="header.Authorization"
        )
    session = ctx.auth.verify(cookie)
    if session is None:
        raise HttpError(
            401,
            "authentication required: send 'Authorization: Bearer <token>' or log in (session cookie)",
            headers=_CHALLENGE,
        )
    if request.method not in SAFE_METHODS and not ctx.auth.check_csrf(
        session.sid, request.headers.get(CSRF_HEADER)
    ):
        log.warning(
            "review API: %s %s by %s without CSRF token", request.method, request.url.path, session.user.name
        )
        raise HttpError(
            403,
            f"CSRF token missing or invalid: a session-cookie request that changes something must send "
            f"{CSRF_HEADER} (from GET /api/v1/session)",
            where=f"header.{CSRF_HEADER}",
        )
    return Principal(session.user.name, session.user.role, "session", session)


def api_engineer(principal: Annotated[Principal, Depends(api_principal)]) -> Principal:
    """An API principal with the engineer role (403 for operators)."""
    if not principal.is_engineer:
        raise HttpError(403, f"{principal.name} is an operator: only engineers may do this")
    return principal
