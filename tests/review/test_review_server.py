"""The uvicorn server wrapper: bound up front, keep-alive without delayed-ACK stalls, a clean stop."""

from __future__ import annotations

import http.client
import statistics
import time

import pytest

from edge.review.app import create_app
from edge.review.server import ReviewServer
from review.conftest import Ui


def test_keep_alive_requests_do_not_wait_for_delayed_acks(ui: Ui) -> None:
    # Without TCP_NODELAY on accepted sockets each response on a kept-alive connection waits ~40 ms for the
    # client's delayed ACK; that is what a page with 4 images and an HMI polling every 100 ms would feel.
    conn = http.client.HTTPConnection("127.0.0.1", ui.review.server.port, timeout=30)
    latencies = []
    try:
        for _ in range(15):
            start = time.perf_counter()
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            assert response.read() == b'{"status":"ok"}'
            latencies.append(time.perf_counter() - start)
    finally:
        conn.close()
    assert statistics.median(latencies) < 0.02, latencies


def test_a_busy_port_fails_at_construction_and_stop_frees_the_port() -> None:
    first = ReviewServer(create_app(None), "127.0.0.1", 0).start()
    try:
        with pytest.raises(OSError):
            ReviewServer(create_app(None), "127.0.0.1", first.port)
    finally:
        first.stop()
    again = ReviewServer(create_app(None), "127.0.0.1", first.port).start()
    again.stop()
