"""`edge demo --serve`: the review UI runs in the demo; an operator logs in and opens a flagged part."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures.mosquitto import mosquitto_binary

from review.test_review_browser import ARTIFACTS, browser  # noqa: F401 - the shared browser fixture

REPO = Path(__file__).resolve().parents[2]
ACCOUNTS = re.compile(
    r"review UI: (http://\S+/)\s+\(accounts for this run: operator / (\S+), engineer / (\S+)\)"
)


@pytest.mark.slow
def test_demo_serves_its_review_ui_with_a_flagged_part_and_its_heatmap(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed: run `bash scripts/install-system-deps.sh`")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "demo",
            "--workdir",
            str(tmp_path / "demo"),
            "--serve",
            "--fps",
            "4",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    try:
        deadline = time.monotonic() + 240
        found = None
        while time.monotonic() < deadline and proc.poll() is None:
            text = "".join(lines)
            found = found or ACCOUNTS.search(text)
            if found and text.count(" NG ") >= 2:  # flagged parts archived
                break
            time.sleep(0.5)
        assert found, "".join(lines)[-3000:]
        url, password = found.group(1).rstrip("/"), found.group(2)
        time.sleep(2.0)  # the archive writes on its own thread
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(url + "/parts?verdict=NG")
        assert "/login" in page.url
        page.fill("#user", "operator")
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert page.url.startswith(url + "/parts"), (page.url, page.content()[:2000])
        assert page.locator("table.parts tbody tr").count() >= 1
        page.locator("table.parts tbody tr a").first.click()
        # The part page itself, not the list still loaded when the click's navigation has not committed.
        page.wait_for_url(re.compile(re.escape(url) + r"/parts/[^/?]+"))
        page.wait_for_load_state()
        # The newest part may still be archiving (its frame size, which the boxes need, comes last).
        for _ in range(10):
            if page.locator("svg.boxes rect").count():
                break
            time.sleep(0.5)
            page.reload()
            page.wait_for_load_state()
        assert page.locator("svg.boxes rect").count() >= 1
        for kind in ("frame", "template", "overlay"):
            assert page.locator(f"figure[data-kind={kind}] img").evaluate("img => img.naturalWidth") > 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo-flagged-part.png"), full_page=True)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0, "".join(lines)[-3000:]
