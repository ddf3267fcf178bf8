"""Sparkplug B: the station as an edge node for SCADA hosts, beside the JSON contract (``docs/mqtt.md``).

The payloads (protobuf), metrics, datatypes and topic names come from ``pysparkplug``; this module runs
the edge node's session on a paho-mqtt 2.x client of its own:

* **its own MQTT connection**, not the JSON client's: Sparkplug requires NDEATH to be the last will of the
  connection that published NBIRTH, and the JSON connection's will is the retained ``state = offline``
  (one connection has one will). Two connections also keep the Sparkplug session's rules (seq, births on
  every connect) out of the JSON client's outbox and handshake;
* ``NBIRTH`` (seq 0, with ``bdSeq``) then ``DBIRTH`` of the station's device on every connect, with the
  current value of every metric, and again on ``NCMD Node Control/Rebirth = true``;
* ``DDATA`` per verdict and per state change; ``seq`` counts every NBIRTH/DBIRTH/NDATA/DDATA 0..255 and
  wraps, and starts again at 0 with each NBIRTH;
* ``NDEATH`` with the session's ``bdSeq`` as the MQTT last will, so the broker announces a crash; a clean
  stop publishes it itself before disconnecting (a DISCONNECT discards the will). ``bdSeq`` is kept in a
  file so that a restarted station goes on counting (a host matches NDEATH to NBIRTH by it);
* with a **primary host application** (``primary_host_id``, Sparkplug 3.0): the node subscribes to
  ``spBv1.0/STATE/<host id>`` and sends its births only once the host says ``online: true`` (a SCADA host
  that is not listening would miss them); when the host says ``online: false`` the node ends its session
  (NDEATH, disconnect) and connects again to wait for the host. A STATE older than the last one seen is
  ignored (the host's retained STATE and its will can arrive out of order).

Everything Sparkplug publishes is QoS 0 and not queued while disconnected, as the specification wants: the
next birth carries the current values. The guaranteed path for verdicts stays the JSON outbox.

pysparkplug's own ``Client``/``EdgeNode`` are not used: its releases after 0.3.0 pin ``paho-mqtt<2`` (the
station needs paho 2), and 0.3.0's client runs on paho's deprecated version-1 callbacks and connects
blocking, while the station must start and inspect with the broker away.
"""

from __future__ import annotations

import logging
import os
import ssl
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.client import ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pysparkplug import (
    DataType,
    DBirth,
    DData,
    Metric,
    MetricValue,
    NBirth,
    NCmd,
    NDeath,
    State,
    Topic,
    get_current_timestamp,
)
from pysparkplug import MessageType as Kind

from edge.inspection.types import Verdict
from edge.mqtt.client import MqttSettings
from edge.mqtt.connect_errors import explain_connect_error, explain_refusal
from edge.mqtt.payloads import StatePayload, VerdictPayload

log = logging.getLogger(__name__)

#: Node metric whose ``true`` in an NCMD asks for new births (Sparkplug B's name for it).
REBIRTH: Final = "Node Control/Rebirth"
#: Node metric of the birth/death sequence number (Sparkplug B's name for it).
BD_SEQ: Final = "bdSeq"
#: ``seq`` and ``bdSeq`` are 0..255 and wrap.
SEQ_MODULO: Final = 256

#: Metrics of the station's device (name -> datatype), in DBIRTH order. Documented in docs/mqtt.md.
DEVICE_METRICS: Final[dict[str, DataType]] = {
    "Verdict/Part ID": DataType.STRING,
    "Verdict/Seq": DataType.UINT64,
    "Verdict/Code": DataType.INT32,
    "Verdict/Verdict": DataType.STRING,
    "Verdict/Score": DataType.DOUBLE,
    "Verdict/Threshold": DataType.DOUBLE,
    "Verdict/SKU": DataType.STRING,
    "Verdict/Box Count": DataType.UINT32,
    "Verdict/Reason": DataType.STRING,
    "Counters/Parts OK": DataType.UINT64,
    "Counters/Parts NG": DataType.UINT64,
    "Counters/Not Inspected": DataType.UINT64,
    "Counters/Errors": DataType.UINT64,
    "State/Status": DataType.STRING,
    "State/Reason": DataType.STRING,
    "State/SKU": DataType.STRING,
}
_COUNTERS: Final = {
    Verdict.OK: "Counters/Parts OK",
    Verdict.NG: "Counters/Parts NG",
    Verdict.NOT_INSPECTED: "Counters/Not Inspected",
    Verdict.ERROR: "Counters/Errors",
}
#: Node metrics besides bdSeq and the rebirth control: how to find the same station's JSON topics.
NODE_INFO_ROOT: Final = "Node Info/Topic Root"


