"""PLC handshake state: when the retained ready flag goes up and down, and why."""

from __future__ import annotations

from edge.inspection.types import Verdict
from edge.mqtt import Handshake, ReadyPayload, ResultPayload, result_code
from edge.mqtt.validate import errors


def flags(published: list[ReadyPayload]) -> list[tuple[bool, str | None]]:
    return [(p.ready, p.reason) for p in published]


def test_full_cycle_sku_trigger_result_ack() -> None:
    published: list[ReadyPayload] = []
    hs = Handshake(published.append)
    hs.publish_current()
    hs.select_sku("A100")
    hs.triggered("P1")
    hs.answered(ResultPayload("P1", 1, result_code(Verdict.NG)))
    assert hs.acked("P2") is False  # an ack for another part changes nothing
    assert hs.acked("P1") is True
    assert flags(published) == [
        (False, "no SKU selected (send cmd/sku)"),
        (True, None),
        (False, "inspecting part P1"),
        (False, "waiting for ack of part P1"),
        (True, None),
    ]
    assert all(errors("ready", p.to_dict()) == [] for p in published)
    assert published[-1].sku == "A100"


def test_pause_and_fault_override_and_nothing_is_republished_without_change() -> None:
    published: list[ReadyPayload] = []
    hs = Handshake(published.append, require_ack=False, max_in_flight=2)
    hs.select_sku("B")
    hs.triggered("P1")  # one of two slots used: still ready, no new message
    hs.pause()
    hs.fault("camera lost")
    hs.clear_fault()
    hs.resume()
    hs.answered(ResultPayload("P1", 1, 0))  # no ack required: nothing to wait for
    assert flags(published) == [
        (True, None),
        (False, "paused"),
        (False, "fault: camera lost"),
        (False, "paused"),
        (True, None),
    ]
    assert hs.ready


def test_result_codes_match_the_contract() -> None:
    assert [result_code(v) for v in (Verdict.OK, Verdict.NG, Verdict.NOT_INSPECTED, Verdict.ERROR)] == [
        0,
        1,
        2,
        3,
    ]
