"""The HTTP vocabulary the review UI needs on top of WSGI: requests, responses, cookies, security headers."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import SimpleCookie
from typing import Any

MAX_FORM_BYTES = 64 * 1024

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
)
#: Sent under HTTPS only (RFC 6797 ignores it over plain HTTP); one year, as browsers' preload lists expect.
HSTS = ("Strict-Transport-Security", "max-age=31536000")


class HttpError(Exception):
    """Ends a request with ``status`` and a short plain message."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message or HTTPStatus(status).phrase)
        self.status = status
        self.message = message or HTTPStatus(status).phrase


@dataclass
class Request:
    """One HTTP request (form bodies are parsed for POST, capped at :data:`MAX_FORM_BYTES`)."""

    method: str
    segments: list[str]
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    cookies: dict[str, str]
    https: bool
    host: str
    environ: Mapping[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> Request:
        """Parse a WSGI environ."""
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        # Routing works on the still-encoded path (the server puts it in ``edge.raw_path``), split into
        # segments and decoded one by one: a part id may contain '/', which PATH_INFO has already decoded.
        raw = environ.get("edge.raw_path")
        if raw is None:
            raw = urllib.parse.quote(str(environ.get("PATH_INFO", "/")).encode("latin-1"), safe="/")
        segments = [urllib.parse.unquote(s, errors="replace") for s in str(raw).split("/") if s]
        query = urllib.parse.parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        form: dict[str, list[str]] = {}
        if method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                raise HttpError(400, "bad Content-Length") from None
            if length > MAX_FORM_BYTES:
                raise HttpError(413, f"form larger than {MAX_FORM_BYTES} bytes")
            ctype = str(environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
            body = environ["wsgi.input"].read(length) if length else b""
            if ctype not in ("application/x-www-form-urlencoded", ""):
                raise HttpError(415, "forms must be application/x-www-form-urlencoded")
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        cookies: dict[str, str] = {}
        if environ.get("HTTP_COOKIE"):
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(str(environ["HTTP_COOKIE"]))
            except Exception:
                jar = SimpleCookie()
            cookies = {k: m.value for k, m in jar.items()}
        return cls(
            method=method,
            segments=segments,
            query=query,
            form=form,
            cookies=cookies,
            https=environ.get("wsgi.url_scheme") == "https",
            host=str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "localhost"),
            environ=environ,
        )

    @property
    def client(self) -> str:
        """The client's address as the socket saw it.

        ``X-Forwarded-For`` is not trusted: the review UI is served directly on the line network, and a
        header any client can write must not choose whose login attempts are throttled.
        """
        return str(self.environ.get("REMOTE_ADDR") or "unknown")

    @property
    def path(self) -> str:
        """The request path, re-encoded (safe to put in a ``next=`` link)."""
        return "/" + "/".join(urllib.parse.quote(s, safe="") for s in self.segments)

    def arg(self, name: str, default: str = "") -> str:
        """First query value of ``name``."""
        return self.query.get(name, [default])[0]

    def field(self, name: str, default: str = "") -> str:
        """First form value of ``name``."""
        return self.form.get(name, [default])[0]

    def fields(self, name: str) -> list[str]:
        """Every form value of ``name`` (checkboxes)."""
        return list(self.form.get(name, []))


@dataclass
class Response:
    """What a view returns."""

    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    cache: str = "no-store"

    @classmethod
    def redirect(cls, location: str, status: int = 303) -> Response:
        """Redirect (303: a POST becomes a GET)."""
        return cls(status=status, headers=[("Location", location)], content_type="text/plain; charset=utf-8")

    @classmethod
    def text(cls, message: str, status: int = 200) -> Response:
        """A plain-text response."""
        return cls(message.encode("utf-8"), status, "text/plain; charset=utf-8")

    def set_cookie(
        self, name: str, value: str, *, max_age: int | None, secure: bool, path: str = "/"
    ) -> None:
        """Add a cookie: always ``HttpOnly`` and ``SameSite=Strict``, ``Secure`` under HTTPS."""
        parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Strict"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if secure:
            parts.append("Secure")
        self.headers.append(("Set-Cookie", "; ".join(parts)))

    def wsgi_headers(self, https: bool = False) -> list[tuple[str, str]]:
        """Every header to send; under HTTPS also HSTS (browsers never fall back to plain HTTP)."""
        return [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            ("Cache-Control", self.cache),
            *SECURITY_HEADERS,
            *((HSTS,) if https else ()),
            *self.headers,
        ]


def status_line(status: int) -> str:
    """``"404 Not Found"``."""
    return f"{status} {HTTPStatus(status).phrase}"


def query_string(params: Mapping[str, str | None] | Iterable[tuple[str, str]]) -> str:
    """``a=1&b=2`` without empty values."""
    items = params.items() if isinstance(params, Mapping) else params
    return urllib.parse.urlencode([(k, v) for k, v in items if v])


def part_url(part_id: str, suffix: str = "") -> str:
    """URL of a part's page (ids are percent-encoded: PLC part ids may contain any printable character)."""
    return f"/parts/{urllib.parse.quote(part_id, safe='')}{suffix}"
