"""``edge run`` as a real process: clean stop on SIGTERM, safe mode on a broken config."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from fixtures import opcua_client
from fixtures.mosquitto import MosquittoBroker, free_port
from fixtures.mqtt_subscriber import Subscriber
from fixtures.sparkplug_host import SparkplugHost

from edge.artifacts.manifest import Manifest, write_manifest
from edge.flash.active import ActiveConfig, load_active_config
from edge.flash.flash import FlashOptions, flash
from edge.model.spec import ModelSpec
from edge.mqtt import Outbox
from edge.review.auth import hash_password
from edge.review.index import INDEX_NAME, ArchiveIndex
from edge.runtime.options import EXIT_SAFE_MODE
from export.ensure import ensure_artifacts
from runtime.conftest import write_parts
from runtime.support import assert_contiguous, wait_verdicts

REPO = Path(__file__).resolve().parents[2]
ROOT = "plant/l1/st9"


@pytest.fixture(scope="session")
def artifact_dir() -> Path:
    """The per-user ONNX cache (exported once, shared with the station subprocesses)."""
    return ensure_artifacts(ModelSpec())


def station_config(tmp_path: Path, broker: MosquittoBroker, artifact_dir: Path, **extra: Any) -> Path:
    write_parts(tmp_path / "golden", 6, seed=11, defect_every=0)
    write_parts(tmp_path / "replay", 6, seed=12)
    config: dict[str, Any] = {
        "version": 1,
        "station": {"site": "plant", "line": "l1", "id": "st9"},
        "camera": {"source": "replay", "replay": {"dir": "replay", "fps": 5}},
        "model": {"artifact_dir": str(artifact_dir), "backends": ["onnxruntime-cpu"]},
        "skus": [{"id": "plate", "golden_dir": "golden"}],
        "mqtt": {"host": broker.host, "port": broker.port},
        "storage": {"data_dir": "data", "archive_dir": "archive"},
        **extra,
    }
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture
def start_station(artifact_dir: Path) -> Iterator[Any]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(config: Path) -> subprocess.Popen[bytes]:
        env = {**os.environ, "EDGE_ALLOWED_ROOTS": str(artifact_dir)}
        log = (config.parent / "station.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "run", "--config", str(config), "--no-metrics"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append(proc)
        return proc

    yield start
    for proc in processes:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def states(sub: Subscriber) -> list[dict[str, Any]]:
    return [m.json() for m in sub.on(f"{ROOT}/state")]


def wait_state(sub: Subscriber, status: str, timeout_s: float, log: Path) -> dict[str, Any]:
    topic = f"{ROOT}/state"
    if not sub.wait_for(
        lambda ms: any(m.topic == topic and m.json()["status"] == status for m in ms), timeout_s
    ):
        raise AssertionError(
            f"no state {status!r} within {timeout_s} s: {states(sub)}\n{log.read_text()[-3000:]}"
        )
    return [s for s in states(sub) if s["status"] == status][-1]


def replies(sub: Subscriber) -> list[dict[str, Any]]:
    return [m.json() for m in sub.on(f"{ROOT}/reply")]


def test_sigterm_drains_flushes_and_publishes_offline(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    artifact_dir: Path,
    start_station: Any,
) -> None:
    config = station_config(tmp_path, mosquitto, artifact_dir)
    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/#"])
    sub.wait_subscribed()
    proc = start_station(config)
    log = tmp_path / "station.log"
    online = wait_state(sub, "online", 120, log)
    assert online["config"]["id"] == "st9" and online["sku"] == "plate"
    wait_verdicts(sub, 3, timeout_s=60, root=ROOT)

    sub.publish(f"{ROOT}/cmd/sku", json.dumps({"sku": "nope", "request_id": "r1"}))
    assert sub.wait_for(lambda ms: any(m.topic.endswith("/reply") for m in ms), 10)
    assert replies(sub)[0] == {**replies(sub)[0], "ok": False, "request_id": "r1"}
    assert "unknown SKU 'nope'" in replies(sub)[0]["error"]

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log.read_text()[-3000:]
    offline = wait_state(sub, "offline", 10, log)
    assert "SIGTERM" in offline["reason"]
    ready = [m.json() for m in sub.on(f"{ROOT}/ready")]
    assert ready[-1]["ready"] is False
    found = wait_verdicts(sub, 3, timeout_s=5, root=ROOT)
    assert_contiguous(found)
    assert found[0]["seq"] == 1
    with Outbox(tmp_path / "data" / "outbox.db") as outbox:
        assert outbox.depth() == 0, "the outbox was flushed before the station exited"
    counter = json.loads((tmp_path / "data" / "part-counter.json").read_text())
    assert counter["next"] > found[-1]["seq"]
    sub.close()


def test_invalid_config_enters_safe_mode_and_keeps_serving(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    artifact_dir: Path,
    start_station: Any,
) -> None:
    config = station_config(tmp_path, mosquitto, artifact_dir, colour="blue")  # unknown key: invalid config
    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/#"])
    sub.wait_subscribed()
    proc = start_station(config)
    log = tmp_path / "station.log"
    safe = wait_state(sub, "safe_mode", 60, log)
    assert "colour" in safe["reason"]
    sub.publish(f"{ROOT}/cmd/trigger", json.dumps({"part_id": "PLC-7"}))
    found = wait_verdicts(sub, 1, timeout_s=10, root=ROOT)
    assert found[0]["part_id"] == "PLC-7" and found[0]["verdict"] == "NOT_INSPECTED"
    assert "safe mode" in found[0]["reason"]
    sub.publish(f"{ROOT}/cmd/pause", b"")
    assert sub.wait_for(lambda ms: sum(m.topic.endswith("/reply") for m in ms) >= 2, 10)
    assert "safe mode" in replies(sub)[-1]["error"]
    assert proc.poll() is None, "safe mode must keep the process up, not crash-loop"

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == EXIT_SAFE_MODE  # it inspected nothing: a script or service manager can tell
    assert wait_state(sub, "offline", 10, log)
    sub.close()


@pytest.mark.slow
def test_flash_onto_a_running_station_commits_what_it_runs_and_rolls_back_what_it_refuses(
    tmp_path: Path, mosquitto: MosquittoBroker, artifact_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_ALLOWED_ROOTS", str(artifact_dir))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    first_config = station_config(bundle, mosquitto, artifact_dir)
    root = tmp_path / "station"
    first = flash(first_config, FlashOptions(root=root, hooks_dir=None))
    assert first.ok, first.reason

    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/#"])
    sub.wait_subscribed()
    log = tmp_path / "station.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "run", "--root", str(root), "--no-metrics"],
            cwd=REPO,
            env=dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_state(sub, "online", 120, log)["config"]["hash"] == first.config_hash

        # A new config the station can run: the flash commits once the station says it runs it.
        data = yaml.safe_load(first_config.read_text())
        data["camera"]["replay"]["fps"] = 4
        second_config = bundle / "second.yaml"
        second_config.write_text(yaml.safe_dump(data))
        second = flash(second_config, FlashOptions(root=root, hooks_dir=None))
        assert second.ok, second.reason
        assert "station confirms" in second.steps

        def runs_second(messages: list[Any]) -> bool:
            return any(
                body["status"] == "online" and body["config"]["hash"] == second.config_hash
                for body in (m.json() for m in messages if m.topic == f"{ROOT}/state")
            )

        assert sub.wait_for(runs_second, 30), states(sub)

        # A config whose replay folder is gone by the time the station loads it (a pre-flash hook removes
        # it): the station refuses it and keeps running; the flash rolls back instead of committing.
        shutil.copytree(bundle / "replay", bundle / "replay-gone")
        data["camera"]["replay"]["dir"] = "replay-gone"
        third_config = bundle / "third.yaml"
        third_config.write_text(yaml.safe_dump(data))
        hooks = tmp_path / "hooks" / "pre-flash.d"
        hooks.mkdir(parents=True)
        (hooks / "10-remove-replay").write_text(f"#!/bin/sh\nrm -rf '{bundle / 'replay-gone'}'\n")
        (hooks / "10-remove-replay").chmod(0o755)
        third = flash(third_config, FlashOptions(root=root, hooks_dir=hooks.parent))
        assert third.result == "rolled_back", third.reason
        assert "refused the new config" in third.reason and "replay" in third.reason
        active = load_active_config(root)
        assert isinstance(active, ActiveConfig) and active.config_hash == second.config_hash
        assert proc.poll() is None, log.read_text()[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        sub.close()


@pytest.mark.slow
def test_the_configured_precision_is_what_the_station_runs_and_publishes(
    tmp_path: Path, mosquitto: MosquittoBroker, artifact_dir: Path, start_station: Any
) -> None:
    from export.calibration import load_calibration
    from export.onnx_export import export_onnx
    from export.pipeline import export_int8

    artifacts = tmp_path / "artifacts"  # FP32 only, inside the config's own (allowed) folder
    export_onnx(ModelSpec(), artifacts)
    config = station_config(tmp_path, mosquitto, artifacts)
    data = yaml.safe_load(config.read_text())
    data["model"]["precision"] = "int8"
    config.write_text(yaml.safe_dump(data))

    refused = flash(config, FlashOptions(root=tmp_path / "root", hooks_dir=None))
    assert refused.result == "aborted"
    assert f"no int8 encoders: run `edge export int8 --out {artifacts} --calib" in refused.reason

    export_int8(ModelSpec(), artifacts, load_calibration(tmp_path / "golden", ModelSpec().input_size))
    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/#"])
    sub.wait_subscribed()
    proc = start_station(config)
    online = wait_state(sub, "online", 120, tmp_path / "station.log")
    assert online["inference"]["precision"] == "int8"
    assert online["inference"]["backend"] == online["backend"] == "onnxruntime-cpu"
    assert wait_verdicts(sub, 2, timeout_s=60, root=ROOT)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    sub.close()


@pytest.mark.slow
def test_a_huge_frame_neither_blocks_nor_crashes_the_stop_and_its_part_is_in_the_archive(
    tmp_path: Path, mosquitto: MosquittoBroker, artifact_dir: Path, start_station: Any
) -> None:
    # Issue 11: a 12000 x 12000 frame among the replay images (loop off) made the station abort at exit
    # (SIGABRT, "terminate called without an active exception"): the archive was still encoding it in
    # OpenCV when the interpreter finalized, and the part never reached the archive index.
    replay = {"dir": "replay", "fps": 5, "loop": False}
    camera = {"source": "replay", "replay": replay, "max_frame_pixels": 150_000_000}
    config = station_config(tmp_path, mosquitto, artifact_dir, camera=camera)
    assert cv2.imwrite(str(tmp_path / "replay" / "002b.png"), np.full((12000, 12000, 3), 128, np.uint8))
    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/#"])
    sub.wait_subscribed()
    proc = start_station(config)
    log = tmp_path / "station.log"
    found = wait_verdicts(sub, 7, timeout_s=300, root=ROOT)
    start = time.monotonic()
    rc = proc.wait(60)  # drain + outbox flush + archive, each bounded
    assert rc == 0, log.read_text()[-3000:]
    assert time.monotonic() - start < 45
    text = log.read_text()
    assert "source replay:replay ended" in text and "terminate called" not in text
    assert_contiguous(found)
    assert found[3]["verdict"] == "NG", "the uniform grey frame is nothing like the golden plates"
    index = ArchiveIndex(tmp_path / "archive" / INDEX_NAME)
    try:
        flagged = [v for v in found if v["verdict"] != "OK"]
        for verdict in flagged:
            record = index.part(verdict["part_id"])
            assert record is not None, f"{verdict['part_id']} ({verdict['verdict']}) missing from the archive"
            assert (record.cut_short is None) == bool(record.files), record
        huge = index.part(found[3]["part_id"])
        assert huge is not None and (huge.width, huge.height) == (12000, 12000)
        assert huge.files or huge.cut_short == "station stopping: archiving cut short after 5 s"
    finally:
        index.close()
    sub.close()


@pytest.mark.parametrize("exported", ["nothing", "another model"])
def test_missing_or_stale_artifacts_give_safe_mode_with_the_command_that_builds_them(
    tmp_path: Path, mosquitto: MosquittoBroker, start_station: Any, exported: str
) -> None:
    # `edge run` only loads: it never exports, it names the one command that does.
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    if exported == "another model":
        (artifacts / "vision_encoder.onnx").write_bytes(b"made by an older model")
        write_manifest(
            artifacts, Manifest(model_id="lite0-000000000000", spec={}, weights_sha256="", opset=17, io={})
        )
    before = sorted(p.name for p in artifacts.iterdir())
    config = station_config(tmp_path, mosquitto, artifacts)
    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/#"])
    sub.wait_subscribed()
    proc = start_station(config)
    log = tmp_path / "station.log"
    safe = wait_state(sub, "safe_mode", 120, log)
    assert f"run `edge export onnx --out {artifacts}` first" in safe["reason"], safe["reason"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == EXIT_SAFE_MODE
    assert sorted(p.name for p in artifacts.iterdir()) == before  # nothing exported behind the line's back
    assert "Traceback" not in log.read_text()
    sub.close()


def test_a_corrupt_golden_image_gives_safe_mode_with_its_path_and_no_traceback(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    artifact_dir: Path,
    start_station: Any,
) -> None:
    config = station_config(tmp_path, mosquitto, artifact_dir)
    corrupt = tmp_path / "golden" / "zz_corrupt.png"
    corrupt.write_bytes(b"not an image")
    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/#"])
    sub.wait_subscribed()
    proc = start_station(config)
    log = tmp_path / "station.log"
    safe = wait_state(sub, "safe_mode", 120, log)
    assert f"golden image {corrupt}: not a readable image" in safe["reason"]
    assert "Error" not in safe["reason"]  # no Python class name on `state` for the line to decode
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == EXIT_SAFE_MODE
    assert "Traceback" not in log.read_text()
    sub.close()


def test_sparkplug_true_makes_the_station_an_edge_node_and_sigkill_its_ndeath(
    tmp_path: Path, mosquitto: MosquittoBroker, artifact_dir: Path, start_station: Any
) -> None:
    config = station_config(tmp_path, mosquitto, artifact_dir)
    data = yaml.safe_load(config.read_text())
    data["mqtt"]["sparkplug"] = True  # the original form of the setting, now honoured
    config.write_text(yaml.safe_dump(data))
    scada = SparkplugHost(mosquitto.host, mosquitto.port)
    scada.wait_subscribed()
    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/#"])
    sub.wait_subscribed()
    proc = start_station(config)
    log = tmp_path / "station.log"
    try:
        (nbirth,) = scada.wait_count("NBIRTH", 1, 120)
        assert nbirth.topic == "spBv1.0/plant/NBIRTH/l1-st9", "group = site, node = <line>-<station>"
        (dbirth,) = scada.wait_count("DBIRTH", 1, 10)
        assert dbirth.topic == "spBv1.0/plant/DBIRTH/l1-st9/inspection"
        found = wait_verdicts(sub, 3, timeout_s=60, root=ROOT)  # the JSON topics are unchanged
        wanted = {v["part_id"] for v in found}

        def parts_seen(messages: list[Any]) -> set[Any]:
            return {
                m.value("Verdict/Part ID")
                for m in messages
                if m.kind == "DDATA" and "Verdict/Part ID" in m.names
            }

        assert scada.wait_for(lambda ms: wanted <= parts_seen(ms), 10), "one DDATA per verdict"
        by_part = {m.value("Verdict/Part ID"): m for m in scada.of("DDATA") if "Verdict/Part ID" in m.names}
        for verdict in found:
            spb = by_part[verdict["part_id"]]
            assert spb.value("Verdict/Code") == verdict["code"]
            assert spb.value("Verdict/Score") == pytest.approx(verdict["score"], abs=1e-5)
            assert spb.value("Verdict/SKU") == verdict["sku"] == "plate"
            assert spb.value("Verdict/Box Count") == len(verdict["boxes"])
        assert scada.of("NDEATH") == []
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        (ndeath,) = scada.wait_count("NDEATH", 1, 10)
        assert ndeath.topic == "spBv1.0/plant/NDEATH/l1-st9"
        assert ndeath.value("bdSeq") == nbirth.value("bdSeq"), log.read_text()[-2000:]
    finally:
        scada.close()
        sub.close()


def test_sparkplug_off_by_default_publishes_nothing_on_spbv1(
    tmp_path: Path, mosquitto: MosquittoBroker, artifact_dir: Path, start_station: Any
) -> None:
    config = station_config(tmp_path, mosquitto, artifact_dir)
    scada = SparkplugHost(mosquitto.host, mosquitto.port)
    scada.wait_subscribed()
    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/#"])
    sub.wait_subscribed()
    proc = start_station(config)
    try:
        wait_verdicts(sub, 3, timeout_s=120, root=ROOT)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert scada.messages == [], "mqtt.sparkplug is off: nothing on spBv1.0/#"
        assert not (tmp_path / "data" / "sparkplug-bdseq").exists()
    finally:
        scada.close()
        sub.close()


OPCUA_PASSWORD = "plc-secret"


def opcua_section(port: int) -> dict[str, Any]:
    plc = {
        "name": "plc",
        "role": "controller",
        "password_hash": hash_password(OPCUA_PASSWORD, iterations=1000),
    }
    return {"enabled": True, "bind": "127.0.0.1", "port": port, "users": [plc]}


async def opcua_connect(port: int, tmp_path: Path, proc: subprocess.Popen[bytes]) -> Any:
    """Connect as the PLC once the station serves OPC UA (it starts once the banks are built)."""
    log = tmp_path / "station.log"
    deadline = time.monotonic() + 120
    while True:
        try:
            endpoint = f"opc.tcp://127.0.0.1:{port}/edge-inspection/"
            return await opcua_client.connect(endpoint, tmp_path, "plc", OPCUA_PASSWORD)
        except (OSError, TimeoutError):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"no OPC UA server\n{log.read_text()[-3000:]}") from None
            await asyncio.sleep(0.5)


def test_opcua_server_shows_the_run_and_selects_the_recipe(
    tmp_path: Path, mosquitto: MosquittoBroker, artifact_dir: Path, start_station: Any
) -> None:
    port = free_port()
    config = station_config(tmp_path, mosquitto, artifact_dir, opcua=opcua_section(port))
    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/#"])
    sub.wait_subscribed()
    proc = start_station(config)
    log = tmp_path / "station.log"

    async def scenario() -> None:
        client = await opcua_connect(port, tmp_path, proc)
        try:
            idx, system = await opcua_client.vision_system(client)
            etype = await client.nodes.base_event_type.get_child(f"{idx}:ResultReadyEventType")
            events = opcua_client.Events()
            subscription = await client.create_subscription(50, events)
            await subscription.subscribe_events(system, etype)
            state = await opcua_client.read(system, idx, "VisionStateMachine", "CurrentState")
            assert state.Text == "Operational", log.read_text()[-2000:]
            assert await opcua_client.read(system, idx, "RecipeManagement", "Recipes") == ["plate"]
            recipes = await system.get_child(f"{idx}:RecipeManagement")
            assert (await recipes.call_method(f"{idx}:ActivateRecipe", "plate"))[0] == 0
            error, message = await recipes.call_method(f"{idx}:ActivateRecipe", "gearbox")
            assert (error, "unknown SKU 'gearbox'" in message) == (1, True)
            deadline = time.monotonic() + 60
            while len(events.received) < 3:
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                await asyncio.sleep(0.1)
            json_verdicts = {v["part_id"]: v for v in wait_verdicts(sub, 6, timeout_s=60, root=ROOT)}
            for event in events.received:  # every OPC UA result is the part's JSON verdict
                verdict = json_verdicts[event.ResultId]
                assert (event.ResultCode, event.ProductId) == (verdict["code"], verdict["sku"])
                assert event.BoxCount == len(verdict["boxes"])
            counted = sum(
                [await opcua_client.read(system, idx, "Counters", n) for n in ("PartsOk", "PartsNg")]
            )
            assert counted >= len(events.received)
        finally:
            await client.disconnect()

    try:
        asyncio.run(scenario())
        assert wait_state(sub, "online", 10, log)["sku"] == "plate"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert (tmp_path / "data" / "opcua" / "server-cert.der").is_file(), "made at first start, kept"
    finally:
        sub.close()


def test_opcua_in_safe_mode_says_error_with_the_reason_and_refuses_recipes(
    tmp_path: Path, mosquitto: MosquittoBroker, start_station: Any
) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()  # nothing exported: the station cannot start and enters safe mode
    port = free_port()
    config = station_config(tmp_path, mosquitto, artifacts, opcua=opcua_section(port))
    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/#"])
    sub.wait_subscribed()
    proc = start_station(config)
    log = tmp_path / "station.log"
    safe = wait_state(sub, "safe_mode", 120, log)

    async def scenario() -> None:
        client = await opcua_connect(port, tmp_path, proc)
        try:
            idx, system = await opcua_client.vision_system(client)
            deadline = time.monotonic() + 10
            while (
                await opcua_client.read(system, idx, "VisionStateMachine", "CurrentState")
            ).Text != "Error":
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                await asyncio.sleep(0.1)
            assert await opcua_client.read(system, idx, "VisionStateMachine", "Reason") == safe["reason"]
            recipes = await system.get_child(f"{idx}:RecipeManagement")
            error, message = await recipes.call_method(f"{idx}:ActivateRecipe", "plate")
            assert error == 1
            assert message.startswith("station is in safe mode"), message
        finally:
            await client.disconnect()

    try:
        asyncio.run(scenario())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == EXIT_SAFE_MODE
    finally:
        sub.close()


def test_sparkplug_in_safe_mode_births_with_the_safe_mode_state(
    tmp_path: Path, mosquitto: MosquittoBroker, start_station: Any
) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()  # nothing exported: safe mode
    config = station_config(tmp_path, mosquitto, artifacts)
    data = yaml.safe_load(config.read_text())
    data["mqtt"]["sparkplug"] = True
    config.write_text(yaml.safe_dump(data))
    scada = SparkplugHost(mosquitto.host, mosquitto.port)
    scada.wait_subscribed()
    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/#"])
    sub.wait_subscribed()
    proc = start_station(config)
    log = tmp_path / "station.log"
    try:
        safe = wait_state(sub, "safe_mode", 120, log)
        (dbirth,) = scada.wait_count("DBIRTH", 1, 30)
        assert dbirth.value("State/Status") == "safe_mode"
        assert dbirth.value("State/Reason") == safe["reason"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == EXIT_SAFE_MODE
        (ndeath,) = scada.wait_count("NDEATH", 1, 10)
        assert ndeath.value("bdSeq") == scada.of("NBIRTH")[0].value("bdSeq")
    finally:
        scada.close()
        sub.close()
