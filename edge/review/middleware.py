"""ASGI middleware of the review service: security headers, a cap on request bodies, HEAD as GET."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024
"""Forms and JSON bodies of the review service are a few hundred bytes; nothing needs more."""

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


def security_headers(https: bool) -> list[tuple[str, str]]:
    """The headers every response carries; under HTTPS also HSTS (browsers never fall back to plain HTTP)."""
    return [*SECURITY_HEADERS, *((HSTS,) if https else ())]


class SecurityHeaders:
    """Adds :func:`security_headers` to every response, and ``Cache-Control: no-store`` unless it has one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in security_headers(https):
                    headers[name] = value
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, by ``Content-Length`` or while they arrive."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = 0
        # Starlette's exception, not HttpError: FastAPI turns any other error raised while it reads a JSON
        # body into a generic 400, but passes this one on to the app's handler.
        too_large = HTTPException(413, f"request body larger than {self.limit} bytes")

        async def counting_receive() -> Message:
            nonlocal seen
            if seen > self.limit:
                raise too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_large  # inside the route: answered by the app's HttpError handler
            return message

        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                seen = int(value)  # refused at the route's first read, without reading a byte of it
        await self.app(scope, counting_receive, send)


class HeadAsGet:
    """Answers ``HEAD`` like ``GET`` without the body (monitoring probes and link checkers send it).

    FastAPI routes declare GET only; running the GET route keeps the headers (length, type) identical.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request."""
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)
