"""The feedback loop through the UI: an engineer promotes a false alarm into the golden bank and changes a
threshold; both are real flashes (validation, bank build with the real inspection core, self-test, hooks,
A/B install, journal) of a new config revision."""

from __future__ import annotations

import dataclasses
import json
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from edge.config.resolve import list_images
from edge.flash.active import ActiveConfig, load_active_config
from edge.flash.flash import FlashOptions, flash
from edge.golden.banks import build_banks
from edge.inspection.inspector import Inspector
from edge.inspection.types import Verdict
from edge.review.feedback import GoldenFeedback
from edge.runtime.archive import ImageArchive
from edge.synthetic.parts import make_part
from review.conftest import SIZE, UiFactory, inspect

SCRATCHED = "st1-000000001"  # archived NG part of SKU "plate" with a real scratch
FALSE_ALARM = "st1-000000042"  # a good part the station flagged NG (archived by the test)


def builder(inspector: Inspector, root: Path) -> Any:
    """The flash's own bank builder, on the session's encoders (no ONNX export needed in the test)."""

    def build(resolved: Any, artifact_dir: Path, out_dir: Path) -> Any:
        cache = root / "cache" / "banks"
        cache.mkdir(parents=True, exist_ok=True)
        return build_banks(resolved, artifact_dir, out_dir, cache_dir=cache, encoders=inspector.encoders)

    return build


