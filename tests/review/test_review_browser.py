"""The review flow in a real browser (Debian's chromium, headless, Playwright); dispositions reach MQTT.

Never downloads a browser: Playwright drives ``/usr/bin/chromium`` (``scripts/install-system-deps.sh``).
Screenshots go to ``test-artifacts/review/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.mosquitto import MosquittoBroker
from fixtures.mqtt_subscriber import Subscriber
from fixtures.station_link import STATION_ROOT

from edge.mqtt import StationMqtt
from edge.mqtt.validate import validate
from review.conftest import PASSWORDS, UiFactory

CHROMIUM = os.environ.get("EDGE_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "review"
ROOT = STATION_ROOT

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extra)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: run `bash scripts/install-system-deps.sh`")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def subscriber(mosquitto: MosquittoBroker) -> Iterator[Subscriber]:
    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/review"])
    sub.wait_subscribed()
    yield sub
    sub.close()


def login(page: Any, base: str, user: str) -> None:
    page.goto(base + "/parts")
    assert "/login" in page.url  # redirected: a session is required
    page.fill("#user", user)
    page.fill("#password", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_url(base + "/parts")


def test_review_flow_confirm_and_false_alarm_reach_mqtt(
    browser: Any, ui_factory: UiFactory, station_mqtt: StationMqtt, subscriber: Subscriber
) -> None:
    ui = ui_factory(publish=station_mqtt.publish_review)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        login(page, ui.url, "olga")
        page.goto(ui.url + "/")
        page.screenshot(path=str(ARTIFACTS / "01-status.png"), full_page=True)

        page.goto(ui.url + "/parts?verdict=NG")
        assert page.locator("table.parts tbody tr").count() == 2
        page.screenshot(path=str(ARTIFACTS / "02-flagged-parts.png"), full_page=True)

        page.click("text=st1-000000003")
        page.wait_for_url("**/parts/st1-000000003?verdict=NG")
        assert page.locator("svg.boxes rect").count() >= 1  # defect boxes drawn over frame and overlay
        for kind in ("frame", "template", "overlay"):
            assert page.locator(f"figure[data-kind={kind}] img").evaluate("img => img.naturalWidth") > 0
        page.screenshot(path=str(ARTIFACTS / "03-part-detail.png"), full_page=True)

        page.click("figure[data-kind=overlay]")  # zoom on click
        assert page.locator("#lightbox").is_visible()
        page.screenshot(path=str(ARTIFACTS / "04-zoom.png"))
        page.keyboard.press("Escape")
        assert not page.locator("#lightbox").is_visible()

        # Keyboard only: c -> type the defect class -> Enter; the next part of the list opens.
        page.keyboard.press("c")
        page.keyboard.type("scratch")
        page.keyboard.press("Enter")
        page.wait_for_url("**/parts/st1-000000001?done=confirm_defect&verdict=NG")
        assert page.locator(".notice").inner_text().startswith("Saved: defect confirmed")
        page.keyboard.press("k")  # back to the newer part: now shows its disposition
        page.wait_for_url("**/parts/st1-000000003?verdict=NG")
        assert "defect" in page.locator(".part-head").inner_text()
        page.keyboard.press("j")
        page.wait_for_url("**/parts/st1-000000001?verdict=NG")
        page.keyboard.press("f")
        page.wait_for_url("**/parts/st1-000000001?done=false_alarm&verdict=NG")
        page.screenshot(path=str(ARTIFACTS / "05-after-false-alarm.png"), full_page=True)
    finally:
        context.close()

    stored = {
        p: [(d.disposition, d.defect_class, d.user) for d in ui.review.index.dispositions(p)]
        for p in ("st1-000000003", "st1-000000001")
    }
    assert stored == {
        "st1-000000003": [("confirm_defect", "scratch", "olga")],
        "st1-000000001": [("false_alarm", None, "olga")],
    }

    def both(messages: list[Any]) -> bool:
        return len({m.json()["part_id"] for m in messages}) >= 2

    assert subscriber.wait_for(both, 10), subscriber.messages
    bodies = [m.json() for m in subscriber.on(f"{ROOT}/review")]
    for body in bodies:
        validate("review", body)
    assert [(b["part_id"], b["disposition"], b["defect_class"], b["user"]) for b in bodies] == [
        ("st1-000000003", "confirm_defect", "scratch", "olga"),
        ("st1-000000001", "false_alarm", None, "olga"),
    ]
    assert all(d.published for d in ui.review.index.dispositions("st1-000000001"))


def test_engineer_sees_statistics_and_promotion_candidates(browser: Any, ui_factory: UiFactory) -> None:
    ui = ui_factory()
    ui.review.index.add_disposition("st1-000000001", "false_alarm", "olga", comment="glare")
    ui.review.index.add_disposition("st1-000000002", "confirm_defect", "olga", defect_class="dent")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        login(page, ui.url, "erik")
        page.goto(ui.url + "/stats")
        row = page.locator("table.grid tbody tr").first.inner_text()
        # plate: 1 NG reviewed, 1 false alarm (100 %), 1 sampled OK reviewed, 1 escape (100 %)
        assert row.split("\t")[2:8] == ["1", "1", "100.0 %", "1", "1", "100.0 %"], row
        assert page.locator("input[name=part][value='st1-000000001']").count() == 1
        page.screenshot(path=str(ARTIFACTS / "06-stats-engineer.png"), full_page=True)
        page.goto(ui.url + "/metrics")
        assert page.locator("a[href='http://127.0.0.1:9400/metrics']").count() == 2  # nav + page
        page.screenshot(path=str(ARTIFACTS / "07-metrics.png"), full_page=True)
    finally:
        context.close()
