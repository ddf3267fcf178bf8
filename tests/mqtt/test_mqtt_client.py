"""StationMqtt against a real Mosquitto: contract topics, last will, commands, verdict delivery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.mosquitto import BrokerFactory, MosquittoBroker
from fixtures.mqtt_subscriber import Received, Subscriber

from edge.inspection.types import Box, Verdict
from edge.mqtt import (
    CommandRejected,
    ConfigRef,
    Handshake,
    LatencyStats,
    MetricsPayload,
    MqttSettings,
    Outbox,
    ReviewPayload,
    StatePayload,
    StationMqtt,
    VerdictPayload,
)
from edge.mqtt.validate import errors

ROOT = "plant1/line2/st3"


class RecordingHandler:
    """A runtime stand-in that knows two SKUs and records the commands it accepted."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def on_sku(self, sku: str) -> None:
        if sku not in ("A100", "B200"):
            raise CommandRejected(f"unknown SKU {sku!r}; known: A100, B200")
        self.calls.append(("sku", sku))

    def on_trigger(self, part_id: str | None) -> None:
        self.calls.append(("trigger", part_id))

    def on_ack(self, part_id: str) -> None:
        self.calls.append(("ack", part_id))

    def on_pause(self) -> None:
        self.calls.append(("pause", None))

    def on_resume(self) -> None:
        raise RuntimeError("resume exploded")  # a handler bug must become an error reply, not a crash

    def on_reload(self) -> None:
        self.calls.append(("reload", None))


def settings(broker: MosquittoBroker, **overrides: object) -> MqttSettings:
    base: dict[str, object] = {
        "host": broker.host,
        "port": broker.port,
        "topic_root": ROOT,
        "client_id": "station-st3",
        "validate_outgoing": True,
    }
    base.update(overrides)
    return MqttSettings(**base)  # type: ignore[arg-type]


