"""Helpers shared by the runtime tests."""

from __future__ import annotations

from typing import Any

from fixtures.mqtt_subscriber import Subscriber

from edge.mqtt.validate import validate

ROOT = "test/line/st1"


def verdicts(sub: Subscriber, root: str = ROOT) -> list[dict[str, Any]]:
    """Verdict payloads received so far, each checked against the contract's schema, duplicates dropped."""
    seen: set[str] = set()
    out = []
    for message in sub.on(f"{root}/verdict"):
        body = message.json()
        validate("verdict", body)
        if body["part_id"] not in seen:
            seen.add(body["part_id"])
            out.append(body)
    return out


def wait_verdicts(sub: Subscriber, count: int, timeout_s: float, root: str = ROOT) -> list[dict[str, Any]]:
    """Wait until ``count`` distinct verdicts arrived; returns them (fails the test on timeout)."""
    topic = f"{root}/verdict"

    def enough(messages: list[Any]) -> bool:
        return len({m.json()["part_id"] for m in messages if m.topic == topic}) >= count

    if not sub.wait_for(enough, timeout_s):
        got = verdicts(sub, root)
        raise AssertionError(
            f"expected {count} verdicts within {timeout_s} s, got {len(got)}: "
            f"{[(v['part_id'], v['verdict'], v['reason']) for v in got]}"
        )
    return verdicts(sub, root)


def assert_contiguous(found: list[dict[str, Any]]) -> None:
    """Every part id exactly once, in ``seq`` order, without gaps (no part dropped silently)."""
    seqs = [v["seq"] for v in found]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"seq gaps or disorder: {seqs}"
    ids = [v["part_id"] for v in found]
    assert len(set(ids)) == len(ids)
