"""Sparkplug B edge node against a real Mosquitto, read by a Sparkplug host application that decodes
every payload (tests/fixtures/sparkplug_host.py): births, DDATA per verdict, seq wrap, rebirth, NDEATH."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.mosquitto import MosquittoBroker
from fixtures.sparkplug_host import SparkplugHost
from pysparkplug import DataType, get_current_timestamp

from edge.inspection.types import Box, Verdict
from edge.mqtt import MqttSettings, StatePayload, VerdictPayload
from edge.mqtt.sparkplug import DEVICE_METRICS, SparkplugNode, SparkplugSettings

REPO = Path(__file__).resolve().parents[2]
GROUP, NODE, DEVICE = "plant", "l1-st1", "inspection"


def settings(
    broker: MosquittoBroker, bd_seq_file: Path | None = None, primary_host_id: str | None = None
) -> SparkplugSettings:
    connection = MqttSettings(
        host=broker.host, port=broker.port, topic_root="plant/l1/st1", client_id="edge-st1-spb",
        reconnect_min_s=1, reconnect_max_s=2,
    )  # fmt: skip
    return SparkplugSettings(
        connection, GROUP, NODE, DEVICE, bd_seq_file, primary_host_id=primary_host_id, restart_delay_s=0.2
    )


@pytest.fixture
def host(mosquitto: MosquittoBroker) -> Iterator[SparkplugHost]:
    scada = SparkplugHost(mosquitto.host, mosquitto.port)
    scada.wait_subscribed()
    yield scada
    scada.close()


@pytest.fixture
def node(mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[SparkplugNode]:
    state = StatePayload(status="online", since=0.0, sku="plate")
    edge_node = SparkplugNode(settings(mosquitto, tmp_path / "bdseq"), state)
    yield edge_node
    edge_node.stop()


def seqs(host: SparkplugHost) -> list[int | None]:
    """``seq`` of every message the node sent that has one (not NDEATH, not the host's own NCMD)."""
    return [m.seq for m in host.messages if m.kind in ("NBIRTH", "DBIRTH", "NDATA", "DDATA")]


def test_births_after_connect_carry_bdseq_and_every_metric_definition(
    host: SparkplugHost, node: SparkplugNode
) -> None:
    node.start()
    assert node.wait_born(10), node.last_error
    (nbirth,) = host.wait_count("NBIRTH", 1, 10)
    (dbirth,) = host.wait_count("DBIRTH", 1, 10)
    assert nbirth.topic == f"spBv1.0/{GROUP}/NBIRTH/{NODE}"
    assert nbirth.seq == 0 and nbirth.timestamp is not None
    assert nbirth.value("bdSeq") == 0 and nbirth.datatypes["bdSeq"] is DataType.UINT64
    assert nbirth.value("Node Control/Rebirth") is False
    assert nbirth.value("Node Info/Topic Root") == "plant/l1/st1"  # where the same station's JSON lives
    assert (nbirth.qos, nbirth.retain) == (0, False)

    assert dbirth.topic == f"spBv1.0/{GROUP}/DBIRTH/{NODE}/{DEVICE}"
    assert dbirth.seq == 1
    assert dbirth.datatypes == DEVICE_METRICS, "every device metric is defined, with its datatype"
    assert dbirth.value("State/Status") == "online" and dbirth.value("State/SKU") == "plate"
    assert dbirth.value("Counters/Parts NG") == 0
    assert dbirth.metric("Verdict/Score").is_null, "no part yet: declared, null"


def test_one_ddata_per_verdict_with_its_values_and_the_counters(
    host: SparkplugHost, node: SparkplugNode
) -> None:
    node.start()
    host.wait_count("DBIRTH", 1, 10)
    box = Box(x=10, y=20, w=5, h=6, score=2.5, area_px=30)
    verdicts = [
        VerdictPayload(part_id="P1", seq=1, sku="plate", verdict=Verdict.OK, score=0.25, threshold=1.0),
        VerdictPayload(
            part_id="P2", seq=2, sku="plate", verdict=Verdict.NG, score=2.5, threshold=1.0, boxes=(box, box)
        ),
        VerdictPayload.uninspected(part_id="P3", seq=3, reason="queue full", sku="plate"),
        VerdictPayload.uninspected(part_id="P4", seq=4, reason="encoder crashed", error=True),
    ]
    for verdict in verdicts:
        assert node.publish_verdict(verdict)
    ddata = host.wait_count("DDATA", 4, 10)
    assert all(m.topic == f"spBv1.0/{GROUP}/DDATA/{NODE}/{DEVICE}" for m in ddata)
    assert [m.value("Verdict/Part ID") for m in ddata] == ["P1", "P2", "P3", "P4"]
    assert [m.value("Verdict/Code") for m in ddata] == [0, 1, 2, 3]
    assert [m.value("Verdict/Verdict") for m in ddata] == ["OK", "NG", "NOT_INSPECTED", "ERROR"]
    assert [m.value("Verdict/Seq") for m in ddata] == [1, 2, 3, 4]
    ok, ng, uninspected, error = ddata
    assert ok.value("Verdict/Score") == pytest.approx(0.25) and ok.value("Verdict/Threshold") == 1.0
    assert ok.value("Verdict/Box Count") == 0 and ok.metric("Verdict/Reason").is_null
    assert ng.value("Verdict/Score") == pytest.approx(2.5) and ng.value("Verdict/Box Count") == 2
    assert ng.value("Verdict/SKU") == "plate"
    assert uninspected.metric("Verdict/Score").is_null and uninspected.value("Verdict/Reason") == "queue full"
    assert error.metric("Verdict/SKU").is_null and error.value("Verdict/Reason") == "encoder crashed"
    # Each DDATA carries the counter its verdict moved.
    assert ok.value("Counters/Parts OK") == 1 and ng.value("Counters/Parts NG") == 1
    assert uninspected.value("Counters/Not Inspected") == 1 and error.value("Counters/Errors") == 1
    assert all(m.datatypes[name] is DEVICE_METRICS[name] for m in ddata for name in m.names)
    assert all(m.qos == 0 for m in ddata), "NDATA/DDATA are QoS 0 (the JSON outbox is the guaranteed path)"
    assert seqs(host) == [0, 1, 2, 3, 4, 5]


def test_state_changes_are_ddata(host: SparkplugHost, node: SparkplugNode) -> None:
    node.start()
    host.wait_count("DBIRTH", 1, 10)
    assert node.publish_state(StatePayload(status="fault", since=0.0, sku="plate", reason="camera: gone"))
    (ddata,) = host.wait_count("DDATA", 1, 10)
    assert ddata.value("State/Status") == "fault" and ddata.value("State/Reason") == "camera: gone"


def test_seq_counts_every_message_and_wraps_from_255_to_0(host: SparkplugHost, node: SparkplugNode) -> None:
    node.start()
    host.wait_count("DBIRTH", 1, 10)
    for index in range(300):
        node.publish_verdict(VerdictPayload.uninspected(part_id=f"P{index}", seq=index + 1, reason="wrap"))
    ddata = host.wait_count("DDATA", 300, 20)
    expected = [n % 256 for n in range(302)]  # NBIRTH 0, DBIRTH 1, then 300 DDATA
    assert seqs(host) == expected
    assert 255 in seqs(host) and seqs(host)[256] == 0
    assert ddata[-1].value("Counters/Not Inspected") == 300


def test_ncmd_rebirth_sends_new_births_with_current_values(host: SparkplugHost, node: SparkplugNode) -> None:
    node.start()
    host.wait_count("DBIRTH", 1, 10)
    node.publish_verdict(VerdictPayload(part_id="P9", seq=9, sku="plate", verdict=Verdict.NG, score=3.0,
                                        threshold=1.0))  # fmt: skip
    host.wait_count("DDATA", 1, 10)
    host.send_rebirth(GROUP, NODE)
    nbirths = host.wait_count("NBIRTH", 2, 10)
    dbirths = host.wait_count("DBIRTH", 2, 10)
    assert nbirths[1].seq == 0 and dbirths[1].seq == 1, "a rebirth starts seq again"
    assert nbirths[1].value("bdSeq") == nbirths[0].value("bdSeq"), "same connection: same bdSeq"
    assert dbirths[1].value("Verdict/Part ID") == "P9" and dbirths[1].value("Counters/Parts NG") == 1
    assert seqs(host) == [0, 1, 2, 0, 1]
    assert node.births == 2


def test_clean_stop_publishes_ndeath_with_the_births_bdseq_and_a_restart_counts_on(
    host: SparkplugHost, mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    first = SparkplugNode(settings(mosquitto, tmp_path / "bdseq"))
    first.start()
    (nbirth,) = host.wait_count("NBIRTH", 1, 10)
    first.stop()
    (ndeath,) = host.wait_count("NDEATH", 1, 10)
    assert ndeath.topic == f"spBv1.0/{GROUP}/NDEATH/{NODE}"
    assert ndeath.value("bdSeq") == nbirth.value("bdSeq") == 0
    assert ndeath.seq is None, "NDEATH carries no seq"

    second = SparkplugNode(settings(mosquitto, tmp_path / "bdseq"))
    second.start()
    try:
        nbirths = host.wait_count("NBIRTH", 2, 10)
        assert nbirths[1].value("bdSeq") == 1, "bdSeq is kept across restarts, so a host can tell them apart"
    finally:
        second.stop()


def test_bdseq_wraps_from_255_to_0(host: SparkplugHost, mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    (tmp_path / "bdseq").write_text("255\n")
    edge_node = SparkplugNode(settings(mosquitto, tmp_path / "bdseq"))
    edge_node.start()
    try:
        (nbirth,) = host.wait_count("NBIRTH", 1, 10)
        assert nbirth.value("bdSeq") == 255
        assert (tmp_path / "bdseq").read_text().strip() == "0"
    finally:
        edge_node.stop()


def test_sigkill_makes_the_broker_publish_ndeath_the_will(
    host: SparkplugHost, mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    bd_file = tmp_path / "bdseq"
    bd_file.write_text("41\n")
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "mqtt" / "sparkplug_node.py"), "--port", str(mosquitto.port),
         "--bd-seq-file", str(bd_file), "--verdicts", "3"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=(tmp_path / "node.log").open("wb"),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().decode().strip() for _ in range(2)]
        assert lines == ["BORN", "PUBLISHED"], (lines, (tmp_path / "node.log").read_text())
        host.wait_count("DDATA", 3, 10)
        assert host.of("NDEATH") == [], "no death while the node lives"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        (ndeath,) = host.wait_count("NDEATH", 1, 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    (nbirth,) = host.of("NBIRTH")
    assert ndeath.topic == "spBv1.0/g/NDEATH/l-s"
    assert ndeath.value("bdSeq") == nbirth.value("bdSeq") == 41, "the will names the bdSeq of its birth"
    assert ndeath.qos == 1, "the will is registered at QoS 1"


def test_nothing_is_published_before_the_births(host: SparkplugHost, node: SparkplugNode) -> None:
    # Not started: a verdict is kept for the next birth, never sent ahead of it.
    assert node.publish_verdict(VerdictPayload.uninspected(part_id="P0", seq=1, reason="early")) is False
    node.start()
    (dbirth,) = host.wait_count("DBIRTH", 1, 10)
    assert dbirth.value("Verdict/Part ID") == "P0" and dbirth.value("Counters/Not Inspected") == 1
    assert [m.kind for m in host.messages] == ["NBIRTH", "DBIRTH"]


def test_every_device_metric_is_documented_with_its_datatype() -> None:
    doc = (REPO / "docs" / "mqtt.md").read_text(encoding="utf-8")
    names = {"STRING": "String", "UINT64": "UInt64", "INT32": "Int32", "DOUBLE": "Double", "UINT32": "UInt32"}
    for metric, datatype in DEVICE_METRICS.items():
        rows = [line for line in doc.splitlines() if f"`{metric}`" in line and line.startswith("|")]
        assert rows, f"{metric} is not in docs/mqtt.md"
        assert f"| {names[datatype.name]} |" in rows[0], (metric, rows[0])


def test_with_a_primary_host_births_wait_for_its_state_online_and_its_offline_ends_the_session(
    host: SparkplugHost, mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    t0 = get_current_timestamp()  # a retained STATE of an earlier run may still be on the broker
    host.publish_state("scada1", online=False, timestamp=t0)  # retained: the host is not there yet
    node = SparkplugNode(settings(mosquitto, tmp_path / "bdseq", primary_host_id="scada1"))
    try:
        node.start()
        assert not node.wait_born(1.5), "no births while the primary host is offline"
        assert host.of("NBIRTH") == []

        host.publish_state("scada1", online=True, timestamp=t0 + 2000)
        (first,) = host.wait_count("NBIRTH", 1, 10)
        host.wait_count("DBIRTH", 1, 10)
        assert node.wait_born(5) and node.host_online

        host.publish_state("scada1", online=False, timestamp=t0 + 1500)  # older than the last STATE: ignored
        node.publish_state(StatePayload(status="paused", since=0.0))
        assert host.wait_for(lambda ms: any(m.kind == "DDATA" for m in ms), 10)
        assert host.of("NDEATH") == []

        host.publish_state("scada1", online=False, timestamp=t0 + 3000)  # the host goes away
        (death,) = host.wait_count("NDEATH", 1, 10)
        assert death.value("bdSeq") == first.value("bdSeq"), "NDEATH ends the session NBIRTH began"
        assert not node.born

        host.publish_state("scada1", online=True, timestamp=t0 + 4000)  # back: a new session, the next bdSeq
        second = host.wait_count("NBIRTH", 2, 15)[-1]
        assert second.value("bdSeq") == (first.value("bdSeq") + 1) % 256
        assert second.seq == 0
        dbirth = host.wait_count("DBIRTH", 2, 10)[-1]
        assert dbirth.value("State/Status") == "paused", "the new birth carries the current values"
    finally:
        node.stop()
        host.publish_state("scada1", online=True, timestamp=t0 + 5000)  # leave no offline STATE retained


def test_without_a_primary_host_a_state_message_changes_nothing(
    host: SparkplugHost, node: SparkplugNode
) -> None:
    node.start()
    assert node.wait_born(10)
    host.publish_state("scada2", online=False)
    node.publish_state(StatePayload(status="paused", since=0.0))
    assert host.wait_for(lambda ms: any(m.kind == "DDATA" for m in ms), 10)
    assert host.of("NDEATH") == [] and node.born
    host.publish_state("scada2", online=True)
