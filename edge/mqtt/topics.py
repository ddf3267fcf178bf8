"""Topic names of the station's MQTT contract (see ``docs/mqtt.md``).

Every topic lives under one root, ``<site>/<line>/<station>``, taken from the station config. The QoS and
retain flag of each outgoing topic are part of the contract, so they are defined here next to the names and
nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

#: Commands the station accepts under ``<root>/cmd/<name>``.
COMMAND_NAMES: Final[tuple[str, ...]] = ("sku", "trigger", "ack", "pause", "resume", "reload")

# MQTT forbids wildcards in topic names and a level must not be empty; a root is exactly three levels so
# that ACLs and subscribers can rely on the shape.
_LEVEL = re.compile(r"^[^/#+\x00]+$")


@dataclass(frozen=True)
class Delivery:
    """How a topic is published: MQTT QoS and the retain flag."""

    qos: int
    retain: bool


STATE: Final = Delivery(qos=1, retain=True)
VERDICT: Final = Delivery(qos=1, retain=False)
RESULT: Final = Delivery(qos=1, retain=False)
READY: Final = Delivery(qos=1, retain=True)
METRICS: Final = Delivery(qos=0, retain=False)
REVIEW: Final = Delivery(qos=1, retain=False)
REPLY: Final = Delivery(qos=1, retain=False)


@dataclass(frozen=True)
class Topics:
    """All topic names of one station.

    Attributes:
        root: ``<site>/<line>/<station>``.

    """

    root: str

    def __post_init__(self) -> None:
        levels = self.root.split("/")
        if len(levels) != 3 or not all(_LEVEL.match(level) for level in levels):
            raise ValueError(
                f"MQTT topic root {self.root!r} must be '<site>/<line>/<station>': three non-empty levels "
                "without '+', '#' or NUL"
            )

    @classmethod
    def for_station(cls, site: str, line: str, station: str) -> Topics:
        """Build the topics of station ``station`` on ``line`` at ``site``."""
        return cls(f"{site}/{line}/{station}")

    @property
    def state(self) -> str:
        """Station status, retained; the broker publishes the last will (``offline``) here."""
        return f"{self.root}/state"

    @property
    def verdict(self) -> str:
        """Full per-part verdict for HMI, archive and MES."""
        return f"{self.root}/verdict"

    @property
    def result(self) -> str:
        """Fixed-shape, PLC-friendly per-part result code."""
        return f"{self.root}/result"

    @property
    def ready(self) -> str:
        """Trigger-ready flag of the PLC handshake, retained."""
        return f"{self.root}/ready"

    @property
    def metrics(self) -> str:
        """Periodic throughput/latency snapshot."""
        return f"{self.root}/metrics"

    @property
    def review(self) -> str:
        """Operator dispositions of NG parts."""
        return f"{self.root}/review"

    @property
    def reply(self) -> str:
        """Outcome of every command received (accepted or rejected)."""
        return f"{self.root}/reply"

    @property
    def commands(self) -> str:
        """Subscription filter for all commands."""
        return f"{self.root}/cmd/#"

    def command(self, name: str) -> str:
        """Return the topic of command ``name`` (one of :data:`COMMAND_NAMES`)."""
        if name not in COMMAND_NAMES:
            raise ValueError(f"unknown command {name!r}; known: {', '.join(COMMAND_NAMES)}")
        return f"{self.root}/cmd/{name}"

    def command_name(self, topic: str) -> str | None:
        """Return the command name of ``topic`` (``None`` when it is not under ``<root>/cmd/``).

        The name is returned even when it is not a known command, so the caller can say which one it was.
        """
        prefix = f"{self.root}/cmd/"
        return topic[len(prefix) :] if topic.startswith(prefix) else None
