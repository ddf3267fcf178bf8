"""The review UI inside a running station (``edge run`` in-process): archive written by the pipeline,
status page fed by the station, dispositions published through the station's own MQTT link."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.mosquitto import MosquittoBroker
from fixtures.mqtt_subscriber import Subscriber
from runtime.conftest import write_parts

from edge.flash.active import ActiveConfig, load_active_config
from edge.flash.flash import FlashOptions, flash
from edge.model.spec import ModelSpec
from edge.mqtt.validate import validate
from edge.review.auth import hash_password
from edge.runtime.app import StationApp
from edge.runtime.options import RunOptions
from export.ensure import ensure_artifacts
from review.conftest import Ui

ROOT = "plant/l1/st7"


@pytest.fixture(scope="session")
def artifact_dir() -> Path:
    """The per-user ONNX cache (exported once)."""
    return ensure_artifacts(ModelSpec())


def station_yaml(
    folder: Path,
    mosquitto: MosquittoBroker,
    artifact_dir: str,
    user: tuple[str, str, str],
    ok_sample_rate: float,
) -> Path:
    """A replay station config with the review UI on and one ``(name, role, password)`` user."""
    name, role, password = user
    config: dict[str, Any] = {
        "version": 1,
        "station": {"site": "plant", "line": "l1", "id": "st7"},
        "camera": {"source": "replay", "replay": {"dir": "replay", "fps": 5}},
        "model": {"artifact_dir": artifact_dir, "backends": ["onnxruntime-cpu"]},
        "skus": [{"id": "plate", "golden_dir": "golden", "threshold_margin": 0.3}],
        "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
        "storage": {"data_dir": "data", "archive_dir": "archive", "ok_sample_rate": ok_sample_rate},
        "review": {
            "enabled": True,
            "users": [
                {"name": name, "role": role, "password_hash": hash_password(password, iterations=1000)}
            ],
        },
    }
    path = folder / "station.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.slow
def test_station_serves_review_ui_archives_and_publishes_dispositions(
    tmp_path: Path, mosquitto: MosquittoBroker, artifact_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_parts(tmp_path / "golden", 6, seed=11, defect_every=0)
    write_parts(tmp_path / "replay", 6, seed=12)  # every third part defective
    path = station_yaml(tmp_path, mosquitto, str(artifact_dir), ("olga", "operator", "operator-pw"), 0.0)
    monkeypatch.setenv("EDGE_ALLOWED_ROOTS", str(artifact_dir))
    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/review"])
    sub.wait_subscribed()
    app = StationApp(
        RunOptions(
            config=path, install_signals=False, metrics_port=0, review_port=0, stop_when_source_ends=False
        )
    )
    runner = threading.Thread(target=app.run, daemon=True)
    runner.start()
    try:
        assert app.started.wait(120), "station did not start"
        assert app.review is not None
        ui = Ui(app.review)
        deadline = time.monotonic() + 60
        while app.review.index.count() < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        flagged = app.review.index.parts()
        assert len(flagged) >= 2 and {p.verdict for p in flagged} == {"NG"}
        assert {"frame", "template", "overlay"} <= set(flagged[0].files)
        assert flagged[0].config_hash and flagged[0].model_id

        session, csrf = ui.login("olga")
        status, _, body, _ = ui.request("GET", "/", cookie=session)
        assert status == 200 and b">online<" in body and b"plate" in body
        metrics_server = app.parts.metrics_server
        assert metrics_server is not None
        status, _, body, _ = ui.request("GET", "/metrics", cookie=session)
        assert status == 200 and f":{metrics_server.port}/metrics".encode() in body
        part_id = flagged[-1].part_id
        status, _, _, _ = ui.request(
            "POST",
            f"/parts/{part_id}/disposition",
            form={"csrf": csrf, "disposition": "confirm_defect", "defect_class": "spot", "comment": "seen"},
            cookie=session,
        )
        assert status == 303
        assert sub.wait_for(lambda ms: len(ms) >= 1, 15)
        body_json = sub.on(f"{ROOT}/review")[0].json()
        validate("review", body_json)
        assert (body_json["part_id"], body_json["disposition"], body_json["user"]) == (
            part_id,
            "confirm_defect",
            "olga",
        )
    finally:
        app.request_stop()
        runner.join(60)
        sub.close()
    assert app.review is None  # stopped with the station


@pytest.mark.slow
def test_promotion_inside_a_running_station_flashes_and_the_station_confirms_it(
    tmp_path: Path, mosquitto: MosquittoBroker, artifact_dir: Path
) -> None:
    """`edge run --root` as in production (signals installed, main thread): an engineer promotes a false
    alarm; the flash made by the station's own web UI signals the station, which reloads and confirms."""
    write_parts(tmp_path / "golden", 6, seed=11, defect_every=0)
    # Good parts only, every one archived: the test promotes one (as if flagged and judged a false alarm).
    write_parts(tmp_path / "replay", 6, seed=12, defect_every=0)
    path = station_yaml(tmp_path, mosquitto, "artifacts", ("erik", "engineer", "engineer-pw"), 1.0)
    # As on a station, the model artifacts live inside an allowed root: the health-check hook resolves the
    # config in a clean environment (no EDGE_ALLOWED_ROOTS).
    shutil.copytree(artifact_dir, tmp_path / "artifacts")
    root = tmp_path / "root"
    first = flash(path, FlashOptions(root=root, hooks_dir=None))
    assert first.ok, first.reason
    app = StationApp(
        RunOptions(
            root=root, install_signals=True, metrics_port=None, review_port=0, stop_when_source_ends=False
        )
    )
    outcome: dict[str, Any] = {}

    def operate() -> None:
        try:
            assert app.started.wait(120), "station did not start"
            assert app.review is not None
            deadline = time.monotonic() + 60
            while app.review.index.count() < 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            part_id = app.review.index.parts()[0].part_id
            ui = Ui(app.review)
            session, csrf = ui.login("erik")
            form = {"csrf": csrf, "disposition": "false_alarm", "defect_class": "", "comment": "glare"}
            assert ui.request("POST", f"/parts/{part_id}/disposition", form=form, cookie=session)[0] == 303
            status, body = ui.feedback("/promote", {"csrf": csrf, "sku": "plate", "part": part_id}, session)
            outcome["promote"] = (status, body.decode())
            outcome["running"] = app.boot.config_hash if app.boot else None
        except BaseException as exc:  # reported by the main thread
            outcome["error"] = exc
        finally:
            app.request_stop("test done")

    threading.Thread(target=operate, daemon=True).start()
    app.run()  # the main thread, as `edge run` does: SIGHUP from the flash reaches the station here
    assert "error" not in outcome, outcome.get("error")
    status, body = outcome["promote"]
    assert status == 200 and "Installed: committed" in body, body[-3000:]
    active = load_active_config(root)
    assert isinstance(active, ActiveConfig) and active.config_hash != first.config_hash
    assert outcome["running"] == active.config_hash, "the station runs what the flash committed"
    last = json.loads((root / "journal.jsonl").read_text().splitlines()[-1])
    assert last["result"] == "committed" and "runs the new config" in json.dumps(last["hooks"])
