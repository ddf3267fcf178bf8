"""Command parsing: any input gives a command or a clear CommandError, never another exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.mqtt import CommandRejected, Topics
from edge.mqtt.commands import CommandError, CommandProcessor, parse
from edge.mqtt.validate import errors

TOPICS = Topics("s/l/st")


class Handler:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_sku(self, sku: str) -> None:
        if sku != "A":
            raise CommandRejected(f"unknown SKU {sku!r}")
        self.calls.append(f"sku:{sku}")

    def on_trigger(self, part_id: str | None) -> None:
        self.calls.append(f"trigger:{part_id}")

    def on_ack(self, part_id: str) -> None:
        self.calls.append(f"ack:{part_id}")

    def on_pause(self) -> None:
        self.calls.append("pause")

    def on_resume(self) -> None:
        self.calls.append("resume")

    def on_reload(self) -> None:
        self.calls.append("reload")


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(["sku", "trigger", "ack", "pause", "resume", "reload", "nope", ""]),
    payload=st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
            ),
            max_leaves=12,
        ).map(lambda v: repr(v).encode()),
    ),
    retained=st.booleans(),
)
def test_garbage_never_escapes_as_anything_but_a_reply(name: str, payload: bytes, retained: bool) -> None:
    processor = CommandProcessor(TOPICS, Handler(), max_bytes=128)
    reply = processor.handle(f"s/l/st/cmd/{name}", payload, retained=retained)
    if reply is None:  # only an empty retained message (a retained command being cleared) gets no answer
        assert retained and not payload
        return
    body = reply.to_dict()
    assert errors("reply", body) == []
    assert body["ok"] or body["error"]


def test_deeply_nested_json_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match="payload"):
        parse(TOPICS, "s/l/st/cmd/sku", b"[" * 3000 + b"]" * 3000, retained=False, max_bytes=10_000)


def test_topic_outside_the_command_tree_is_refused() -> None:
    with pytest.raises(CommandError, match="not under s/l/st/cmd/"):
        parse(TOPICS, "s/l/other/cmd/sku", b"{}", retained=False, max_bytes=100)


def test_replies_echo_request_ids_and_handler_refusals() -> None:
    handler = Handler()
    processor = CommandProcessor(TOPICS, handler)
    ok = processor.handle("s/l/st/cmd/sku", b'{"sku": "A", "request_id": "r1"}', retained=False)
    refused = processor.handle("s/l/st/cmd/sku", b'{"sku": "B", "request_id": "r2"}', retained=False)
    assert ok is not None and ok.ok and ok.request_id == "r1"
    assert refused is not None and not refused.ok
    assert (refused.error, refused.request_id) == ("unknown SKU 'B'", "r2")
    assert handler.calls == ["sku:A"]
    assert (processor.accepted, processor.refused) == (1, 1)


def test_commands_before_a_handler_is_registered_are_refused() -> None:
    reply = CommandProcessor(TOPICS).handle("s/l/st/cmd/pause", b"", retained=False)
    assert reply is not None and not reply.ok
    assert "not ready for commands" in str(reply.error)


def test_topics_validate_the_root() -> None:
    assert Topics.for_station("s", "l", "st").command("ack") == "s/l/st/cmd/ack"
    for bad in ("s/l", "s/l/st/x", "s/+/st", "s//st", "s/l/#"):
        with pytest.raises(ValueError, match="three non-empty levels"):
            Topics(bad)
    with pytest.raises(ValueError, match="unknown command"):
        TOPICS.command("launch")
