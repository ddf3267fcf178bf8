"""The review UI inside a running station (``edge run`` in-process): archive written by the pipeline,
status page fed by the station, dispositions published through the station's own MQTT link."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.mosquitto import MosquittoBroker
from fixtures.mqtt_subscriber import Subscriber
from runtime.conftest import write_parts

from edge.inspection.model import ModelSpec, default_artifact_dir, onnx_encoders
from edge.mqtt.validate import validate
from edge.review.auth import hash_password
from edge.runtime.app import RunOptions, StationApp
from review.conftest import Ui

ROOT = "plant/l1/st7"


@pytest.fixture(scope="session")
def artifact_dir() -> Path:
    """The per-user ONNX cache (exported once)."""
    spec = ModelSpec()
    onnx_encoders(spec)
    return default_artifact_dir(spec)


@pytest.mark.slow
def test_station_serves_review_ui_archives_and_publishes_dispositions(
    tmp_path: Path, mosquitto: MosquittoBroker, artifact_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_parts(tmp_path / "golden", 6, seed=11, defect_every=0)
    write_parts(tmp_path / "replay", 6, seed=12)  # every third part defective
    config: dict[str, Any] = {
        "version": 1,
        "station": {"site": "plant", "line": "l1", "id": "st7"},
        "camera": {"source": "replay", "replay": {"dir": "replay", "fps": 5}},
        "model": {"artifact_dir": str(artifact_dir), "backends": ["onnxruntime-cpu"]},
        "skus": [{"id": "plate", "golden_dir": "golden", "threshold_margin": 0.3}],
        "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
        "storage": {"data_dir": "data", "archive_dir": "archive", "ok_sample_rate": 0.0},
        "review": {
            "enabled": True,
            "users": [
                {
                    "name": "olga",
                    "role": "operator",
                    "password_hash": hash_password("operator-pw", iterations=1000),
                }
            ],
        },
    }
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
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
