"""The station's MQTT connection: contract topics, durable verdicts, commands, last will.

:class:`StationMqtt` wraps one paho-mqtt 2.x client (callback API version 2):

* connects with optional TLS (CA, client certificate) and username/password, and reconnects on its own with
  exponential backoff (paho's loop thread, ``reconnect_min_s`` .. ``reconnect_max_s``); a connection the
  broker closes soon after accepting it (an ACL that denies a topic: Mosquitto drops the client after a
  denied publish) counts as a failed attempt too, so such a loop backs off instead of reconnecting every
  second;
* registers a retained last will ``{"status": "offline"}`` on ``state``, and re-publishes the current
  ``state`` and ``ready`` on every connect (so the will never outlives a reconnect);
* sends verdicts and results through the on-disk :class:`~edge.mqtt.outbox.Outbox` (see
  :class:`~edge.mqtt.pump.OutboxPump`), so no verdict is lost to a broker outage or a station restart;
* subscribes to ``cmd/#`` and answers every command on ``reply``
  (:class:`~edge.mqtt.commands.CommandProcessor`).

No exception escapes a paho callback: one would stop paho's network thread and, with it, all traffic.
"""

from __future__ import annotations

import logging
import ssl
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.client import ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.mqtt import topics as contract
from edge.mqtt.commands import DEFAULT_MAX_COMMAND_BYTES, CommandHandler, CommandProcessor
from edge.mqtt.connect_errors import explain_connect_error, explain_early_close, explain_refusal
from edge.mqtt.outbox import Outbox, OutboxMessage, Pending
from edge.mqtt.payloads import (
    MetricsPayload,
    ReadyPayload,
    ReviewPayload,
    StatePayload,
    VerdictPayload,
    encode,
)
from edge.mqtt.pump import OutboxPump
from edge.mqtt.topics import Topics
from edge.mqtt.validate import validate

log = logging.getLogger(__name__)

#: A connection that lasted at least this long was a working one: the reconnect backoff starts over.
STABLE_CONNECTION_S = 10.0