@pytest.fixture
def station(tmp_path: Path, inspector: Inspector) -> Path:
    """A station root with a flashed config for SKU ``plate`` (4 golden images)."""
    bundle = tmp_path / "bundle"
    rng = np.random.default_rng(21)
    for folder, count in (("golden", 4), ("replay", 1)):
        (bundle / folder).mkdir(parents=True)
        for i in range(count):
            image = cv2.cvtColor(make_part(rng, SIZE).image, cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(bundle / folder / f"{i:03d}.png"), image)
    (bundle / "artifacts").mkdir()
    config = {
        "version": 1,
        "station": {"site": "plant", "line": "l1", "id": "st1"},
        "camera": {"source": "replay", "replay": {"dir": "replay"}},
        "model": {"artifact_dir": "artifacts", "backends": ["onnxruntime-cpu"], "input_size": [SIZE, SIZE]},
        "skus": [{"id": "plate", "golden_dir": "golden"}],
        "storage": {"data_dir": "var/data", "archive_dir": "var/archive"},
    }
    (bundle / "station.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    root = tmp_path / "station"
    first = flash(bundle / "station.yaml", FlashOptions(root=root, bank_builder=builder(inspector, root)))
    assert first.ok, first.reason
    return root


def active(root: Path) -> ActiveConfig:
    state = load_active_config(root)
    assert isinstance(state, ActiveConfig), state
    return state


def archive_false_alarm(archive: ImageArchive, inspector: Inspector) -> None:
    """A good part with an NG verdict: what an operator marks as a false alarm."""
    item = inspect(inspector, 42, make_part(np.random.default_rng(77), SIZE).image)
    archive(item.part, dataclasses.replace(item.verdict, verdict=Verdict.NG), item.result)
    assert archive.wait_idle(10)


@pytest.mark.slow
def test_engineer_promotes_a_false_alarm_and_sets_a_threshold(
    station: Path, inspector: Inspector, ui_factory: UiFactory, archive: ImageArchive
) -> None:
    archive_false_alarm(archive, inspector)
    ui = ui_factory(feedback=GoldenFeedback(station, bank_builder=builder(inspector, station)))
    ui.review.index.add_disposition(FALSE_ALARM, "false_alarm", "olga", comment="glare")
    session, csrf = ui.login("erik")
    before = active(station)

    status, body = ui.feedback("/promote", {"csrf": csrf, "sku": "plate", "part": FALSE_ALARM}, session)
    assert status == 200, body.decode()[-3000:]
    assert b"Installed: committed" in body

    after = active(station)
    assert after.slot != before.slot
    golden_dir = after.config.skus[0].golden_dir
    assert golden_dir.startswith("golden-revisions/plate/")
    base = Path(after.manifest["base_dir"])
    names = [p.name for p in list_images(base / golden_dir)]
    assert names == ["000.png", "001.png", "002.png", "003.png", f"promoted-{FALSE_ALARM}.png"]
    assert len(list_images(base / "golden")) == 4  # the running revision's folder is never modified
    bank = json.loads((after.banks_dir / "plate" / "bank.json").read_text())
    assert len(bank["template_ids"]) == 5
    journal = [json.loads(line) for line in (station / "journal.jsonl").read_text().splitlines()]
    assert journal[-1]["result"] == "committed" and journal[-1]["by"] == "review:erik"
    assert ui.review.index.promotable("plate") == []
    assert ui.review.index.part(FALSE_ALARM).promoted  # type: ignore[union-attr]

    status, body = ui.feedback("/threshold", {"csrf": csrf, "sku": "plate", "threshold": "2.5"}, session)
    assert status == 200 and b"Installed: committed" in body
    assert active(station).config.skus[0].threshold == 2.5
    assert [p.result for p in ui.review.index.promotions()] == ["committed", "committed"]


@pytest.mark.slow
def test_promoting_a_real_defect_fails_the_self_test_and_changes_nothing(
    station: Path, inspector: Inspector, ui_factory: UiFactory
) -> None:
    """An operator's mistake (a scratched part marked false alarm) is caught by the flash's self-test."""
    ui = ui_factory(feedback=GoldenFeedback(station, bank_builder=builder(inspector, station)))
    ui.review.index.add_disposition(SCRATCHED, "false_alarm", "olga")
    session, csrf = ui.login("erik")
    before = active(station)
    base = Path(before.manifest["base_dir"])
    bundle_files = sorted(base.rglob("*"))

    status, body = ui.feedback("/promote", {"csrf": csrf, "sku": "plate", "part": SCRATCHED}, session)
    assert status == 409 and b"Not installed: aborted" in body and b"self-test" in body
    after = active(station)
    assert (after.slot, after.config_hash) == (before.slot, before.config_hash)
    assert sorted(base.rglob("*")) == bundle_files  # the revision and its golden folder are removed again
    assert [(p.kind, p.result) for p in ui.review.index.promotions()] == [("promote", "aborted")]
    assert [p.part_id for p in ui.review.index.promotable("plate")] == [SCRATCHED]


@pytest.mark.slow
def test_a_failing_hook_aborts_the_threshold_change(
    station: Path, inspector: Inspector, ui_factory: UiFactory, tmp_path: Path
) -> None:
    hooks = tmp_path / "hooks"
    hook = hooks / "pre-flash.d" / "10-refuse"
    hook.parent.mkdir(parents=True)
    hook.write_text("#!/bin/sh\n" + textwrap.dedent("echo 'line is running a batch' >&2\nexit 3\n"))
    hook.chmod(0o755)
    ui = ui_factory(
        feedback=GoldenFeedback(station, hooks_dir=hooks, bank_builder=builder(inspector, station))
    )
    session, csrf = ui.login("erik")
    before = active(station)
    bundle_files = sorted(
        p.relative_to(before.manifest["base_dir"]) for p in Path(before.manifest["base_dir"]).rglob("*")
    )

    status, body = ui.feedback("/threshold", {"csrf": csrf, "sku": "plate", "threshold": "3"}, session)
    assert status == 409 and b"Not installed: aborted" in body and b"line is running a batch" in body
    after = active(station)
    assert (after.slot, after.config_hash) == (before.slot, before.config_hash)
    assert (
        sorted(
            p.relative_to(before.manifest["base_dir"]) for p in Path(before.manifest["base_dir"]).rglob("*")
        )
        == bundle_files
    )
    assert [p.result for p in ui.review.index.promotions()] == ["aborted"]


@pytest.mark.slow
def test_a_flash_runs_in_the_background_and_a_second_one_waits_its_turn(
    station: Path, inspector: Inspector, ui_factory: UiFactory
) -> None:
    """The page answers at once; it shows the flash running (refreshing itself), refuses a second feedback
    action meanwhile, and shows the outcome once the flash is over."""
    release = threading.Event()
    real = builder(inspector, station)

    def slow(resolved: Any, artifact_dir: Path, out_dir: Path) -> Any:
        assert release.wait(60)  # fault injection: a bank build that takes as long as the test wants
        return real(resolved, artifact_dir, out_dir)

    ui = ui_factory(feedback=GoldenFeedback(station, bank_builder=slow))
    session, csrf = ui.login("erik")
    status, headers, _, _ = ui.request(
        "POST", "/threshold", form={"csrf": csrf, "sku": "plate", "threshold": "2.5"}, cookie=session
    )
    assert status == 303 and headers["Location"].startswith("/stats?job=")
    status, _, body, _ = ui.request("GET", headers["Location"], cookie=session)
    assert status == 200 and b"Flashing: threshold on plate" in body and b'http-equiv="refresh"' in body

    status, body = ui.feedback("/threshold", {"csrf": csrf, "sku": "plate", "threshold": "3"}, session)
    assert b"threshold on plate by erik is still running" in body

    release.set()
    status, _, body, _ = ui.request("GET", headers["Location"], cookie=session)
    deadline = time.monotonic() + 60
    while b'aria-busy="true"' in body and time.monotonic() < deadline:
        time.sleep(0.1)
        status, _, body, _ = ui.request("GET", headers["Location"], cookie=session)
    assert status == 200 and b"Installed: committed" in body and b'http-equiv="refresh"' not in body
    assert active(station).config.skus[0].threshold == 2.5
    assert [p.result for p in ui.review.index.promotions()] == ["committed"]
