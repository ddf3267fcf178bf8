"""Broker with a password file and TLS (certificates made by the test): who gets in."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fixtures.mosquitto import BrokerCerts, BrokerFactory, MosquittoBroker, free_port, make_certs
from fixtures.mqtt_subscriber import Subscriber

from edge.mqtt import MqttSettings, Outbox, StationMqtt, TlsSettings, VerdictPayload

ROOT = "plant1/line2/st4"
USERS = {"station-st4": "s3cret-station", "hmi": "hmi-pass"}


@pytest.fixture
def secure_broker(mosquitto_factory: BrokerFactory, broker_certs: BrokerCerts) -> MosquittoBroker:
    return mosquitto_factory(users=USERS, certs=broker_certs)


def station_settings(broker: MosquittoBroker, ca: Path, password: str) -> MqttSettings:
    return MqttSettings(
        host="localhost",  # the name in the server certificate, checked by the client
        port=broker.port,
        topic_root=ROOT,
        client_id="station-st4",
        username="station-st4",
        password=password,
        tls=TlsSettings(ca_file=ca),
        validate_outgoing=True,
    )


def test_right_credentials_over_tls_deliver_verdicts(
    secure_broker: MosquittoBroker, broker_certs: BrokerCerts, tmp_path: Path
) -> None:
    hmi = Subscriber(
        "localhost", secure_broker.port, [f"{ROOT}/verdict"], username="hmi", password="hmi-pass",
        tls_ca=str(broker_certs.ca_file),
    )  # fmt: skip
    try:
        hmi.wait_subscribed()
        with Outbox(tmp_path / "outbox.db") as outbox:
            station = StationMqtt(
                station_settings(secure_broker, broker_certs.ca_file, "s3cret-station"), outbox
            )
            station.start()
            assert station.wait_connected(10), station.last_error
            station.publish_verdict(VerdictPayload.uninspected(part_id="S1", seq=1, reason="tls test"))
            assert hmi.wait_for(lambda ms: len(ms) == 1, 10)
            assert hmi.messages[0].json()["part_id"] == "S1"
            station.stop()
    finally:
        hmi.close()


def test_wrong_password_is_refused_and_reported(
    secure_broker: MosquittoBroker, broker_certs: BrokerCerts, tmp_path: Path
) -> None:
    with Outbox(tmp_path / "outbox.db") as outbox:
        station = StationMqtt(station_settings(secure_broker, broker_certs.ca_file, "wrong"), outbox)
        station.start()
        try:
            deadline = time.monotonic() + 10
            while station.last_error is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not station.connected
            assert "refused connection" in str(station.last_error)
            assert "mqtt.username and mqtt.password" in str(station.last_error)
            assert "Not authorized" in str(station.last_error) or "Bad user name" in str(station.last_error)
            # A verdict still goes to disk while the broker refuses us: nothing is lost.
            station.publish_verdict(VerdictPayload.uninspected(part_id="S2", seq=2, reason="refused test"))
            assert outbox.depth() == 2
        finally:
            station.stop(flush_timeout_s=0)


@pytest.mark.parametrize(("username", "password"), [(None, None), ("hmi", "guess"), ("nobody", "x")])
def test_anonymous_and_wrong_password_clients_are_refused(
    secure_broker: MosquittoBroker, broker_certs: BrokerCerts, username: str | None, password: str | None
) -> None:
    client = Subscriber(
        "localhost", secure_broker.port, [f"{ROOT}/#"], username=username, password=password,
        tls_ca=str(broker_certs.ca_file),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while client.refusal is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.refusal is not None, "the broker let an unauthorised client in"
        assert not client.connected.is_set()
    finally:
        client.close()


def test_station_refuses_a_broker_certificate_from_another_ca(
    secure_broker: MosquittoBroker, tmp_path: Path
) -> None:
    other_ca = make_certs(tmp_path / "other").ca_file
    with Outbox(tmp_path / "outbox.db") as outbox:
        station = StationMqtt(station_settings(secure_broker, other_ca, "s3cret-station"), outbox)
        station.start()
        try:
            assert not station.wait_connected(3)
            assert "certificate" in str(station.last_error), station.last_error
            assert "not signed by a CA in mqtt.tls.ca" in str(station.last_error), station.last_error
        finally:
            station.stop(flush_timeout_s=0)


def _last_error_of(settings: MqttSettings, tmp_path: Path) -> str:
    """The station's reason for not being connected, a few seconds after start."""
    with Outbox(tmp_path / "outbox.db") as outbox:
        station = StationMqtt(settings, outbox)
        station.start()
        try:
            deadline = time.monotonic() + 5
            while station.last_error is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not station.connected
            return str(station.last_error)
        finally:
            station.stop(flush_timeout_s=0)


def test_a_certificate_for_another_host_name_is_named_as_such(
    mosquitto_factory: BrokerFactory, tmp_path: Path
) -> None:
    certs = make_certs(tmp_path / "elsewhere", names="DNS:broker.plant1.example")
    broker = mosquitto_factory(users=USERS, certs=certs)
    error = _last_error_of(station_settings(broker, certs.ca_file, "s3cret-station"), tmp_path)
    assert "not valid for the host name 'localhost'" in error, error


def test_a_plain_port_is_named_as_such(
    mosquitto: MosquittoBroker, broker_certs: BrokerCerts, tmp_path: Path
) -> None:
    error = _last_error_of(station_settings(mosquitto, broker_certs.ca_file, "x"), tmp_path)
    assert "TLS" in error and "plain MQTT port" in error, error


def test_nothing_listening_is_named_as_such(broker_certs: BrokerCerts, tmp_path: Path) -> None:
    settings = MqttSettings(host="127.0.0.1", port=free_port(), topic_root=ROOT, client_id="st4")
    error = _last_error_of(settings, tmp_path)
    assert "nothing accepts connections" in error and "mqtt.port" in error, error


def test_a_missing_client_certificate_is_named_as_such(
    mosquitto_factory: BrokerFactory, broker_certs: BrokerCerts, tmp_path: Path
) -> None:
    broker = mosquitto_factory(certs=broker_certs, require_certificate=True)
    error = _last_error_of(station_settings(broker, broker_certs.ca_file, "s3cret-station"), tmp_path)
    assert "client certificate" in error and "mqtt.tls.cert" in error, error