@pytest.fixture
def station(mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[tuple[StationMqtt, RecordingHandler]]:
    handler = RecordingHandler()
    state = StatePayload(
        status="online",
        since=time.time(),
        config=ConfigRef("st3", 4, "ab12"),
        sku=None,
        backend="onnxruntime-cpu",
    )
    with Outbox(tmp_path / "outbox.db") as outbox:
        client = StationMqtt(settings(mosquitto), outbox, handler, state=state)
        client.start()
        assert client.wait_connected(10), client.last_error
        yield client, handler
        client.stop(flush_timeout_s=2)


@pytest.fixture
def plc(mosquitto: MosquittoBroker) -> Iterator[Subscriber]:
    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/#"])
    sub.wait_subscribed()
    yield sub
    sub.close()


def assert_valid(schema: str, messages: list[Received]) -> None:
    assert messages, f"no {schema} message received"
    for message in messages:
        assert errors(schema, message.json()) == [], message.payload


def test_state_is_retained_online_and_valid(
    station: tuple[StationMqtt, RecordingHandler], plc: Subscriber
) -> None:
    assert plc.wait_for(lambda ms: any(m.topic == f"{ROOT}/state" for m in ms), 5)
    states = plc.on(f"{ROOT}/state")
    assert_valid("state", states)
    assert states[-1].json()["status"] == "online"
    assert states[-1].json()["config"] == {"id": "st3", "version": 4, "hash": "ab12"}


def test_verdict_and_result_arrive_valid_in_order(
    station: tuple[StationMqtt, RecordingHandler], plc: Subscriber
) -> None:
    client, _ = station
    verdicts = [
        VerdictPayload(
            part_id="P1",
            seq=1,
            sku="A100",
            verdict=Verdict.NG,
            score=1.7,
            threshold=1.0,
            boxes=[Box(10, 12, 30, 8, 1.7, 190)],
            template_id="A100/golden_03",
            latency_ms={"encode": 12.5, "compare": 4.0, "total": 21.0},
            model_id="lite0-v1",
            backend="onnxruntime-cpu",
            frame_ts=time.time(),
        ),
        VerdictPayload.uninspected(
            part_id="P2", seq=2, sku="A100", reason="inspection queue full", frame_ts=1.0
        ),
        VerdictPayload.uninspected(
            part_id="P3", seq=3, reason="model raised ValueError: bad shape", error=True
        ),
    ]
    for verdict in verdicts:
        client.publish_verdict(verdict)
    assert client.wait_drained(10)
    assert plc.wait_for(lambda ms: sum(m.topic == f"{ROOT}/result" for m in ms) == 3, 5)
    assert_valid("verdict", plc.on(f"{ROOT}/verdict"))
    assert_valid("result", plc.on(f"{ROOT}/result"))
    assert [m.json()["part_id"] for m in plc.on(f"{ROOT}/verdict")] == ["P1", "P2", "P3"]
    assert [m.json()["code"] for m in plc.on(f"{ROOT}/result")] == [1, 2, 3]
    assert plc.on(f"{ROOT}/verdict")[0].json()["boxes"] == [[10, 12, 30, 8, 1.7, 190]]


def test_ready_review_metrics_are_published_valid(
    station: tuple[StationMqtt, RecordingHandler], plc: Subscriber
) -> None:
    client, _ = station
    handshake = Handshake(client.publish_ready)
    handshake.publish_current()
    handshake.select_sku("A100")
    client.publish_review(ReviewPayload(part_id="P1", disposition="false_alarm", user="op7", comment="glare"))
    metrics = MetricsPayload(
        window_s=10,
        frames_in=100,
        parts_inspected=98,
        parts_ng=3,
        not_inspected=2,
        errors=0,
        drops=0,
        throughput_pps=9.8,
        queue_depth=1,
        outbox_depth=client.outbox.depth(),
        latency_ms={"total": LatencyStats(40, 55, 80, 95)},
        extra={"camera_incomplete": 1},
    )
    assert client.publish_metrics(metrics)
    assert plc.wait_for(
        lambda ms: {m.topic for m in ms} >= {f"{ROOT}/{t}" for t in ("ready", "review", "metrics")}, 5
    )
    assert plc.wait_for(lambda ms: sum(m.topic == f"{ROOT}/ready" for m in ms) >= 2, 5)
    assert_valid("ready", plc.on(f"{ROOT}/ready"))
    assert_valid("review", plc.on(f"{ROOT}/review"))
    assert_valid("metrics", plc.on(f"{ROOT}/metrics"))
    assert [m.json()["ready"] for m in plc.on(f"{ROOT}/ready")] == [False, True]


def test_stop_announces_offline_and_not_ready(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.db") as outbox:
        client = StationMqtt(settings(mosquitto), outbox)
        client.start()
        assert client.wait_connected(10)
        client.publish_verdict(VerdictPayload.uninspected(part_id="P9", seq=9, reason="shutdown test"))
        assert client.stop(flush_timeout_s=5)
    late = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/state", f"{ROOT}/ready"])
    try:
        assert late.wait_for(lambda ms: len(ms) >= 2, 5)
        retained = {m.topic: m.json() for m in late.messages if m.retain}
        assert retained[f"{ROOT}/state"]["status"] == "offline"
        assert retained[f"{ROOT}/state"]["reason"] == "station stopped"
        assert retained[f"{ROOT}/ready"]["ready"] is False
    finally:
        late.close()


def replies(plc: Subscriber) -> list[dict[str, object]]:
    return [m.json() for m in plc.on(f"{ROOT}/reply")]


@pytest.mark.parametrize(
    ("topic", "payload", "retain", "expected"),
    [
        ("cmd/sku", b"{not json", False, "not valid JSON"),
        ("cmd/sku", b"\xff\xfe\x00garbage", False, "not UTF-8"),
        ("cmd/sku", b'{"sku": "' + b"A" * 5000 + b'"}', False, "exceeds the 4096-byte limit"),
        ("cmd/sku", b'{"sku": "A100"}', True, "retained command refused"),
        ("cmd/sku", b'{"sku": "Z999"}', False, "unknown SKU 'Z999'"),
        ("cmd/sku", b'{"sku": 42}', False, "$.sku"),
        ("cmd/sku", b'{"recipe": "A100"}', False, "'sku' is a required property"),
        ("cmd/sku", b"[1, 2, 3]", False, "is not of type 'object'"),
        ("cmd/ack", b"{}", False, "'part_id' is a required property"),
        ("cmd/launch", b"{}", False, "unknown command 'launch'"),
        ("cmd/resume", b"", False, "internal error: RuntimeError: resume exploded"),
    ],
)
def test_bad_commands_get_a_clear_error_reply_and_the_station_keeps_running(
    station: tuple[StationMqtt, RecordingHandler],
    plc: Subscriber,
    topic: str,
    payload: bytes,
    retain: bool,
    expected: str,
) -> None:
    client, handler = station
    plc.publish(f"{ROOT}/{topic}", payload, retain=retain)
    assert plc.wait_for(lambda ms: any(m.topic == f"{ROOT}/reply" for m in ms), 5)
    (reply,) = replies(plc)
    assert errors("reply", reply) == []
    assert reply["ok"] is False
    assert reply["topic"] == f"{ROOT}/{topic}"
    assert expected in str(reply["error"])
    assert handler.calls == []
    if retain:  # clear the retained command so it does not linger on the test broker
        plc.publish(f"{ROOT}/{topic}", b"", retain=True)
    # Still alive: a good command is accepted and answered.
    plc.publish(f"{ROOT}/cmd/sku", b'{"sku": "B200", "request_id": "r-7"}')
    assert plc.wait_for(lambda ms: sum(m.topic == f"{ROOT}/reply" for m in ms) >= 2, 5)
    last = replies(plc)[-1]
    assert last == {**last, "ok": True, "error": None, "request_id": "r-7", "command": "sku"}
    assert handler.calls == [("sku", "B200")]
    assert client.connected


def test_good_commands_reach_the_handler(
    station: tuple[StationMqtt, RecordingHandler], plc: Subscriber
) -> None:
    _, handler = station
    for topic, payload in [
        ("cmd/trigger", b""),
        ("cmd/trigger", b'{"part_id": "PLC-0001"}'),
        ("cmd/ack", b'{"part_id": "PLC-0001"}'),
        ("cmd/pause", b"{}"),
        ("cmd/reload", b""),
    ]:
        plc.publish(f"{ROOT}/{topic}", payload)
    assert plc.wait_for(lambda ms: sum(m.topic == f"{ROOT}/reply" for m in ms) == 5, 5)
    assert all(r["ok"] for r in replies(plc)), replies(plc)
    assert handler.calls == [
        ("trigger", None),
        ("trigger", "PLC-0001"),
        ("ack", "PLC-0001"),
        ("pause", None),
        ("reload", None),
    ]


def test_a_retained_command_waiting_on_the_broker_is_refused_at_connect(
    mosquitto: MosquittoBroker, plc: Subscriber, tmp_path: Path
) -> None:
    plc.publish(f"{ROOT}/cmd/sku", b'{"sku": "A100"}', retain=True)  # a PLC program bug
    handler = RecordingHandler()
    with Outbox(tmp_path / "outbox.db") as outbox:
        client = StationMqtt(settings(mosquitto), outbox, handler)
        client.start()
        try:
            assert plc.wait_for(lambda ms: any(m.topic == f"{ROOT}/reply" for m in ms), 10)
            (reply,) = replies(plc)
            assert reply["ok"] is False
            assert "retained command refused" in str(reply["error"])
            assert handler.calls == []
        finally:
            plc.publish(f"{ROOT}/cmd/sku", b"", retain=True)
            client.stop(flush_timeout_s=1)


def test_a_verdict_the_broker_refuses_is_kept_and_delivered_once_allowed(
    mosquitto_factory: BrokerFactory, tmp_path: Path
) -> None:
    # An ACL that denies the verdict topic: the broker answers PUBACK 135 (not authorized). That is not a
    # delivery: the verdict stays in the outbox, the stream goes on, and once the ACL is fixed it arrives.
    denied = f"topic readwrite #\ntopic deny {ROOT}/verdict\n"
    broker = mosquitto_factory(acl=denied)
    plc = Subscriber(broker.host, broker.port, [f"{ROOT}/#"])
    plc.wait_subscribed()
    with Outbox(tmp_path / "outbox.db") as outbox:
        client = StationMqtt(settings(broker, retry_refused_s=0.5), outbox, RecordingHandler())
        faults: list[str | None] = []
        client.on_refusal = faults.append  # the station raises (and later clears) a fault on `state`
        client.start()
        try:
            assert client.wait_connected(10), client.last_error
            client.publish_verdict(VerdictPayload.uninspected(part_id="P1", seq=1, reason="test"))
            assert plc.wait_for(lambda ms: any(m.topic == f"{ROOT}/result" for m in ms), 5)
            # (Mosquitto also drops the connection after a denied publish; the result is sent again.)
            deadline = time.monotonic() + 10
            while (outbox.broker_refusals()[0], outbox.depth()) != (1, 1) and time.monotonic() < deadline:
                time.sleep(0.05)
            count, last = outbox.broker_refusals()
            assert count == 1 and last is not None and last.startswith(f"{ROOT}/verdict: Not authorized")
            assert outbox.depth() == 1 and not plc.on(f"{ROOT}/verdict")
            assert faults and faults[0] is not None
            assert faults[0].startswith(f"broker refuses {ROOT}/verdict: Not authorized"), faults
            broker.reload(acl="topic readwrite #\n")
            assert plc.wait_for(lambda ms: any(m.topic == f"{ROOT}/verdict" for m in ms), 10)
            assert plc.on(f"{ROOT}/verdict")[0].json()["part_id"] == "P1"
            assert client.wait_drained(5) and outbox.broker_refusals() == (0, None)
            deadline = time.monotonic() + 5
            while faults[-1] is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert faults[-1] is None, faults  # the fault clears once the broker takes what it refused
        finally:
            client.stop(flush_timeout_s=2)
            plc.close()


def test_a_broker_that_keeps_dropping_the_station_is_not_stormed(
    mosquitto_factory: BrokerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Mosquitto closes the connection after every denied publish; the refused verdict is retried every
    # 0.5 s here, so without a backoff the station would reconnect about every second (reconnect_min_s).
    broker = mosquitto_factory(acl=f"topic readwrite #\ntopic deny {ROOT}/verdict\n")
    with Outbox(tmp_path / "outbox.db") as outbox:
        client = StationMqtt(
            settings(broker, retry_refused_s=0.5, reconnect_min_s=1, reconnect_max_s=30), outbox
        )
        client.start()
        try:
            assert client.wait_connected(10), client.last_error
            with caplog.at_level("WARNING", logger="edge.mqtt.client"):
                client.publish_verdict(VerdictPayload.uninspected(part_id="P1", seq=1, reason="test"))
                time.sleep(10.0)
            # Delays 2, 4, 8 s after connections that die young: at most 4 connections in those 10 s.
            assert 2 <= client.connects <= 4, client.connects
            assert any("reconnecting in 4 s" in r.getMessage() for r in caplog.records), caplog.text
            assert outbox.depth() == 1  # the refused verdict is kept throughout
        finally:
            client.stop(flush_timeout_s=1)
