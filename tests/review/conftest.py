"""Fixtures for the review station tests: archived parts from the real inspection core, a running review UI.

The parts are synthetic (``edge.synthetic.parts``) but inspected by the real inspector (PyTorch
encoders at 128 x 128), so the archive holds genuine heatmaps, boxes and templates.
"""

from __future__ import annotations

import http.client
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from edge.capture.frame import Frame
from edge.capture.part import Part
from edge.engines.encoders import torch_encoders
from edge.inspection.inspector import Inspector
from edge.inspection.types import InspectionResult, Verdict
from edge.model.spec import ModelSpec
from edge.mqtt.payloads import VerdictPayload
from edge.review.auth import User, hash_password
from edge.review.context import DispositionSink
from edge.review.feedback import GoldenFeedback
from edge.review.live import RecentPart, StationSnapshot
from edge.review.server import TlsFiles
from edge.review.station import ReviewSetup, StationReview
from edge.runtime.archive import ImageArchive, bank_templates
from edge.synthetic.parts import make_part

SIZE = 128
PASSWORDS = {"olga": "operator-pw", "erik": "engineer-pw"}


@dataclass(frozen=True)
class Inspected:
    """A part as the pipeline hands it to its listeners."""

    part: Part
    verdict: VerdictPayload
    result: InspectionResult | None


@pytest.fixture(scope="session")
def inspector() -> Inspector:
    """The real inspector with a synthetic SKU ``plate`` enrolled (4 golden parts)."""
    rng = np.random.default_rng(11)
    inspector = Inspector(torch_encoders(ModelSpec(input_size=(SIZE, SIZE))))
    inspector.enroll("plate", [(f"golden-{i}", make_part(rng, SIZE).image) for i in range(4)])
    return inspector


def inspect(inspector: Inspector, seq: int, image: np.ndarray, part_id: str | None = None) -> Inspected:
    frame = Frame(
        np.ascontiguousarray(image), seq=seq, timestamp=time.time(), source="test", pixel_format="RGB8"
    )
    part = Part(part_id=part_id or f"st1-{seq:09d}", seq=seq, sku="plate", frame=frame)
    result = inspector.inspect(image, "plate")
    verdict = VerdictPayload.from_inspection(
        result,
        part_id=part.part_id,
        seq=seq,
        model_id=inspector.model_id,
        backend="torch",
        frame_ts=frame.timestamp,
    )
    return Inspected(part, verdict, result)


@pytest.fixture(scope="session")
def inspected(inspector: Inspector) -> list[Inspected]:
    """Two defective parts (NG), one good part (OK), inspected once per session."""
    rng = np.random.default_rng(5)
    out = [
        inspect(inspector, 1, make_part(rng, SIZE, "scratch").image),
        inspect(inspector, 2, make_part(rng, SIZE).image),
        inspect(inspector, 3, make_part(rng, SIZE, "spot").image),
    ]
    assert [i.verdict.verdict for i in out] == [Verdict.NG, Verdict.OK, Verdict.NG], "synthetic parts changed"
    return out


def not_inspected(seq: int) -> Inspected:
    part = Part(part_id=f"st1-{seq:09d}", seq=seq, sku="plate")
    return Inspected(
        part,
        VerdictPayload.uninspected(part_id=part.part_id, seq=seq, reason="overload: queue full", sku="plate"),
        None,
    )


@pytest.fixture
def archive(tmp_path: Path, inspector: Inspector, inspected: list[Inspected]) -> Iterator[ImageArchive]:
    """An archive holding the inspected parts (every OK sampled) plus one NOT_INSPECTED part."""
    archive = ImageArchive(
        tmp_path / "archive", ok_sample_rate=1.0, seed=0, templates=bank_templates(lambda: inspector.banks)
    )
    for item in [*inspected, not_inspected(4)]:
        archive(item.part, item.verdict, item.result)
    assert archive.wait_idle(20)
    assert archive.written == 4
    yield archive
    archive.close()


