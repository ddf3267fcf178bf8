"""The on-disk outbox: order, durability across reopen, the size policy, one owner at a time."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from edge.mqtt.outbox import Outbox, OutboxError, OutboxFull, Pending


def test_messages_come_back_in_put_order_and_leave_when_delivered(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        ids = [box.put("t/verdict", {"part_id": f"P{i}"}) for i in range(5)]
        assert ids == sorted(ids)
        pending = box.pending(limit=10)
        assert [json.loads(m.payload)["part_id"] for m in pending] == [f"P{i}" for i in range(5)]
        assert box.pending(after=ids[2], limit=10) == pending[3:]
        assert box.mark_delivered([ids[0], ids[3]]) == 2
        assert box.mark_delivered([ids[0]]) == 0  # a duplicate PUBACK is harmless
        assert [m.id for m in box.pending()] == [ids[1], ids[2], ids[4]]
        assert box.depth() == 3


def test_undelivered_messages_survive_reopen_and_ids_keep_growing(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        first = box.put("t/a", b"one", qos=1, retain=False)
        second = box.put("t/b", b"two", qos=0, retain=True)
        box.mark_delivered([second])
    with Outbox(tmp_path / "o.db") as box:
        (left,) = box.pending()
        assert (left.id, left.topic, left.payload, left.qos, left.retain) == (first, "t/a", b"one", 1, False)
        assert box.put("t/c", b"three") > second  # ids are never reused, so order holds across restarts


def test_full_outbox_refuses_loudly_and_keeps_what_it_holds(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", capacity=3) as box:
        box.put_many([Pending("t/verdict", b"v1"), Pending("t/result", b"r1")])
        with pytest.raises(OutboxFull, match=r"full \(2 undelivered, capacity 3\).*t/result, t/verdict"):
            box.put_many([Pending("t/verdict", b"v2"), Pending("t/result", b"r2")])
        assert box.refused == 2
        assert [m.payload for m in box.pending()] == [b"v1", b"r1"]  # all-or-nothing: v2 not half-stored
        box.put("t/x", b"fits")
        with pytest.raises(OutboxFull):
            box.put("t/x", b"does not fit")
        box.mark_delivered([m.id for m in box.pending()])
        box.put("t/x", b"room again")
        assert box.depth() == 1


def test_a_second_owner_is_refused(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db"), pytest.raises(OutboxError, match="in use by another process"):
        Outbox(tmp_path / "o.db")
    Outbox(tmp_path / "o.db").close()  # released on close


def test_corrupt_file_is_reported_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutboxError, match=r"cannot open outbox .*o\.db"):
        Outbox(path)


def test_invalid_qos_is_rejected(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box, pytest.raises(ValueError, match="QoS must be 0, 1 or 2"):
        box.put("t", b"x", qos=3)
    with pytest.raises(ValueError, match="capacity"):
        Outbox(tmp_path / "p.db", capacity=0)


def test_a_refused_message_is_kept_set_aside_and_due_again_later(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        ids = [box.put("t/verdict", {"part_id": f"P{i}"}) for i in range(3)]
        assert box.mark_refused([(ids[1], "Not authorized (135)")]) == 1
        assert [m.id for m in box.pending()] == [ids[0], ids[2]]  # the stream goes on without it
        assert box.depth() == 3  # still undelivered, still counted
        assert box.broker_refusals() == (1, "t/verdict: Not authorized (135)")
        assert box.refused_due(refused_before=0.0) == []  # its wait is not over
        (due,) = box.refused_due(refused_before=time.time() + 1)
        assert due.id == ids[1]
    with Outbox(tmp_path / "o.db") as box:  # kept across a restart
        assert box.broker_refusals()[0] == 1
        assert box.mark_delivered([ids[1]]) == 1 and box.broker_refusals() == (0, None)


def test_an_outbox_of_the_previous_format_keeps_its_messages(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
        " payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, created REAL NOT NULL)"
    )
    db.execute("INSERT INTO outbox (topic, payload, qos, retain, created) VALUES ('t/v', x'7b7d', 1, 0, 1.0)")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    with Outbox(path) as box:
        (kept,) = box.pending()
        assert (kept.topic, kept.payload, box.depth()) == ("t/v", b"{}", 1)
        assert box.mark_refused([(kept.id, "Quota exceeded (151)")]) == 1
