"""Security of the review UI over real HTTP(S): login, roles, CSRF, cookies, traversal."""

from __future__ import annotations

import http.client
import urllib.parse

import httpx
import pytest
from fixtures.mosquitto import BrokerCerts

from edge.review.server import TlsFiles
from review.conftest import Ui, UiFactory, _cookie, _csrf

PART = "st1-000000001"  # NG, archived with all images
ENCODED = urllib.parse.quote(PART, safe="")


def test_health_is_open_everything_else_needs_a_login(ui: Ui) -> None:
    status, _, body, _ = ui.request("GET", "/healthz")
    assert (status, body) == (200, b'{"status":"ok"}')
    for page in ("/", "/parts", f"/parts/{ENCODED}", "/stats", "/metrics"):
        status, headers, _, _ = ui.request("GET", page)
        assert status == 303, page
        assert headers["Location"].startswith("/login?next="), page
    status, _, body, _ = ui.request("GET", f"/parts/{ENCODED}/image/frame")
    assert status == 401 and not body.startswith(b"\x89PNG")
    for path in (f"/parts/{ENCODED}/disposition", "/promote", "/threshold", "/logout"):
        status, _, _, _ = ui.request("POST", path, form={"disposition": "false_alarm"})
        assert status == 401, path
    assert ui.published == []


def test_login_rejects_wrong_passwords_and_forged_cookies(ui: Ui) -> None:
    _, _, body, cookies = ui.request("GET", "/login")
    pre, csrf = _cookie(cookies, "edge_review_pre"), _csrf(body)
    status, _, body, cookies = ui.request(
        "POST", "/login", form={"user": "olga", "password": "nope", "csrf": csrf}, cookie=pre
    )
    assert status == 401 and b"Wrong user name or password" in body
    assert not any(c.startswith("edge_review=") for c in cookies)
    # The login form itself is CSRF-protected (no token: refused before the password is even checked).
    status, _, _, _ = ui.request(
        "POST", "/login", form={"user": "olga", "password": "operator-pw"}, cookie=pre
    )
    assert status == 403

    session, _ = ui.login("olga")
    value = session.split("=", 1)[1]
    data, signature = value.split(".")
    forged = f"edge_review={data[:-2]}xx.{signature}"
    assert ui.request("GET", "/", cookie=session)[0] == 200
    assert ui.request("GET", "/", cookie=forged)[0] == 303


def test_session_cookie_is_httponly_and_samesite_strict(ui: Ui) -> None:
    _, _, body, cookies = ui.request("GET", "/login")
    pre, csrf = _cookie(cookies, "edge_review_pre"), _csrf(body)
    _, _, _, cookies = ui.request(
        "POST", "/login", form={"user": "olga", "password": "operator-pw", "csrf": csrf}, cookie=pre
    )
    session = next(c for c in cookies if c.startswith("edge_review="))
    # Attribute names and values are case-insensitive (RFC 6265 5.2); Starlette writes "SameSite=strict".
    attributes = [a.strip().lower() for a in session.split(";")]
    assert "httponly" in attributes and "samesite=strict" in attributes and "secure" not in attributes


def test_logout_revokes_the_session(ui: Ui) -> None:
    session, csrf = ui.login("olga")
    assert ui.request("POST", "/logout", form={"csrf": csrf}, cookie=session)[0] == 303
    assert ui.request("GET", "/", cookie=session)[0] == 303


def test_every_post_needs_the_session_csrf_token(ui: Ui) -> None:
    session, csrf = ui.login("olga")
    other_session, other_csrf = ui.login("erik")
    form = {"disposition": "false_alarm", "comment": "glare"}
    for token in (None, "", "x" * 43, other_csrf):
        data = dict(form) if token is None else {**form, "csrf": token}
        status, _, body, _ = ui.request("POST", f"/parts/{ENCODED}/disposition", form=data, cookie=session)
        assert status == 403, token
        assert b"CSRF" in body
    assert ui.review.index.dispositions(PART) == [] and ui.published == []
    status, _, _, _ = ui.request(
        "POST", f"/parts/{ENCODED}/disposition", form={**form, "csrf": csrf}, cookie=session
    )
    assert status == 303
    assert [d.disposition for d in ui.review.index.dispositions(PART)] == ["false_alarm"]
    assert len(ui.published) == 1
    assert other_session != session


def test_an_operator_cannot_promote_or_change_thresholds(ui: Ui) -> None:
    session, csrf = ui.login("olga")
    status, _, body, _ = ui.request(
        "POST", "/promote", form={"csrf": csrf, "sku": "plate", "part": PART}, cookie=session
    )
    assert status == 403 and b"only engineers" in body
    status, _, _, _ = ui.request(
        "POST", "/threshold", form={"csrf": csrf, "sku": "plate", "threshold": "2"}, cookie=session
    )
    assert status == 403
    # The operator's statistics page has no promotion form at all.
    status, _, body, _ = ui.request("GET", "/stats", cookie=session)
    assert status == 200 and b'action="/promote"' not in body