@dataclass
class Ui:
    """A running review UI and an HTTP helper for it."""

    review: StationReview
    published: list[object] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.review.url

    def request(
        self,
        method: str,
        path: str,
        *,
        form: Mapping[str, str | list[str]] | None = None,
        cookie: str | None = None,
    ) -> tuple[int, http.client.HTTPMessage, bytes, list[str]]:
        """One request; returns status, headers (names case-insensitive), body and every Set-Cookie."""
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme == "https":
            import ssl

            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parsed.hostname or "", parsed.port, context=ctx, timeout=30
            )
        else:
            conn = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=30)
        headers = {}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if cookie:
            headers["Cookie"] = cookie
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return (
                response.status,
                response.headers,
                data,
                response.headers.get_all("Set-Cookie") or [],
            )
        finally:
            conn.close()

    def feedback(self, path: str, form: Mapping[str, str | list[str]], cookie: str) -> tuple[int, bytes]:
        """POST a feedback form (promote, threshold) and follow its job; the outcome page and its status."""
        status, headers, body, _ = self.request("POST", path, form=form, cookie=cookie)
        if status != 303:
            return status, body  # refused before a job started
        location = headers["Location"]
        assert location.startswith("/stats?job="), location
        deadline = time.monotonic() + 120
        while True:
            status, _, body, _ = self.request("GET", location, cookie=cookie)
            if b'aria-busy="true"' not in body:
                return status, body
            assert time.monotonic() < deadline, "the feedback job did not finish within 120 s"
            time.sleep(0.1)

    def login(self, user: str) -> tuple[str, str]:
        """Log in; returns ``(cookie header, CSRF token of the session)``."""
        status, _, body, cookies = self.request("GET", "/login")
        assert status == 200
        pre = _cookie(cookies, "edge_review_pre")
        csrf = _csrf(body)
        status, _, _, cookies = self.request(
            "POST",
            "/login",
            form={"user": user, "password": PASSWORDS[user], "csrf": csrf, "next": "/"},
            cookie=pre,
        )
        assert status == 303, status
        session = _cookie(cookies, "edge_review")
        status, _, body, _ = self.request("GET", "/", cookie=session)
        assert status == 200
        return session, _csrf(body)


def _cookie(set_cookies: list[str], name: str) -> str:
    for header in set_cookies:
        if header.startswith(name + "="):
            return header.split(";")[0]
    raise AssertionError(f"no {name} cookie in {set_cookies}")


def _csrf(body: bytes) -> str:
    text = body.decode()
    marker = 'name="csrf" value="'
    start = text.index(marker) + len(marker)
    return text[start : text.index('"', start)]


UiFactory = Callable[..., Ui]


def users() -> tuple[User, ...]:
    # Few iterations keep logins fast in tests; the format is the production one.
    return (
        User("olga", "operator", hash_password(PASSWORDS["olga"], iterations=1000)),
        User("erik", "engineer", hash_password(PASSWORDS["erik"], iterations=1000)),
    )


def snapshot(inspected: list[Inspected]) -> StationSnapshot:
    recent = [
        RecentPart(
            i.verdict.part_id,
            i.verdict.seq,
            "plate",
            i.verdict.verdict.value,
            i.verdict.score,
            i.verdict.threshold,
            time.time(),
        )
        for i in reversed(inspected)
    ]
    return StationSnapshot(
        status="online",
        sku="plate",
        config="st1 v1 · 0123456789ab",
        config_ref={"id": "st1", "version": 1, "hash": "0123456789abcdef"},
        backend="torch",
        metrics={
            "throughput_pps": 2.5,
            "ng_rate": 0.12,
            "parts_inspected": 40,
            "queue_depth": 0,
            "latency_ms": {"total": {"p50": 80.0, "p90": 95.0, "p99": 120.0, "max": 130.0}},
        },
        recent=recent,
        thresholds={"plate": 1.1},
    )


@pytest.fixture
def ui_factory(tmp_path: Path, archive: ImageArchive, inspected: list[Inspected]) -> Iterator[UiFactory]:
    """Start review UIs over ``archive`` (port 0 on loopback); all stopped at the end."""
    started: list[StationReview] = []

    def factory(
        *,
        publish: DispositionSink | None = None,
        tls: TlsFiles | None = None,
        feedback: GoldenFeedback | None = None,
    ) -> Ui:
        setup = ReviewSetup(
            bind="127.0.0.1",
            port=0,
            tls=tls,
            archive_root=archive.root,
            key_file=tmp_path / "data" / "review-session.key",
            users=users(),
            station="st1",
            tokens_file=tmp_path / "data" / "review-tokens.json",
        )
        ui = Ui(
            StationReview(
                setup,
                status=lambda: snapshot(inspected),
                publish=None,
                feedback=feedback,
                prometheus_url="http://127.0.0.1:9400/metrics",
            )
        )
        ui.review.context.publish = publish if publish is not None else ui.published.append
        started.append(ui.review)
        return ui

    yield factory
    for review in started:
        review.stop()


def api_token(ui: Ui, name: str, role: str) -> str:
    """A new API token of ``ui``'s station (as ``edge review token create`` makes it)."""
    assert ui.review.context.tokens is not None
    token, _ = ui.review.context.tokens.create(name, role, created_by="test")
    return token


@pytest.fixture
def ui(ui_factory: UiFactory) -> Ui:
    """A plain HTTP review UI whose dispositions are collected in ``ui.published``."""
    return ui_factory()
