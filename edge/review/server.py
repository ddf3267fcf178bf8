"""Serving the review app: uvicorn on its own thread, on a socket bound up front, HTTPS optional.

The socket is bound in the constructor, so a busy port fails there (the station logs it and keeps running)
and port 0 yields the real port before the first request. uvicorn runs the asyncio loop on a daemon thread;
it installs no signal handlers off the main thread, so the station keeps its own. Settings that matter:

* ``proxy_headers=False``: ``X-Forwarded-For`` from any client would otherwise choose whose login
  attempts are throttled (uvicorn trusts it from 127.0.0.1 by default).
* h11, the pure-Python HTTP/1.1 parser: the review service serves a handful of people, not a fleet; no
  compiled extras to install on a station.
* TLS with this module's context (TLS 1.2+); the handshake runs on the event loop, never blocking other
  clients, and a slow client holds no thread (pages run on a worker pool).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger(__name__)

START_TIMEOUT_S = 15.0


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


class ReviewServer:
    """Serves an ASGI app (:func:`edge.review.app.create_app`) on its own thread.

    Args:
        app: The app.
        bind: Address to listen on.
        port: Port (0: a free one; see :attr:`port`).
        tls: Serve HTTPS with this certificate.

    Raises:
        OSError: The address cannot be bound (port busy, address not on this machine).
        ssl.SSLError: The certificate or key cannot be loaded.

    """

    def __init__(
        self, app: ASGIApp, bind: str = "127.0.0.1", port: int = 8080, tls: TlsFiles | None = None
    ) -> None:
        tls_context = tls.context() if tls is not None else None
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        # proto must say TCP: asyncio sets TCP_NODELAY only on accepted sockets whose proto is IPPROTO_TCP,
        # and without it every keep-alive response waits for the client's delayed ACK (44 ms, not 1 ms here).
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((bind, port))
            self._socket.listen(128)  # clients queue until the loop serves (start)
        except OSError:
            self._socket.close()
            raise
        config = uvicorn.Config(
            app,
            http="h11",
            ws="none",
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            log_config=None,  # the station's logging, not uvicorn's
            log_level="warning",  # its start-up lines would repeat ours; its errors still show
            access_log=False,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=3,
        )
        config.load()
        config.ssl = tls_context  # after load(): uvicorn would build its own context from file names
        self._server = uvicorn.Server(config)
        self.bind = bind
        self.port: int = self._socket.getsockname()[1]
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="review-ui", daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL (``http://127.0.0.1:8080``)."""
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "") else ("[::1]" if self.bind == "::" else self.bind)
        return f"{self.scheme}://{host}:{self.port}"

    def start(self) -> ReviewServer:
        """Start serving; returns once the server accepts requests.

        Raises:
            RuntimeError: The server did not start within :data:`START_TIMEOUT_S`.

        """
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"review UI on {self.url} did not start (see the log)")
            time.sleep(0.01)
        log.info("review UI on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving (open requests get a few seconds) and close the socket."""
        if self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(5)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(2)
        self._socket.close()
