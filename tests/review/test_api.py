"""The JSON API over real HTTP (uvicorn on loopback, httpx): authentication, tokens, roles, CSRF, parts."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

import httpx
import pytest

from review.conftest import Ui, api_token

NG = "st1-000000001"  # NG with every image
OK = "st1-000000002"
SKIPPED = "st1-000000004"  # NOT_INSPECTED, no images
API = "/api/v1"


def url(part_id: str, suffix: str = "") -> str:
    return f"{API}/parts/{urllib.parse.quote(part_id, safe='')}{suffix}"


@pytest.fixture
def client(ui: Ui) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ui.url, timeout=30) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_every_route_needs_a_token_or_a_session(ui: Ui, client: httpx.Client) -> None:
    paths = [url(NG), url(NG, "/images/frame"), url(NG, "/dispositions")]
    paths += [f"{API}/{p}" for p in ("parts", "station", "counters", "stats", "session", "tokens")]
    for path in paths:
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        body = r.json()
        assert body["status"] == 401 and "Authorization: Bearer" in body["message"], body
    r = client.post(url(NG, "/dispositions"), json={"disposition": "false_alarm"})
    assert r.status_code == 401 and ui.published == []
    # A wrong token, a revoked-looking one and another scheme: 401 naming the header.
    for header in ("Bearer edge_not-a-token", "Bearer", "Basic b2xnYTpvcGVyYXRvci1wdw=="):
        r = client.get(f"{API}/parts", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.json()["where"] in ("header.Authorization", None), r.json()
    # What stays open: liveness and the API description.
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get(f"{API}/openapi.json").json()["info"]["version"] == "1.0.0"


def test_a_token_works_until_it_is_revoked(ui: Ui, client: httpx.Client) -> None:
    token = api_token(ui, "mes", "operator")
    r = client.get(f"{API}/session", headers=bearer(token))
    assert r.json() == {"name": "token:mes", "role": "operator", "via": "token", "csrf_token": None}
    assert client.get(f"{API}/parts", headers=bearer(token)).status_code == 200
    assert ui.review.context.tokens is not None
    ui.review.context.tokens.revoke("mes")  # what `edge review token revoke mes` does, from another process
    r = client.get(f"{API}/parts", headers=bearer(token))
    assert r.status_code == 401 and r.json()["message"] == "API token unknown or revoked"
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_an_operator_reviews_but_cannot_manage_tokens(ui: Ui, client: httpx.Client) -> None:
    operator = api_token(ui, "hmi", "operator")
    engineer = api_token(ui, "mes-admin", "engineer")
    r = client.post(
        url(NG, "/dispositions"),
        json={"disposition": "confirm_defect", "defect_class": "scratch", "comment": "from the HMI"},
        headers=bearer(operator),  # no CSRF token: a bearer token is never sent by a browser on its own
    )
    assert r.status_code == 201, r.text
    stored = r.json()
    assert (stored["user"], stored["disposition"], stored["published"]) == (
        "token:hmi",
        "confirm_defect",
        True,
    )
    assert [p.user for p in ui.published] == ["token:hmi"]  # type: ignore[attr-defined]
    for method, path in (("GET", "/tokens"), ("DELETE", "/tokens/mes-admin")):
        r = client.request(method, API + path, headers=bearer(operator))
        assert r.status_code == 403 and "only engineers" in r.json()["message"], (method, path)
    names = [t["name"] for t in client.get(f"{API}/tokens", headers=bearer(engineer)).json()]
    assert names == ["hmi", "mes-admin"]
    assert client.delete(f"{API}/tokens/hmi", headers=bearer(engineer)).status_code == 204
    assert client.get(f"{API}/parts", headers=bearer(operator)).status_code == 401
    r = client.delete(f"{API}/tokens/hmi", headers=bearer(engineer))
    assert r.status_code == 404 and r.json()["where"] == "path.name"


def test_session_cookie_writes_need_the_csrf_header(ui: Ui, client: httpx.Client) -> None:
    cookie, _ = ui.login("olga")
    headers = {"Cookie": cookie}
    me = client.get(f"{API}/session", headers=headers).json()
    assert (me["name"], me["role"], me["via"]) == ("olga", "operator", "session") and me["csrf_token"]
    body = {"disposition": "false_alarm", "comment": "glare"}
    for token in (None, "", "forged", ui.review.context.auth.csrf_token("another-session")):
        extra = {} if token is None else {"X-CSRF-Token": token}
        r = client.post(url(NG, "/dispositions"), json=body, headers={**headers, **extra})
        assert r.status_code == 403, token
        assert r.json()["where"] == "header.X-CSRF-Token"
    assert ui.review.index.dispositions(NG) == []
    r = client.post(
        url(NG, "/dispositions"), json=body, headers={**headers, "X-CSRF-Token": me["csrf_token"]}
    )
    assert r.status_code == 201 and r.json()["user"] == "olga"
    history = client.get(url(NG, "/dispositions"), headers=headers).json()
    assert [(d["disposition"], d["comment"]) for d in history] == [("false_alarm", "glare")]


def test_parts_are_paged_newest_first_and_filtered(ui: Ui, client: httpx.Client) -> None:
    auth = bearer(api_token(ui, "mes", "operator"))
    first = client.get(f"{API}/parts", params={"limit": 1}, headers=auth).json()
    assert (first["total"], first["limit"], first["offset"], len(first["items"])) == (4, 1, 0, 1)
    seen = [first["items"][0]["part_id"]]
    link = first["next"]
    while link:
        page = client.get(link, headers=auth).json()
        seen += [p["part_id"] for p in page["items"]]
        link = page["next"]
    assert seen == [p.part_id for p in ui.review.index.parts()] and len(set(seen)) == 4
    ng = client.get(f"{API}/parts", params={"verdict": "NG", "sku": "plate"}, headers=auth).json()
    assert sorted(p["part_id"] for p in ng["items"]) == [NG, "st1-000000003"] and ng["next"] is None
    assert all(p["url"] == url(p["part_id"]) for p in ng["items"])
    later = client.get(f"{API}/parts", params={"since": "2999-01-01T00:00:00Z"}, headers=auth).json()
    assert later["total"] == 0 and later["items"] == []
    ui.review.index.add_disposition(NG, "false_alarm", "olga")
    todo = client.get(f"{API}/parts", params={"disposition": "none"}, headers=auth).json()
    assert todo["total"] == 3 and NG not in [p["part_id"] for p in todo["items"]]


def test_a_part_with_its_boxes_and_images(ui: Ui, client: httpx.Client) -> None:
    auth = bearer(api_token(ui, "mes", "operator"))
    part = client.get(url(NG), headers=auth).json()
    record = ui.review.index.part(NG)
    assert record is not None
    assert (part["verdict"], part["sku"], part["score"], part["threshold"]) == (
        "NG", "plate", record.score, record.threshold,
    )  # fmt: skip
    assert part["score"] > part["threshold"] and len(part["boxes"]) == len(record.boxes) >= 1
    box = part["boxes"][0]
    assert [box[k] for k in ("x", "y", "w", "h", "score", "area")] == record.boxes[0]
    assert part["archived_at"].endswith("Z") and part["model_id"] == record.model_id
    assert set(part["images"]) == {"frame", "template", "heatmap", "overlay"}
    magic = {"image/png": b"\x89PNG", "image/jpeg": b"\xff\xd8"}
    for kind, link in part["images"].items():
        r = client.get(link, headers=auth)
        assert r.status_code == 200, kind
        assert r.content.startswith(magic[r.headers["Content-Type"]]), kind
    assert client.get(part["images"]["frame"], headers=auth).headers["Content-Type"] == "image/png"
    skipped = client.get(url(SKIPPED), headers=auth).json()
    assert (
        skipped["verdict"] == "NOT_INSPECTED" and skipped["images"] == {} and "overload" in skipped["reason"]
    )
    r = client.get(url(SKIPPED, "/images/frame"), headers=auth)
    assert r.status_code == 404 and r.json()["message"] == f"part {SKIPPED!r} has no frame image"


def test_unknown_parts_and_routes_are_404_json(ui: Ui, client: httpx.Client) -> None:
    auth = bearer(api_token(ui, "mes", "operator"))
    for path in (
        url("st1-999"),
        url("st1-999", "/images/frame"),
        url("st1-999", "/dispositions"),
        url("../../index.db"),
    ):
        r = client.get(path, headers=auth)
        assert r.status_code == 404, path
        body = r.json()
        assert (
            body["error"] == "Not Found"
            and body["where"] == "path.part_id"
            and "no archived part" in body["message"]
        )
    r = client.post(url("st1-999", "/dispositions"), json={"disposition": "false_alarm"}, headers=auth)
    assert r.status_code == 404
    r = client.get(f"{API}/nothing-here", headers=auth)
    assert r.status_code == 404 and r.json()["message"] == f"no API route GET {API}/nothing-here"


@pytest.mark.parametrize(
    ("params", "where", "says"),
    [
        ({"limit": "0"}, "query.limit", "greater than or equal to 1"),
        ({"limit": "500"}, "query.limit", "less than or equal to 200"),
        ({"limit": "many"}, "query.limit", "valid integer"),
        ({"offset": "-1"}, "query.offset", "greater than or equal to 0"),
        ({"verdict": "MAYBE"}, "query.verdict", "'NG'"),
        ({"disposition": "fine"}, "query.disposition", "'false_alarm'"),
        ({"since": "yesterday"}, "query.since", "datetime"),
        (
            {"since": "2026-12-03T10:00:00Z", "until": "2026-12-03T09:00:00Z"},
            "query.until",
            "later than since",
        ),
    ],
)
def test_bad_query_parameters_are_refused_saying_which(
    ui: Ui, client: httpx.Client, params: dict[str, str], where: str, says: str
) -> None:
    r = client.get(f"{API}/parts", params=params, headers=bearer(api_token(ui, "mes", "operator")))
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["status"] == 400 and body["where"] == where and says in body["message"], body
    assert body["message"].startswith(where) or where == "query.until"


def test_bad_bodies_and_image_kinds_are_refused_saying_which(ui: Ui, client: httpx.Client) -> None:
    auth = bearer(api_token(ui, "mes", "operator"))
    cases = [
        ({"disposition": "maybe"}, "body.disposition"),
        ({"disposition": "false_alarm", "by": "me"}, "body.by"),
        ({"disposition": "confirm_defect"}, "body.defect_class"),
        ({"disposition": "false_alarm", "comment": "x" * 2001}, "body.comment"),
        ({}, "body.disposition"),
    ]
    for body, where in cases:
        r = client.post(url(NG, "/dispositions"), json=body, headers=auth)
        assert r.status_code == 400 and r.json()["where"] == where, (body, r.text)
    r = client.post(
        url(NG, "/dispositions"), content=b"{not json", headers={**auth, "Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["where"].startswith("body")
    r = client.get(url(NG, "/images/secret"), headers=auth)
    assert r.status_code == 400 and r.json()["where"] == "path.kind" and "'frame'" in r.json()["message"]
    r = client.post(
        url(NG, "/dispositions"), content=b"x" * 100_000, headers={**auth, "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert ui.review.index.dispositions(NG) == [] and ui.published == []


def test_station_state_config_and_counters(ui: Ui, client: httpx.Client) -> None:
    auth = bearer(api_token(ui, "mes", "operator"))
    station = client.get(f"{API}/station", headers=auth).json()
    assert (station["station"], station["status"], station["sku"]) == ("st1", "online", "plate")
    assert station["config"] == {"id": "st1", "version": 1, "hash": "0123456789abcdef"}
    assert station["thresholds"] == {"plate": 1.1} and len(station["recent"]) == 3
    counters = client.get(f"{API}/counters", headers=auth).json()
    assert (counters["parts_inspected"], counters["throughput_pps"]) == (40, 2.5)
    assert counters["latency_ms"]["total"]["p99"] == 120.0
    assert counters["archived"] == {"NG": 2, "OK": 1, "NOT_INSPECTED": 1} and counters["to_review"] == 4
    stats = client.get(f"{API}/stats", headers=auth).json()
    assert [(s["sku"], s["archived"]["NG"]) for s in stats] == [("plate", 2)]
    r = client.get(f"{API}/station", headers=auth)
    assert (
        "default-src 'none'" in r.headers["Content-Security-Policy"]
        and r.headers["Cache-Control"] == "no-store"
    )