@pytest.mark.parametrize(
    "path",
    [
        "/parts/..%2F..%2F..%2Fetc%2Fpasswd/image/frame",
        "/parts/%2Fetc%2Fpasswd/image/frame",
        f"/parts/{ENCODED}/image/..%2F..%2Findex.db",
        f"/parts/{ENCODED}/image/%2Fetc%2Fpasswd",
        f"/parts/{ENCODED}/image/../../index.db",
        "/static/..%2F..%2Fauth.py",
        "/static/../views.py",
        "/static/%2Fetc%2Fpasswd",
        "/../../../../etc/passwd",
        "/parts/../../../../etc/passwd",
    ],
)
def test_traversal_attempts_never_return_files(ui: Ui, path: str) -> None:
    session, _ = ui.login("olga")
    status, _, body, _ = ui.request("GET", path, cookie=session)
    assert status in (400, 404), (path, status)
    assert b"root:" not in body and b"SQLite format" not in body and b"import " not in body


def test_archived_images_are_served_through_the_index(ui: Ui) -> None:
    session, _ = ui.login("olga")
    status, headers, body, _ = ui.request("GET", f"/parts/{ENCODED}/image/frame", cookie=session)
    assert status == 200 and headers["Content-Type"] == "image/png" and body.startswith(b"\x89PNG")
    status, headers, body, _ = ui.request("GET", f"/parts/{ENCODED}/image/overlay", cookie=session)
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert "default-src 'none'" in headers["Content-Security-Policy"]


def test_https_with_the_configured_certificate(ui_factory: UiFactory, broker_certs: BrokerCerts) -> None:
    ui = ui_factory(tls=TlsFiles(broker_certs.cert_file, broker_certs.key_file))
    assert ui.url.startswith("https://")
    _, _, body, cookies = ui.request("GET", "/login")
    pre, csrf = _cookie(cookies, "edge_review_pre"), _csrf(body)
    _, _, _, cookies = ui.request(
        "POST", "/login", form={"user": "erik", "password": "engineer-pw", "csrf": csrf}, cookie=pre
    )
    session = next(c for c in cookies if c.startswith("edge_review="))
    assert "Secure" in session and "HttpOnly" in session
    # Once a browser has seen the station over HTTPS it never falls back to plain HTTP.
    _, headers, _, _ = ui.request("GET", "/healthz")
    assert headers["Strict-Transport-Security"].startswith("max-age=")


def test_no_hsts_over_plain_http(ui: Ui) -> None:
    _, headers, _, _ = ui.request("GET", "/healthz")
    assert "Strict-Transport-Security" not in headers


def _wrong_login(ui: Ui, user: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    _, _, body, cookies = ui.request("GET", "/login")
    pre, csrf = _cookie(cookies, "edge_review_pre"), _csrf(body)
    status, headers, body, _ = ui.request(
        "POST", "/login", form={"user": user, "password": "guess", "csrf": csrf}, cookie=pre
    )
    return status, headers, body


def test_guessing_many_names_from_one_address_is_slowed(ui: Ui) -> None:
    # One wrong password for each of many names: the address is the guesser, not any one name.
    statuses = [_wrong_login(ui, f"name{i}")[0] for i in range(6)]
    assert statuses[:3] == [401, 401, 401]
    assert 429 in statuses[3:]
    status, headers, body = _wrong_login(ui, "olga")
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert b"try again in" in body


def test_x_forwarded_for_does_not_choose_whose_attempts_count(ui: Ui) -> None:
    # uvicorn trusts X-Forwarded-For from loopback by default; the review server turns that off.
    statuses = []
    with httpx.Client(base_url=ui.url, timeout=30) as client:
        for i in range(6):
            page = client.get("/login")
            form = {"user": f"name{i}", "password": "guess", "csrf": _csrf(page.content)}
            r = client.post("/login", data=form, headers={"X-Forwarded-For": f"10.1.2.{i}"})
            statuses.append(r.status_code)
    assert statuses[:3] == [401, 401, 401] and 429 in statuses[3:], statuses


def test_oversized_and_non_form_bodies_are_refused(ui: Ui) -> None:
    session, csrf = ui.login("olga")
    status, _, body, _ = ui.request(
        "POST", f"/parts/{ENCODED}/disposition", form={"csrf": csrf, "comment": "x" * 70_000}, cookie=session
    )
    assert status == 413 and b"larger than" in body
    with httpx.Client(base_url=ui.url, timeout=30) as client:
        r = client.post(
            f"/parts/{ENCODED}/disposition",
            files={"disposition": ("a.txt", b"false_alarm")},
            headers={"Cookie": session},
        )
        assert r.status_code == 415
    assert ui.review.index.dispositions(PART) == []


def test_markup_in_part_data_is_escaped(ui: Ui) -> None:
    session, csrf = ui.login("olga")
    evil = "<script>alert(1)</script>"
    form = {"csrf": csrf, "disposition": "confirm_defect", "defect_class": evil, "comment": evil}
    assert ui.request("POST", f"/parts/{ENCODED}/disposition", form=form, cookie=session)[0] == 303
    status, _, body, _ = ui.request("GET", f"/parts/{ENCODED}", cookie=session)
    assert status == 200 and evil.encode() not in body and b"&lt;script&gt;" in body


def test_head_is_answered_like_get_without_a_body(ui: Ui) -> None:
    status, headers, body, _ = ui.request("HEAD", "/healthz")
    assert (status, body) == (200, b"") and headers["Content-Length"] == str(len(b'{"status":"ok"}'))
    status, headers, body, _ = ui.request("HEAD", "/parts")
    assert status == 303 and body == b"" and headers["Location"].startswith("/login?next=")
