"""Ordered publishing: verdicts decided out of order leave in seq order, exactly once, never dropped."""

from __future__ import annotations

import threading
from pathlib import Path

from edge.capture.part import Part
from edge.mqtt import Outbox, OutboxFull, VerdictPayload
from edge.runtime.publisher import OrderedPublisher


class OutboxSink:
    """The real outbox as the sink (what StationMqtt.publish_verdict does, minus the network)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def publish_verdict(self, verdict: VerdictPayload) -> int:
        return self.outbox.put("t/verdict", verdict.to_dict())


def part(seq: int) -> Part:
    return Part(part_id=f"p{seq}", seq=seq, sku="a")


def verdict(seq: int) -> VerdictPayload:
    return VerdictPayload.uninspected(part_id=f"p{seq}", seq=seq, reason="test")


def stored_ids(outbox: Outbox) -> list[str]:
    import json

    return [json.loads(m.payload)["part_id"] for m in outbox.pending(limit=1000)]


def test_out_of_order_completions_leave_in_order(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as outbox:
        seen: list[str] = []
        pub = OrderedPublisher(
            OutboxSink(outbox), first_seq=1, listeners=[lambda p, v, r: seen.append(p.part_id)]
        )
        pub.start()
        for seq in (3, 1, 5, 2, 4):
            assert pub.complete(part(seq), verdict(seq))
        assert pub.wait_published(6, timeout_s=5)
        assert not pub.complete(part(2), verdict(2)), "a second verdict for a part is refused"
        pub.stop()
        assert stored_ids(outbox) == ["p1", "p2", "p3", "p4", "p5"]
        assert seen == ["p1", "p2", "p3", "p4", "p5"] and pub.duplicates == 1


def test_full_outbox_holds_verdicts_and_reports_a_fault(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", capacity=2) as outbox:
        faults: list[str | None] = []
        pub = OrderedPublisher(OutboxSink(outbox), first_seq=1, on_fault=faults.append, retry_s=0.05)
        pub.start()
        for seq in (1, 2, 3):
            pub.complete(part(seq), verdict(seq))
        assert not pub.wait_published(4, timeout_s=0.5), "the third verdict cannot be stored yet"
        assert faults and faults[0] is not None and "outbox full" in faults[0]
        delivered = threading.Event()
        outbox.mark_delivered([m.id for m in outbox.pending()])  # the broker acknowledged the first two
        delivered.set()
        assert pub.wait_published(4, timeout_s=5)
        assert faults[-1] is None, "the fault clears once verdicts are stored again"
        pub.stop()
        assert stored_ids(outbox) == ["p3"]
        assert not isinstance(faults[0], OutboxFull)
