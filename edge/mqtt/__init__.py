"""MQTT contract of the station: topics, payloads and schemas, durable outbox, commands, PLC handshake.

See ``docs/mqtt.md`` for the contract as PLC and HMI programmers read it.
"""

from edge.mqtt.client import MqttSettings, StationMqtt, TlsSettings
from edge.mqtt.commands import CommandHandler, CommandRejected
from edge.mqtt.handshake import Handshake, result_code
from edge.mqtt.outbox import Outbox, OutboxError, OutboxFull
from edge.mqtt.payloads import (
    SCHEMA_VERSION,
    ConfigRef,
    LatencyStats,
    MetricsPayload,
    ReadyPayload,
    ResultPayload,
    ReviewPayload,
    StatePayload,
    VerdictPayload,
)
from edge.mqtt.topics import Topics

__all__ = [
    "SCHEMA_VERSION",
    "CommandHandler",
    "CommandRejected",
    "ConfigRef",
    "Handshake",
    "LatencyStats",
    "MetricsPayload",
    "MqttSettings",
    "Outbox",
    "OutboxError",
    "OutboxFull",
    "ReadyPayload",
    "ResultPayload",
    "ReviewPayload",
    "StatePayload",
    "StationMqtt",
    "TlsSettings",
    "Topics",
    "VerdictPayload",
    "result_code",
]
