"""Payload builders against the JSON Schemas, the schemas themselves, and the documented contract."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from edge.inspection.types import Box, InspectionResult, Registration, Verdict
from edge.mqtt import (
    ConfigRef,
    LatencyStats,
    MetricsPayload,
    ReadyPayload,
    ReviewPayload,
    StatePayload,
    VerdictPayload,
)
from edge.mqtt.payloads import ReplyPayload, encode, iso_utc
from edge.mqtt.topics import COMMAND_NAMES
from edge.mqtt.validate import SCHEMA_NAMES, PayloadError, errors, schema, validate

DOC = Path(__file__).resolve().parents[2] / "docs" / "mqtt.md"


def inspection(verdict: Verdict) -> InspectionResult:
    return InspectionResult(
        verdict=verdict,
        score=np.float32(1.25).item(),
        threshold=1.0,
        boxes=[Box(3, 4, 10, 12, 1.25, 90)] if verdict is Verdict.NG else [],
        sku="A100",
        template_ids=["A100/g1", "A100/g2"],
        retrieval_scores=[0.99, 0.97],
        registrations=[Registration(np.eye(2, 3), 0.98, "ecc")],
        anomaly_map=np.zeros((4, 4), np.float32),
        map_scale=8.0,
        latency_ms={"encode": 10.0, "compare": 3.0},
    )


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_schema_is_valid_2020_12_and_shipped(name: str) -> None:
    Draft202012Validator.check_schema(schema(name))
    assert schema(name)["$id"].endswith(f"/v1/{name}.json")


@pytest.mark.parametrize("verdict", list(Verdict))
def test_every_verdict_kind_validates(verdict: Verdict) -> None:
    if verdict in (Verdict.OK, Verdict.NG):
        payload = VerdictPayload.from_inspection(
            inspection(verdict), part_id="P1", seq=7, model_id="m1", backend="ort-cpu", frame_ts=1.7e9
        )
    else:
        payload = VerdictPayload.uninspected(
            part_id="P1", seq=7, reason="queue full", error=verdict is Verdict.ERROR, frame_ts=1.7e9
        )
    body = payload.to_dict()
    assert errors("verdict", body) == []
    assert errors("result", payload.result().to_dict()) == []
    assert body["verdict"] == verdict.value
    assert body["code"] == payload.result().code == verdict.code
    json.loads(encode(body))  # real JSON: no NaN, no numpy types


def test_from_inspection_carries_boxes_template_and_latency() -> None:
    body = VerdictPayload.from_inspection(
        inspection(Verdict.NG), part_id="P2", seq=8, model_id="m1", backend="ort-cpu", frame_ts=None
    ).to_dict()
    assert body["boxes"] == [[3, 4, 10, 12, 1.25, 90]]
    assert body["template_id"] == "A100/g1"
    assert body["latency_ms"] == {"encode": 10.0, "compare": 3.0}
    assert body["frame_ts"] is None


def test_every_other_payload_validates() -> None:
    state = StatePayload("paused", since=0.0, config=ConfigRef("st3", "r12", "abc"), sku="A", backend="trt")
    samples = {
        "state": state.to_dict(),
        "ready": ReadyPayload(ready=False, sku=None, reason=None).to_dict(),
        "review": ReviewPayload(
            part_id="P", disposition="confirm_defect", user="op", defect_class="scratch"
        ).to_dict(),
        "reply": ReplyPayload(command=None, topic="x/y/z/cmd", ok=False, error="bad").to_dict(),
        "metrics": MetricsPayload(
            window_s=10,
            frames_in=0,
            parts_inspected=0,
            parts_ng=0,
            not_inspected=0,
            errors=0,
            drops=0,
            throughput_pps=0.0,
            queue_depth=0,
            outbox_depth=0,
            latency_ms={"total": LatencyStats(1, 2, 3, 4)},
        ).to_dict(),
    }
    for name, body in samples.items():
        assert errors(name, body) == [], name
    assert samples["metrics"]["ng_rate"] == 0.0
    assert samples["ready"]["reason"] == "not ready"  # a false flag always says why


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"verdict": "NOT_INSPECTED", "code": 2, "reason": None}, "$.reason"),
        ({"verdict": "OK", "code": 1}, "$.code"),
        ({"boxes": [[1, 2, 3]]}, "$.boxes[0]"),
        ({"score": "high"}, "$.score"),
        ({"frame_ts": "yesterday"}, "$.frame_ts"),
        ({"surprise": 1}, "Additional properties"),
    ],
)
def test_schema_rejects_contract_violations_naming_the_field(change: dict[str, object], where: str) -> None:
    body = VerdictPayload.uninspected(part_id="P", seq=1, reason="r").to_dict() | change
    with pytest.raises(PayloadError, match=re.escape(where)):
        validate("verdict", body)


def test_builders_refuse_payloads_the_schema_would_reject() -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        VerdictPayload(part_id="P", seq=1, sku=None, verdict=Verdict.ERROR)
    with pytest.raises(ValueError, match="needs a score and a threshold"):
        VerdictPayload(part_id="P", seq=1, sku=None, verdict=Verdict.OK)
    with pytest.raises(ValueError, match="finite"):
        VerdictPayload(part_id="P", seq=1, sku=None, verdict=Verdict.NG, score=float("nan"), threshold=1.0)
    with pytest.raises(ValueError, match="non-empty part_id"):
        VerdictPayload.uninspected(part_id="", seq=1, reason="r")


def test_timestamps_are_utc_iso_with_z() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(1714564800.125) == "2024-05-01T12:00:00.125Z"


def test_the_doc_lists_every_topic_and_schema() -> None:
    doc = DOC.read_text()
    for topic in ("state", "verdict", "result", "ready", "metrics", "review", "reply"):
        assert f"| `{topic}` |" in doc, topic
    for command in COMMAND_NAMES:
        assert f"| `cmd/{command}` |" in doc, command
    for name in SCHEMA_NAMES:
        assert f"`{name}.json`" in doc, name
