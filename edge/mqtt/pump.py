"""Moves messages from the :class:`~edge.mqtt.outbox.Outbox` to the MQTT client, in order, acknowledged.

The pump hands at most ``window`` unacknowledged messages to the client, oldest first, and deletes a message
from the outbox only when the client reports the broker's PUBACK for its message id. Within one process the
MQTT client (paho) re-sends its unacknowledged messages itself after a reconnect, in the order they were
handed over; across a restart the outbox replays whatever was not acknowledged. The window keeps the client's
in-memory queue small however long the broker is away: the backlog waits on disk.

Acks arrive on the network thread and are only queued there; the pump thread maps them to outbox ids, so the
network thread never waits on the database or on a lock the pump holds while publishing.

A PUBACK with a failure reason (the broker refused the message: an ACL, a quota) is not a delivery: the
message stays in the outbox marked refused, the stream goes on without it, and it is handed over again every
``retry_refused_s`` until the broker takes it. Such a message arrives later than the ones put after it
(subscribers order by ``seq``/``part_id``, as they already must across a restart).

A PUBACK is only as good as the broker that sent it: a broker that crashes (SIGKILL, power loss) without
persistence loses what it acknowledged but had not yet forwarded, and, restarted, forgets its subscribers'
sessions, so what it accepts before a subscriber has subscribed again goes to nobody. The pump therefore keeps
the messages acknowledged in the last ``resend_window_s`` (in memory, bounded) and, ``resend_delay_s`` after
a reconnect that follows a lost connection, sends again every message acknowledged from ``resend_window_s``
before the loss up to then. Those copies are not tracked (they were delivered once); subscribers drop the
duplicates by ``part_id``, as the contract already asks of them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable

from edge.mqtt.outbox import Outbox, OutboxMessage

log = logging.getLogger(__name__)

#: Hands one message to the MQTT client; returns its message id, or ``None`` when it cannot be sent now.
Publish = Callable[[OutboxMessage], "int | None"]
#: Most acknowledged messages kept for a re-send (a bound on memory whatever the rate: ~1 KB each).
RECENT_MAX = 20_000


class OutboxPump:
    """Background thread that publishes the outbox in order and retires acknowledged messages.

    Args:
        outbox: The durable queue.
        publish: Hands a message to the MQTT client (see :data:`Publish`).
        connected: Whether the client is connected now; nothing new is handed over while it is not.
        window: Maximum number of messages handed over and not yet acknowledged.
        retry_refused_s: How long a message the broker refused waits before it is handed over again.
        on_refusal: Told ``"broker refuses <topic>: <reason> ..."`` when the broker refuses a message and
            ``None`` once no refused message is left (the station raises and clears a fault on ``state``).
        resend_window_s: How far before a lost connection acknowledged messages are sent again after the
            reconnect (``0``: never).
        resend_delay_s: How long after the reconnect they are sent (time for subscribers to subscribe again
            to a restarted broker); what the broker acknowledges meanwhile is sent again too.

    """

    def __init__(
        self,
        outbox: Outbox,
        publish: Publish,
        connected: Callable[[], bool],
        *,
        window: int = 100,
        idle_poll_s: float = 0.5,
        retry_refused_s: float = 30.0,
        on_refusal: Callable[[str | None], None] | None = None,
        resend_window_s: float = 0.0,
        resend_delay_s: float = 3.0,
    ) -> None:
        if window < 1:
            raise ValueError(f"pump window must be >= 1, got {window}")
        if resend_window_s < 0 or resend_delay_s < 0:
            raise ValueError("resend_window_s and resend_delay_s must be >= 0")
        self._outbox = outbox
        self._publish = publish
        self._connected = connected
        self._window = window
        self._idle_poll_s = idle_poll_s
        self._retry_refused_s = retry_refused_s
        self._next_refused_check = 0.0  # monotonic time of the next look for refused messages that are due
        self._acks: queue.SimpleQueue[tuple[int, str | None]] = queue.SimpleQueue()
        self._inflight: dict[int, OutboxMessage] = {}  # MQTT mid -> the outbox message
        self._cursor = 0  # highest outbox id handed to the client in this process
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drained = threading.Condition()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.refused = 0  # refusals by the broker since start (a message refused twice counts twice)
        self.last_error: str | None = None
        self._on_refusal = on_refusal
        self._refusal: str | None = None  # what was last reported to on_refusal
        self._resend_window_s = resend_window_s
        self._resend_delay_s = resend_delay_s
        self._recent: deque[tuple[float, OutboxMessage]] = deque(maxlen=RECENT_MAX)  # (acked at, message)
        self._link = threading.Lock()  # guards the two below (set on the network thread)
        self._lost_at: float | None = None  # monotonic time of the earliest loss not yet made good
        self._resend_at: float | None = None  # monotonic time the re-send is due (after a reconnect)
        self.resent = 0

    def start(self) -> None:
        """Start the pump thread."""
        if self._thread is not None:
            raise RuntimeError("outbox pump already started")
        self._thread = threading.Thread(target=self._run, name="mqtt-outbox-pump", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the pump thread; undelivered messages stay in the outbox for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def notify(self) -> None:
        """Wake the pump: a message was put, or the client (re)connected."""
        self._wake.set()

    def acknowledged(self, mid: int, refused: str | None = None) -> None:
        """Record the broker's answer to message id ``mid``; safe to call from any thread.

        Args:
            mid: The MQTT message id.
            refused: The broker's reason when it refused the message (a failure reason code); ``None``
                when it accepted it.

        """
        self._acks.put((mid, refused))
        self._wake.set()

    def connection_lost(self) -> None:
        """The connection to the broker broke (safe from any thread); a re-send follows the reconnect."""
        if self._resend_window_s <= 0:
            return
        with self._link:
            if self._lost_at is None:
                self._lost_at = time.monotonic()
            self._resend_at = None  # a re-send that was due waits for the next connection

    def reconnected(self) -> None:
        """The connection is up again (safe from any thread); schedules the re-send after a loss."""
        with self._link:
            if self._lost_at is not None:
                self._resend_at = time.monotonic() + self._resend_delay_s
        self._wake.set()

    @property
    def inflight(self) -> int:
        """Messages handed to the client and not yet acknowledged."""
        return len(self._inflight)

    def wait_drained(self, timeout_s: float) -> bool:
        """Wait until the outbox is empty; ``True`` if it is."""
        deadline = time.monotonic() + timeout_s
        with self._drained:
            while self._outbox.depth() > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.set()
                self._drained.wait(min(left, 0.1))
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            # Clear before working, never after waiting: a wake-up that arrives while this pass runs then
            # triggers the next pass at once instead of being wiped out (and the message waiting a poll).
            self._wake.clear()
            try:
                self._retire_acknowledged()
                self._hand_over()
            except Exception as exc:  # the pump must outlive a transient disk or client error
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("outbox pump error (will retry)")
                self._stop.wait(1.0)
            self._wake.wait(self._next_wait())
        self._retire_acknowledged()

    def _next_wait(self) -> float:
        with self._link:
            due = self._resend_at
        if due is None:
            return self._idle_poll_s
        return min(self._idle_poll_s, max(due - time.monotonic(), 0.0))

    def _retire_acknowledged(self) -> None:
        done: list[int] = []
        refused: list[tuple[int, str]] = []
        while True:
            try:
                mid, reason = self._acks.get_nowait()
            except queue.Empty:
                break
            message = self._inflight.pop(mid, None)
            if message is None:  # acks of direct publishes (state, ready, replies, re-sends) are not ours
                continue
            if reason is None:
                done.append(message.id)
                if self._resend_window_s > 0:
                    self._recent.append((time.monotonic(), message))
            else:
                refused.append((message.id, reason))
        if refused:
            self.refused += self._outbox.mark_refused(refused)
        if done:
            self.delivered += self._outbox.mark_delivered(done)
            with self._drained:
                self._drained.notify_all()
        if refused or (done and self._refusal is not None):
            self._report_refusals()

    def _report_refusals(self) -> None:
        """Tell ``on_refusal`` what the broker refuses now (``None``: every refused message got through)."""
        count, last = self._outbox.broker_refusals()
        if count:
            topic, _, reason = (last or "?: ?").partition(": ")
            text = (
                f"broker refuses {topic}: {reason} ({count} kept in the outbox, retried every "
                f"{self._retry_refused_s:g} s)"
            )
        else:
            text = None
        if text != self._refusal:
            if text is None:
                log.info("the broker accepts the messages it refused before")
            self._refusal = text
            if self._on_refusal is not None:
                try:
                    self._on_refusal(text)
                except Exception:  # reporting must never stop the pump
                    log.exception("on_refusal failed")

    def _resend_recent(self) -> None:
        """Send again what the broker acknowledged around a lost connection, once the re-send is due."""
        now = time.monotonic()
        with self._link:
            lost_at = self._lost_at
            due = self._resend_at is not None and now >= self._resend_at and self._connected()
            if due:
                self._resend_at = self._lost_at = None
        if due and lost_at is not None:
            again = [m for acked, m in self._recent if acked >= lost_at - self._resend_window_s]
            sent = 0
            for message in again:
                if self._publish(message) is None:  # the client cannot take it now: all of it again later
                    with self._link:
                        self._lost_at = min(lost_at, self._lost_at or lost_at)
                        self._resend_at = now + self._resend_delay_s
                    break
                sent += 1
            self.resent += sent
            if again:
                log.info("sent %d of %d acknowledged messages again after the reconnect", sent, len(again))
        with self._link:
            oldest_needed = min(now, self._lost_at or now) - self._resend_window_s
        while self._recent and self._recent[0][0] < oldest_needed:
            self._recent.popleft()

    def _hand_over(self) -> None:
        if self._resend_window_s > 0:
            self._resend_recent()
        free = self._window - len(self._inflight)
        if free <= 0 or not self._connected():
            return
        for message in self._outbox.pending(after=self._cursor, limit=free):
            mid = self._publish(message)
            if mid is None:
                return  # not sendable now (e.g. connection just dropped); retried on the next wake-up
            self._inflight[mid] = message
            self._cursor = message.id
            free -= 1
        if free <= 0:
            return
        # Refused messages, once their wait is over (not while one is still out: it would go twice). Looked
        # up at most once a second: this runs on every wake-up, refusals are rare.
        now = time.monotonic()
        if now < self._next_refused_check:
            return
        self._next_refused_check = now + min(1.0, self._retry_refused_s)
        out = {m.id for m in self._inflight.values()}
        for message in self._outbox.refused_due(time.time() - self._retry_refused_s, limit=free):
            if message.id in out:
                continue
            mid = self._publish(message)
            if mid is None:
                return
            self._inflight[mid] = message
