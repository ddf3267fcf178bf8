"""Metrics: the MQTT payload matches its schema; the Prometheus endpoint serves the counters."""

from __future__ import annotations

import urllib.request

from edge.capture.part import Part
from edge.inspection.types import Verdict
from edge.mqtt import VerdictPayload
from edge.mqtt.validate import validate
from edge.runtime.metrics import MetricsServer, StationMetrics


def record(metrics: StationMetrics, seq: int, kind: Verdict) -> None:
    if kind in (Verdict.OK, Verdict.NG):
        v = VerdictPayload(
            part_id=f"p{seq}",
            seq=seq,
            sku="a",
            verdict=kind,
            score=1.0,
            threshold=2.0,
            latency_ms={"encode": 30.0, "total": 100.0 + seq},
            frame_ts=1.0,
            published_at=1.2,
        )
    else:
        v = VerdictPayload.uninspected(
            part_id=f"p{seq}", seq=seq, reason="overload", error=kind is Verdict.ERROR
        )
    metrics(Part(part_id=f"p{seq}", seq=seq, sku="a"), v, None)


def test_snapshot_counts_and_matches_the_schema() -> None:
    metrics = StationMetrics(
        lambda: {"frames_in": 7, "queue_depth": 2, "outbox_depth": 1, "overload": 1, "camera_incomplete": 3}
    )
    for seq, kind in enumerate([Verdict.OK, Verdict.NG, Verdict.OK, Verdict.NOT_INSPECTED, Verdict.ERROR]):
        record(metrics, seq, kind)
    body = metrics.snapshot().to_dict()
    validate("metrics", body)
    assert (body["frames_in"], body["parts_inspected"], body["parts_ng"]) == (7, 3, 1)
    assert (body["not_inspected"], body["errors"], body["drops"], body["queue_depth"]) == (1, 1, 1, 2)
    assert abs(body["ng_rate"] - 1 / 3) < 1e-9
    assert body["camera_incomplete"] == 3
    assert body["latency_ms"]["total"]["max"] == 102.0
    assert body["latency_ms"]["frame_to_outbox"]["p50"] == 200.0


def test_prometheus_endpoint_serves_counters_and_gauges() -> None:
    metrics = StationMetrics(lambda: {"queue_depth": 4})
    record(metrics, 1, Verdict.NG)
    server = MetricsServer(metrics.registry, 0)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5).read().decode()
    finally:
        server.stop()
    assert 'edge_parts_total{verdict="NG"} 1.0' in text
    assert 'edge_parts_total{verdict="NOT_INSPECTED"} 0.0' in text
    assert 'edge_station{name="queue_depth"} 4.0' in text
    assert 'edge_stage_latency_seconds_count{stage="encode"} 1.0' in text
