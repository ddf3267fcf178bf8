"""How the station's state and verdicts read in OPC 40100-1 terms (pure functions, no server)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from edge.mqtt.payloads import StatePayload, VerdictPayload

#: OPC 40100-1 VisionStateMachine states by the station's ``state`` status. The station has no separate
#: Preoperational phase a client could see: it serves OPC UA once its config is loaded, so Preoperational
#: is only the moment before the first state arrives, and a stopped station says so before it goes.
VISION_STATES = ("Preoperational", "Halted", "Error", "Operational")
_BY_STATUS = {
    "online": "Operational",
    "paused": "Halted",
    "fault": "Error",
    "safe_mode": "Error",
    "offline": "Preoperational",
}


def vision_state(state: StatePayload) -> str:
    """The VisionStateMachine state of the station's ``state`` payload."""
    return _BY_STATUS.get(state.status, "Error")


@dataclass(frozen=True)
class ResultValues:
    """One verdict as the ``LastResult`` variables and the ``ResultReady`` event carry it."""

    result_id: str
    product_id: str
    result_code: int
    verdict: str
    score: float
    threshold: float
    box_count: int
    box_x: list[int]
    box_y: list[int]
    box_w: list[int]
    box_h: list[int]
    boxes_json: str
    reason: str
    seq: int
    timestamp: float


def result_values(verdict: VerdictPayload) -> ResultValues:
    """The OPC UA view of ``verdict``: no score reads 0.0 (``ResultCode`` 2/3 says why, in ``Reason``)."""
    boxes = list(verdict.boxes)
    return ResultValues(
        result_id=verdict.part_id,
        product_id=verdict.sku or "",
        result_code=verdict.verdict.code,
        verdict=verdict.verdict.value,
        score=float(verdict.score) if verdict.score is not None else 0.0,
        threshold=float(verdict.threshold) if verdict.threshold is not None else 0.0,
        box_count=len(boxes),
        box_x=[int(b.x) for b in boxes],
        box_y=[int(b.y) for b in boxes],
        box_w=[int(b.w) for b in boxes],
        box_h=[int(b.h) for b in boxes],
        boxes_json=json.dumps([b.as_list() for b in boxes], separators=(",", ":")),
        reason=verdict.reason or "",
        seq=int(verdict.seq),
        timestamp=float(verdict.frame_ts if verdict.frame_ts is not None else verdict.published_at),
    )
