"""OutboxPump: in-order hand-over, retirement on PUBACK, and the re-send after a lost connection.

The MQTT client is replaced by a recorder here (the pump's contract is a ``publish`` callable); the same
behaviour against a real Mosquitto that crashes is in ``test_mqtt_stream.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.mqtt.outbox import Outbox, OutboxMessage
from edge.mqtt.pump import OutboxPump


class RecordingClient:
    """Takes messages like paho does (a new message id each), acknowledges them when told to."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, bytes]] = []
        self.up = threading.Event()
        self.up.set()
        self._mid = 0
        self._lock = threading.Lock()

    def publish(self, message: OutboxMessage) -> int | None:
        with self._lock:
            self._mid += 1
            self.sent.append((self._mid, message.payload))
            return self._mid

    def payloads(self) -> list[bytes]:
        with self._lock:
            return [payload for _, payload in self.sent]


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with Outbox(tmp_path / "outbox.db") as box:
        yield box


def start_pump(outbox: Outbox, client: RecordingClient, **options: float) -> OutboxPump:
    pump = OutboxPump(outbox, client.publish, client.up.is_set, idle_poll_s=0.05, **options)  # type: ignore[arg-type]
    pump.start()
    return pump


def deliver(outbox: Outbox, client: RecordingClient, pump: OutboxPump, payload: bytes) -> None:
    """Put one message and acknowledge it as the broker would; returns once it left the outbox."""
    outbox.put("t/verdict", payload)
    pump.notify()
    assert wait_until(lambda: payload in client.payloads())
    mid = next(m for m, p in client.sent if p == payload)
    pump.acknowledged(mid)
    assert wait_until(lambda: outbox.depth() == 0)


def test_messages_acknowledged_around_a_lost_connection_are_sent_again_after_the_reconnect(
    outbox: Outbox,
) -> None:
    client = RecordingClient()
    pump = start_pump(outbox, client, resend_window_s=0.6, resend_delay_s=0.3)
    try:
        deliver(outbox, client, pump, b"old")
        time.sleep(0.9)  # "old" is now acknowledged longer than the window before the loss
        deliver(outbox, client, pump, b"recent")
        client.up.clear()
        pump.connection_lost()
        client.up.set()
        pump.reconnected()
        deliver(outbox, client, pump, b"after")  # accepted before subscribers are back: at risk too
        assert client.payloads().count(b"recent") == 1, "re-sent before the delay was over"
        assert wait_until(lambda: client.payloads().count(b"after") == 2)
        assert client.payloads().count(b"recent") == 2
        assert client.payloads().count(b"old") == 1
        assert pump.resent == 2
        time.sleep(0.5)
        assert client.payloads().count(b"recent") == 2, "the re-send must happen once per loss"
    finally:
        pump.stop()


def test_without_a_window_nothing_is_sent_twice(outbox: Outbox) -> None:
    client = RecordingClient()
    pump = start_pump(outbox, client, resend_window_s=0.0, resend_delay_s=0.0)
    try:
        deliver(outbox, client, pump, b"one")
        pump.connection_lost()
        pump.reconnected()
        deliver(outbox, client, pump, b"two")
        time.sleep(0.3)
        assert client.payloads() == [b"one", b"two"]
        assert pump.resent == 0
    finally:
        pump.stop()


def test_a_reconnect_without_a_loss_sends_nothing_again(outbox: Outbox) -> None:
    client = RecordingClient()
    pump = start_pump(outbox, client, resend_window_s=5.0, resend_delay_s=0.0)
    try:
        deliver(outbox, client, pump, b"one")
        pump.reconnected()  # the first connect of a start is not a recovery
        time.sleep(0.3)
        assert client.payloads() == [b"one"]
    finally:
        pump.stop()


def test_the_re_send_waits_while_the_connection_is_down(outbox: Outbox) -> None:
    client = RecordingClient()
    pump = start_pump(outbox, client, resend_window_s=5.0, resend_delay_s=0.1)
    try:
        deliver(outbox, client, pump, b"one")
        pump.connection_lost()
        pump.reconnected()
        client.up.clear()
        pump.connection_lost()  # lost again before the re-send was due
        time.sleep(0.4)
        assert client.payloads() == [b"one"]
        client.up.set()
        pump.reconnected()
        assert wait_until(lambda: client.payloads() == [b"one", b"one"])
    finally:
        pump.stop()


def test_negative_resend_settings_are_refused(outbox: Outbox) -> None:
    with pytest.raises(ValueError, match="resend_window_s"):
        OutboxPump(outbox, RecordingClient().publish, lambda: True, resend_window_s=-1)