@dataclass(frozen=True)
class TlsSettings:
    """TLS files; the broker certificate is verified against ``ca_file`` including its host name."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True)
class MqttSettings:
    """Connection settings (already resolved: secrets are plain values here, never in the flashed YAML).

    Attributes:
        topic_root: ``<site>/<line>/<station>``.
        client_id: Unique per station; the broker drops an older connection with the same id.
        window: Outbox messages handed to the client and not yet acknowledged.
        validate_outgoing: Check every outgoing payload against its schema (tests, commissioning).
        retry_refused_s: How long a message the broker refused (an ACL, a quota) waits in the outbox before
            it is sent again.
        resend_window_s: After a lost connection, messages the broker acknowledged this long before the loss
            (and until ``resend_delay_s`` after the reconnect) are sent again (see
            :class:`~edge.mqtt.pump.OutboxPump`); ``0`` never.
        resend_delay_s: How long after the reconnect that happens.

    """

    host: str
    topic_root: str
    client_id: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: TlsSettings | None = None
    keepalive_s: int = 30
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    window: int = 100
    max_command_bytes: int = DEFAULT_MAX_COMMAND_BYTES
    validate_outgoing: bool = False
    retry_refused_s: float = 30.0
    resend_window_s: float = 5.0
    resend_delay_s: float = 3.0


class StationMqtt:
    """One station's MQTT link. Thread-safe publishing; start with :meth:`start`, end with :meth:`stop`.

    Args:
        settings: Where and how to connect.
        outbox: Durable queue for verdicts, results and reviews (owned by the caller, who closes it).
        handler: The runtime's command handler; may be set later through :attr:`commands`.
        state: The status to announce on connect (default: ``online`` since now).

    """

    def __init__(
        self,
        settings: MqttSettings,
        outbox: Outbox,
        handler: CommandHandler | None = None,
        *,
        state: StatePayload | None = None,
    ) -> None:
        self.settings = settings
        self.topics = Topics(settings.topic_root)
        self.outbox = outbox
        self.commands = CommandProcessor(self.topics, handler, settings.max_command_bytes)
        self.last_error: str | None = None
        self._refused = False  # the last CONNACK refused us (its reason beats the disconnect that follows)
        self.connects = 0
        self._connected_at = 0.0  # monotonic time of the last CONNACK that accepted us
        self._short_lived = 0  # connections in a row that the broker closed within STABLE_CONNECTION_S
        self._state = state or StatePayload(status="online", since=time.time())
        self._ready: ReadyPayload | None = None
        self._connected = threading.Event()
        self._client = self._make_client()
        self._pump = OutboxPump(
            outbox,
            self._publish_stored,
            self._connected.is_set,
            window=settings.window,
            retry_refused_s=settings.retry_refused_s,
            on_refusal=lambda reason: self.on_refusal(reason) if self.on_refusal else None,
            resend_window_s=settings.resend_window_s,
            resend_delay_s=settings.resend_delay_s,
        )
        #: Told why the broker refuses stored messages (``None``: no longer); the runtime raises a fault.
        self.on_refusal: Callable[[str | None], None] | None = None
        self._set_will()
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            # MQTT 5 for "retain as published": a retained command is then flagged as such even when it is
            # forwarded live, so it can be refused (3.1.1 clears the flag on live delivery).
            protocol=mqtt.MQTTv5,
        )
        # Belt and braces: our callbacks catch everything, but paho must never die on one that does not.
        client.suppress_exceptions = True
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls is not None:
            client.tls_set(
                ca_certs=str(s.tls.ca_file),
                certfile=None if s.tls.cert_file is None else str(s.tls.cert_file),
                keyfile=None if s.tls.key_file is None else str(s.tls.key_file),
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)
        client.max_inflight_messages_set(s.window + 20)  # room for state/ready/replies beside the window
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect in the background (retrying until the broker answers) and start the outbox pump."""
        if self._started:
            raise RuntimeError("StationMqtt already started")
        self._started = True
        # A clean session on every connect: the outbox, not the broker, keeps unacknowledged verdicts.
        self._client.connect_async(
            self.settings.host, self.settings.port, self.settings.keepalive_s, clean_start=True
        )
        self._client.loop_start()
        self._pump.start()

    def stop(self, *, flush_timeout_s: float = 5.0, reason: str = "station stopped") -> bool:
        """Deliver the outbox (waiting up to ``flush_timeout_s``), announce ``offline``, disconnect.

        Returns:
            ``True`` when the outbox was empty at the end; otherwise the rest is replayed on the next start.

        """
        if not self._started:
            return self.outbox.depth() == 0
        # Wait even while disconnected: the broker may come back within the timeout.
        drained = self._pump.wait_drained(flush_timeout_s)
        now = time.time()
        self._ready = ReadyPayload(ready=False, sku=self._ready.sku if self._ready else None, reason=reason)
        offline = replace(self._state, status="offline", reason=reason, since=now)
        infos = [
            self._publish_direct(self.topics.ready, self._ready.to_dict(), contract.READY, "ready"),
            self._publish_direct(self.topics.state, offline.to_dict(), contract.STATE, "state"),
        ]
        if self.connected:
            for info in infos:
                _wait_published(info, timeout_s=2.0)
        self._pump.stop()
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        self._started = False
        return drained

    @property
    def connected(self) -> bool:
        """Whether the broker accepted the connection and it is up."""
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the connection; ``True`` if connected."""
        return self._connected.wait(timeout_s)

    def wait_drained(self, timeout_s: float) -> bool:
        """Wait until every outbox message is acknowledged by the broker; ``True`` if so."""
        return self._pump.wait_drained(timeout_s)

    @property
    def inflight(self) -> int:
        """Outbox messages handed to the client, not yet acknowledged."""
        return self._pump.inflight

    # -- outgoing ----------------------------------------------------------------------------------------

    def publish_verdict(self, verdict: VerdictPayload) -> int:
        """Queue a part's ``verdict`` and its ``result`` durably (one transaction) for in-order delivery.

        Returns:
            The outbox id of the verdict.

        Raises:
            OutboxFull: the outbox is full; the part was *not* queued and the caller must act (fault).

        """
        body = verdict.to_dict()
        result = verdict.result().to_dict()
        self._check("verdict", body)
        self._check("result", result)
        ids = self.outbox.put_many(
            [
                Pending(self.topics.verdict, body, contract.VERDICT.qos, contract.VERDICT.retain),
                Pending(self.topics.result, result, contract.RESULT.qos, contract.RESULT.retain),
            ]
        )
        self._pump.notify()
        return ids[0]

    def publish_review(self, review: ReviewPayload) -> int:
        """Queue an operator review durably; returns its outbox id (raises ``OutboxFull`` like verdicts)."""
        body = review.to_dict()
        self._check("review", body)
        message_id = self.outbox.put(self.topics.review, body, contract.REVIEW.qos, contract.REVIEW.retain)
        self._pump.notify()
        return message_id

    def publish_state(self, state: StatePayload) -> None:
        """Announce a new station status (retained); it is also re-sent on every reconnect."""
        self._state = state
        self._set_will()
        self._publish_direct(self.topics.state, state.to_dict(), contract.STATE, "state")

    def publish_ready(self, ready: ReadyPayload) -> None:
        """Publish the retained trigger-ready flag; it is also re-sent on every reconnect."""
        self._ready = ready
        self._publish_direct(self.topics.ready, ready.to_dict(), contract.READY, "ready")

    def publish_metrics(self, metrics: MetricsPayload) -> bool:
        """Publish a metrics snapshot at QoS 0; ``False`` (nothing queued) while disconnected."""
        if not self.connected:
            return False
        self._publish_direct(self.topics.metrics, metrics.to_dict(), contract.METRICS, "metrics")
        return True

    def _check(self, schema: str, body: Mapping[str, Any]) -> None:
        if self.settings.validate_outgoing:
            validate(schema, body)

    def _publish_direct(
        self, topic: str, body: Mapping[str, Any], delivery: contract.Delivery, schema: str
    ) -> mqtt.MQTTMessageInfo:
        self._check(schema, body)
        # paho queues QoS>0 messages while disconnected and sends them after the next CONNACK.
        return self._client.publish(topic, encode(body), qos=delivery.qos, retain=delivery.retain)

    def _publish_stored(self, message: OutboxMessage) -> int | None:
        info = self._client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)
        if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            return info.mid  # NO_CONN: paho keeps it and sends it, in order, after reconnecting
        self.last_error = f"publish to {message.topic} refused by client: {mqtt.error_string(info.rc)}"
        return None

    def _set_will(self) -> None:
        will = replace(self._state, status="offline", reason="connection lost (last will)", since=time.time())
        self._client.will_set(
            self.topics.state, encode(will.to_dict()), qos=contract.STATE.qos, retain=contract.STATE.retain
        )

    # -- paho callbacks (network thread; must not raise) -------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            if reason.is_failure:
                self._refused = True
                self.last_error = explain_refusal(reason, self.settings.host, self.settings.port)
                log.error("%s", self.last_error)
                return
            self._refused = False
            self._connected_at = time.monotonic()
            self.connects += 1
            self.last_error = None
            log.info("connected to %s:%d", self.settings.host, self.settings.port)
            client.subscribe(self.topics.commands, options=SubscribeOptions(qos=1, retainAsPublished=True))
            self._publish_direct(self.topics.state, self._state.to_dict(), contract.STATE, "state")
            if self._ready is not None:
                self._publish_direct(self.topics.ready, self._ready.to_dict(), contract.READY, "ready")
            self._connected.set()
            self._pump.reconnected()
        except Exception:
            log.exception("on_connect failed")

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this from inside its ``except OSError`` block without passing the exception: it is
        # still the one being handled, and it is what says why (certificate, name, port, refusal).
        exc = sys.exc_info()[1]
        s = self.settings
        error = explain_connect_error(exc, s.host, s.port, s.tls is not None)
        if error != self.last_error:
            log.warning("%s (retrying)", error)  # once per distinct reason, not once per retry
        self.last_error = error

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        plan = "reconnecting"
        if was_connected:
            self._pump.connection_lost()
            plan = self._back_off(time.monotonic() - self._connected_at)
        # After a refused CONNECT paho reports a disconnect too; keep the refusal, it says more.
        if reason.is_failure and was_connected:
            self.last_error = f"disconnected from broker: {reason}"
            log.warning("%s (%s)", self.last_error, plan)
        elif reason.is_failure and not self._refused:
            s = self.settings
            error = explain_early_close(reason, s.host, s.port, s.tls is not None)
            if error != self.last_error:
                log.warning("%s (retrying)", error)
            self.last_error = error

    def _back_off(self, lived_s: float) -> str:
        """Grow the reconnect delay while connections die young; returns what to add to the log line.

        paho starts its backoff over at ``reconnect_min_s`` after every accepted CONNECT, so a broker that
        accepts the station and then drops it would see it back every ``reconnect_min_s`` seconds.
        """
        s = self.settings
        self._short_lived = self._short_lived + 1 if lived_s < STABLE_CONNECTION_S else 0
        delay = min(s.reconnect_min_s * 2**self._short_lived, s.reconnect_max_s)
        self._client.reconnect_delay_set(delay, s.reconnect_max_s)
        if not self._short_lived:
            return "reconnecting"
        return (
            f"reconnecting in {delay} s: the broker closed {self._short_lived} connection(s) in a row within "
            f"{STABLE_CONNECTION_S:g} s of accepting them"
        )

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Properties
    ) -> None:
        if reason.is_failure:
            # Not a delivery: the message stays in the outbox and is retried (see OutboxPump).
            log.error("broker refused message %d: %s (kept in the outbox, retried later)", mid, reason)
            self._pump.acknowledged(mid, f"{reason} ({reason.value})")
            return
        self._pump.acknowledged(mid)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: MQTTMessage) -> None:
        try:
            reply = self.commands.handle(message.topic, bytes(message.payload), retained=bool(message.retain))
            if reply is not None:
                self._publish_direct(self.topics.reply, reply.to_dict(), contract.REPLY, "reply")
        except Exception:
            log.exception("handling %s failed", getattr(message, "topic", "?"))


def _wait_published(info: mqtt.MQTTMessageInfo, timeout_s: float) -> None:
    try:
        info.wait_for_publish(timeout_s)
    except (ValueError, RuntimeError) as exc:
        log.warning("final message not confirmed: %s", exc)