@dataclass(frozen=True)
class SparkplugSettings:
    """Where the edge node connects and what it is called.

    Attributes:
        connection: Broker, TLS, credentials, keepalive and reconnect delays; its ``client_id`` is the
            Sparkplug connection's own (it must differ from the JSON client's, or the broker drops one).
        group_id: ``spBv1.0/<group_id>/...``.
        node_id: The edge node id.
        device_id: The station's inspection device.
        bd_seq_file: Keeps the next ``bdSeq`` across restarts (``None``: start at 0 every time).
        primary_host_id: The primary host application whose ``STATE`` gates the births (``None``: births
            on every connect).
        restart_delay_s: Pause between the end of a session the primary host ended and the next connect.

    """

    connection: MqttSettings
    group_id: str
    node_id: str
    device_id: str
    bd_seq_file: Path | None = None
    primary_host_id: str | None = None
    restart_delay_s: float = 1.0


class SparkplugNode:
    """The station's Sparkplug B edge node and its one device. Thread-safe; :meth:`start`, :meth:`stop`.

    Args:
        settings: Connection and ids.
        state: The station status the first births carry.

    """

    def __init__(self, settings: SparkplugSettings, state: StatePayload | None = None) -> None:
        self.settings = settings
        self._lock = threading.RLock()  # seq, values and the publish order on the wire move together
        self._born = False  # NBIRTH and DBIRTH are out on the current connection
        self._seq = 0
        self._bd_seq = 0  # of the current connection (in its NBIRTH and its will)
        self._will_bd_seq = _read_bd_seq(settings.bd_seq_file)
        self.births = 0
        self.last_error: str | None = None
        self._counts = dict.fromkeys(Verdict, 0)  # since the station started, like `metrics`
        self._values: dict[str, MetricValue | None] = dict.fromkeys(DEVICE_METRICS)
        self._values.update({name: 0 for name in _COUNTERS.values()})
        if state is not None:
            self._values.update(_state_values(state))
        self._born_event = threading.Event()
        self._client = self._make_client()
        self._set_will()
        self._started = False
        #: The primary host is online (its last STATE said so); always True without a primary host.
        self.host_online = settings.primary_host_id is None
        self._host_state_ts = -1  # timestamp of the newest primary host STATE seen
        self._restart: threading.Timer | None = None

    # -- topics ------------------------------------------------------------------------------------------

    @property
    def state_topic(self) -> str | None:
        """``spBv1.0/STATE/<primary host id>``, ``None`` without a primary host."""
        host = self.settings.primary_host_id
        return None if host is None else str(Topic(message_type=Kind.STATE, sparkplug_host_id=host))

    def topic(self, kind: Kind, *, device: bool = False) -> str:
        """The topic of a message of ``kind`` from the node (or, with ``device``, from its device)."""
        s = self.settings
        return str(
            Topic(
                group_id=s.group_id,
                message_type=kind,
                edge_node_id=s.node_id,
                device_id=s.device_id if device else None,
            )
        )

    # -- lifecycle ---------------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        s = self.settings.connection
        # MQTT 3.1.1 with a clean session: what Sparkplug B asks of an edge node, and what every host and
        # broker in a plant speaks.
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
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
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect in the background (retrying until the broker answers); births follow every connect."""
        if self._started:
            raise RuntimeError("SparkplugNode already started")
        self._started = True
        s = self.settings.connection
        self._client.connect_async(s.host, s.port, s.keepalive_s)
        self._client.loop_start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Publish NDEATH (a clean disconnect discards the will), then disconnect."""
        if not self._started:
            return
        if self._restart is not None:
            self._restart.cancel()
        info = None
        with self._lock:
            if self._born:
                info = self._client.publish(
                    self.topic(Kind.NDEATH), self._death(self._bd_seq, timestamp=True), qos=1
                )
            self._born = False
            self._born_event.clear()
        if info is not None:
            try:
                info.wait_for_publish(timeout_s)
            except (ValueError, RuntimeError) as exc:
                log.warning("Sparkplug NDEATH not confirmed: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()
        self._started = False

    @property
    def born(self) -> bool:
        """Whether NBIRTH and DBIRTH are out on the current connection."""
        return self._born

    def wait_born(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the births; ``True`` once they are out."""
        return self._born_event.wait(timeout_s)

    # -- what the station reports ------------------------------------------------------------------------

    def publish_verdict(self, verdict: VerdictPayload) -> bool:
        """Record a part's verdict and send it as one DDATA (with the counters).

        Returns:
            ``False`` when it was not sent (not connected): Sparkplug does not queue; the next DBIRTH
            carries the latest verdict and the counters.

        """
        with self._lock:
            self._counts[verdict.verdict] += 1
            values: dict[str, MetricValue | None] = {
                "Verdict/Part ID": verdict.part_id,
                "Verdict/Seq": verdict.seq,
                "Verdict/Code": verdict.verdict.code,
                "Verdict/Verdict": verdict.verdict.value,
                "Verdict/Score": verdict.score,
                "Verdict/Threshold": verdict.threshold,
                "Verdict/SKU": verdict.sku,
                "Verdict/Box Count": len(verdict.boxes),
                "Verdict/Reason": verdict.reason,
                _COUNTERS[verdict.verdict]: self._counts[verdict.verdict],
            }
            return self._device_data(values)

    def publish_state(self, state: StatePayload) -> bool:
        """Record the station's status and send it as DDATA; ``False`` when not sent (not connected)."""
        with self._lock:
            return self._device_data(_state_values(state))

    def rebirth(self) -> bool:
        """Send NBIRTH and DBIRTH again (seq restarts at 0); ``False`` when not connected."""
        with self._lock:
            if not self._born:
                return False
            self._births()
            return True

    # -- messages ----------------------------------------------------------------------------------------

    def _device_data(self, values: dict[str, MetricValue | None]) -> bool:
        self._values.update(values)
        if not self._born:
            return False
        now = get_current_timestamp()
        payload = DData(timestamp=now, seq=self._next_seq(), metrics=_metrics(values, now))
        # Datatypes in DATA too: a host that joined late (and missed the birth) can still read them.
        self._client.publish(self.topic(Kind.DDATA, device=True), payload.encode(include_dtypes=True), qos=0)
        return True

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) % SEQ_MODULO
        return self._seq

    def _births(self) -> None:
        """NBIRTH (seq 0) and DBIRTH (seq 1) with every metric's current value; caller holds the lock."""
        now = get_current_timestamp()
        self._seq = 0
        node = NBirth(
            timestamp=now,
            seq=0,
            metrics=[
                Metric(timestamp=now, name=BD_SEQ, datatype=DataType.UINT64, value=self._bd_seq),
                Metric(timestamp=now, name=REBIRTH, datatype=DataType.BOOLEAN, value=False),
                Metric(
                    timestamp=now,
                    name=NODE_INFO_ROOT,
                    datatype=DataType.STRING,
                    value=self.settings.connection.topic_root,
                ),
            ],
        )
        device = DBirth(timestamp=now, seq=self._next_seq(), metrics=_metrics(self._values, now))
        self._client.publish(self.topic(Kind.NBIRTH), node.encode(), qos=0)
        self._client.publish(self.topic(Kind.DBIRTH, device=True), device.encode(), qos=0)
        self.births += 1

    def _death(self, bd_seq: int, *, timestamp: bool) -> bytes:
        # The will is registered long before the death it announces: no timestamp there (the host stamps
        # it on arrival); a clean stop says when.
        metric = Metric(timestamp=None, name=BD_SEQ, datatype=DataType.UINT64, value=bd_seq)
        return NDeath(timestamp=get_current_timestamp() if timestamp else None, bd_seq_metric=metric).encode()

    def _set_will(self) -> None:
        """Register NDEATH with the bdSeq of the next connection as the will (used by the next CONNECT)."""
        self._client.will_set(self.topic(Kind.NDEATH), self._death(self._will_bd_seq, timestamp=False), qos=1)

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
            s = self.settings.connection
            if reason.is_failure:
                self.last_error = explain_refusal(reason, s.host, s.port)
                log.error("Sparkplug: %s", self.last_error)
                return
            self.last_error = None
            client.subscribe(self.topic(Kind.NCMD), qos=1)
            client.subscribe(self.topic(Kind.DCMD, device=True), qos=1)
            if self.state_topic is not None:
                # The host's STATE is retained: it arrives right after this subscription.
                self.host_online = False
                client.subscribe(self.state_topic, qos=1)
            with self._lock:
                self._bd_seq = self._will_bd_seq
                # The will of this connection is fixed; the next connection announces the next bdSeq.
                self._will_bd_seq = (self._bd_seq + 1) % SEQ_MODULO
                _write_bd_seq(self.settings.bd_seq_file, self._will_bd_seq)
                self._set_will()
                if self.host_online:
                    self._be_born()
                else:
                    log.info("Sparkplug: waiting for primary host %s to be online (%s)",
                             self.settings.primary_host_id, self.state_topic)  # fmt: skip
        except Exception:
            log.exception("Sparkplug on_connect failed")

    def _be_born(self) -> None:
        """NBIRTH and DBIRTH on the current connection; caller holds the lock."""
        self._births()
        self._born = True
        self._born_event.set()
        log.info("Sparkplug edge node %s/%s born (bdSeq %d)", self.settings.group_id,
                 self.settings.node_id, self._bd_seq)  # fmt: skip

    def _on_host_state(self, payload: bytes) -> None:
        """The primary host's STATE: births when it comes online, end of the session when it goes."""
        try:
            state = State.decode(payload)
            timestamp, online = int(state.timestamp), bool(state.online)
        except Exception as exc:  # a bad STATE must not stop the network thread
            log.warning("Sparkplug: undecodable STATE on %s: %s", self.state_topic, exc)
            return
        with self._lock:
            if timestamp < self._host_state_ts:
                log.info("Sparkplug: STATE older than the last one seen ignored (%d < %d)",
                         timestamp, self._host_state_ts)  # fmt: skip
                return
            self._host_state_ts = timestamp
            self.host_online = online
            if online and not self._born:
                self._be_born()
                return
            if online or not self._born:
                return
            log.warning("Sparkplug: primary host %s went offline: session ended (NDEATH), reconnecting",
                        self.settings.primary_host_id)  # fmt: skip
            self._client.publish(self.topic(Kind.NDEATH), self._death(self._bd_seq, timestamp=True), qos=1)
            self._born = False
            self._born_event.clear()
        self._client.disconnect()  # ends the network loop; the timer connects again
        self._restart = threading.Timer(self.settings.restart_delay_s, self._reconnect)
        self._restart.daemon = True
        self._restart.start()

    def _reconnect(self) -> None:
        """A new session after the primary host ended the last one (its births wait for STATE online)."""
        if not self._started:
            return
        self._client.loop_stop()
        s = self.settings.connection
        self._client.connect_async(s.host, s.port, s.keepalive_s)
        self._client.loop_start()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        s = self.settings.connection
        error = explain_connect_error(sys.exc_info()[1], s.host, s.port, s.tls is not None)
        if error != self.last_error:
            log.warning("Sparkplug: %s (retrying)", error)  # once per distinct reason
        self.last_error = error

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            self._born = False
        self._born_event.clear()
        if reason.is_failure:
            log.warning("Sparkplug: disconnected from broker: %s (reconnecting)", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: MQTTMessage) -> None:
        if message.topic == self.state_topic:
            self._on_host_state(bytes(message.payload))
            return
        try:
            command = NCmd.decode(bytes(message.payload))
        except Exception as exc:  # a host's bad payload must not stop the network thread
            log.warning("Sparkplug: undecodable command on %s: %s", message.topic, exc)
            return
        try:
            for metric in command.metrics:
                if message.topic == self.topic(Kind.NCMD) and metric.name == REBIRTH and metric.value is True:
                    log.info("Sparkplug: rebirth requested by NCMD")
                    self.rebirth()
                else:
                    log.warning(
                        "Sparkplug: command %r on %s not supported (ignored)", metric.name, message.topic
                    )
        except Exception:
            log.exception("Sparkplug: handling %s failed", message.topic)


def _metrics(values: dict[str, MetricValue | None], timestamp: int) -> list[Metric]:
    """Device metrics for ``values`` (a ``None`` value is sent as is_null with its datatype)."""
    return [
        Metric(timestamp=timestamp, name=name, datatype=DEVICE_METRICS[name], value=value)
        for name, value in _in_birth_order(values)
    ]


def _in_birth_order(values: dict[str, MetricValue | None]) -> Iterable[tuple[str, MetricValue | None]]:
    return ((name, values[name]) for name in DEVICE_METRICS if name in values)


def _state_values(state: StatePayload) -> dict[str, MetricValue | None]:
    return {"State/Status": state.status, "State/Reason": state.reason, "State/SKU": state.sku}


def _read_bd_seq(path: Path | None) -> int:
    """The bdSeq for the next connection; 0 without a file or with an unreadable one (said in the log)."""
    if path is None or not path.exists():
        return 0
    try:
        return int(path.read_text(encoding="utf-8").strip()) % SEQ_MODULO
    except (OSError, ValueError) as exc:
        log.warning("Sparkplug bdSeq file %s unreadable (%s); starting at 0", path, exc)
        return 0


def _write_bd_seq(path: Path | None, value: int) -> None:
    """Keep the next bdSeq (atomically: a torn file would restart the count at 0)."""
    if path is None:
        return
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(f"{value}\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # Sparkplug goes on; a host then sees a repeated bdSeq after a restart
        log.error("cannot keep the Sparkplug bdSeq in %s: %s", path, exc)
