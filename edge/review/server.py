"""The review web server: a WSGI app (routing, login, CSRF) on a threaded ``wsgiref`` server, HTTPS optional.

Every path but ``/healthz``, ``/login`` and ``/static/*`` needs a session: a page request without one is
redirected to the login page, anything else gets 401. Every POST must carry the session's CSRF token (403
without). Engineer-only actions answer 403 to operators.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from edge.review import views
from edge.review.views import ReviewContext
from edge.review.web import HttpError, Request, Response, query_string, status_line

log = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class ReviewApp:
    """The WSGI application. Construct with a :class:`~edge.review.views.ReviewContext`."""

    def __init__(self, ctx: ReviewContext) -> None:
        self.ctx = ctx

    def __call__(self, environ: Mapping[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Handle one request."""
        try:
            req = Request.from_environ(environ)
            response = self.handle(req)
        except HttpError as exc:
            response = Response.text(exc.message, exc.status)
        except Exception:
            log.exception("review: request failed")
            response = Response.text("internal error (see the station log)", 500)
        https = environ.get("wsgi.url_scheme") == "https"
        start_response(status_line(response.status), response.wsgi_headers(https))
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [response.body]

    def handle(self, req: Request) -> Response:
        """Authenticate, check CSRF, route."""
        ctx, method, segs = self.ctx, req.method, req.segments
        if method == "HEAD":
            method = "GET"
        match method, segs:
            case "GET", ["healthz"]:
                return Response(b'{"status":"ok"}', 200, "application/json")
            case "GET", ["static", name]:
                return views.static_file(name)
            case "GET", ["login"]:
                return views.login_form(ctx, req)
            case "POST", ["login"]:
                return views.login(ctx, req)
        session = views.require_auth(ctx.auth, req)
        if session is None:
            page = not segs or (segs[0] in ("parts", "stats", "metrics") and len(segs) <= 2)
            if method == "GET" and page:
                return Response.redirect("/login?" + query_string({"next": req.path}))
            raise HttpError(401, "log in first")
        if method == "POST" and not ctx.auth.check_csrf(session.sid, req.field("csrf")):
            log.warning("review: POST %s by %s without a valid CSRF token", req.path, session.user.name)
            raise HttpError(403, "CSRF token missing or invalid: reload the page and try again")
        match method, segs:
            case "GET", []:
                return views.status_page(ctx, req, session)
            case "GET", ["metrics"]:
                return views.metrics_page(ctx, req, session)
            case "GET", ["parts"]:
                return views.parts_page(ctx, req, session)
            case "GET", ["parts", part_id]:
                return views.part_page(ctx, req, session, part_id)
            case "GET", ["parts", part_id, "image", kind]:
                return views.part_image(ctx, req, session, part_id, kind)
            case "POST", ["parts", part_id, "disposition"]:
                return views.disposition(ctx, req, session, part_id)
            case "GET", ["stats"]:
                return views.stats_page(ctx, req, session)
            case "POST", ["promote"]:
                return views.promote(ctx, req, session)
            case "POST", ["threshold"]:
                return views.threshold(ctx, req, session)
            case "POST", ["logout"]:
                return views.logout(ctx, req, session)
        if method not in ("GET", "POST"):
            raise HttpError(405, "method not allowed")
        raise HttpError(404, "not found")


@dataclass(frozen=True)
class TlsFiles:
    """Server certificate and key (PEM)."""

    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        """A server context: TLS 1.2+, the default (secure) ciphers."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx


class _Handler(WSGIRequestHandler):
    timeout = 30  # a client that stalls mid-request is dropped (no slowloris on a 2-core station)

    def get_environ(self) -> dict[str, Any]:
        env: dict[str, Any] = super().get_environ()
        env["edge.raw_path"] = self.path.split("?", 1)[0]
        if isinstance(self.connection, ssl.SSLSocket):
            env["HTTPS"] = "on"
        return env

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("review %s: " + format, self.address_string(), *args)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    tls: ssl.SSLContext | None = None

    def server_bind(self) -> None:
        if ":" in self.server_address[0]:
            self.address_family = socket.AF_INET6
        super().server_bind()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        if self.tls is not None:
            # The handshake runs in the request's own thread (finish_request), not in the accept loop,
            # so a client that never completes it cannot block other clients.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(_Handler.timeout)
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError) as exc:
                log.debug("review: TLS handshake with %s failed: %s", client_address, exc)
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("review: connection from %s ended with an error", client_address, exc_info=True)


class ReviewServer:
    """Serves a :class:`ReviewApp` on its own thread.

    Args:
        app: The WSGI app.
        bind: Address to listen on.
        port: Port (0: a free one; see :attr:`port`).
        tls: Serve HTTPS with this certificate.

    """

    def __init__(
        self, app: ReviewApp, bind: str = "127.0.0.1", port: int = 8080, tls: TlsFiles | None = None
    ) -> None:
        self.app = app
        self._server = _Server((bind, port), _Handler, bind_and_activate=False)
        if tls is not None:
            self._server.tls = tls.context()
        try:
            self._server.server_bind()
            self._server.server_activate()
        except OSError:
            self._server.server_close()
            raise
        self._server.set_app(app)
        self.bind = bind
        self.port: int = self._server.server_address[1]
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, name="review-ui", daemon=True)

    @property
    def url(self) -> str:
        """Base URL (``http://127.0.0.1:8080``)."""
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "") else ("[::1]" if self.bind == "::" else self.bind)
        return f"{self.scheme}://{host}:{self.port}"

    def start(self) -> ReviewServer:
        """Start serving."""
        self._thread.start()
        log.info("review UI on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()
