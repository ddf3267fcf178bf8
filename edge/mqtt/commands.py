"""Incoming commands under ``<root>/cmd/<name>``: checked, dispatched to the runtime, always answered.

A command is accepted only when it was not retained (a retained command would run again on every reconnect),
fits the size limit, is UTF-8 JSON and matches its schema. Anything else, and anything the runtime's handler
refuses (an unknown SKU), is answered on ``<root>/reply`` with ``ok: false`` and an error that names the topic
and the reason. :meth:`CommandProcessor.handle` never raises: it runs on the MQTT network thread, and an
exception there would stop the station's MQTT traffic.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Final, Protocol

from edge.mqtt.payloads import ReplyPayload
from edge.mqtt.topics import COMMAND_NAMES, Topics
from edge.mqtt.validate import PayloadError, validate

log = logging.getLogger(__name__)

DEFAULT_MAX_COMMAND_BYTES: Final = 4096

_SCHEMA_OF: Final[dict[str, str]] = {
    "sku": "cmd_sku",
    "trigger": "cmd_trigger",
    "ack": "cmd_ack",
    "pause": "cmd_control",
    "resume": "cmd_control",
    "reload": "cmd_control",
}


class CommandRejected(Exception):  # noqa: N818 (a refusal, not a fault: the name reads better in handlers)
    """Raised by a handler to refuse a well-formed command; the message goes to the reply as is."""


class CommandError(ValueError):
    """A command that cannot be accepted (retained, too large, malformed, unknown)."""


class CommandHandler(Protocol):
    """What the runtime implements to act on commands.

    Handlers run on the MQTT network thread: they must return quickly (hand work to the pipeline) and raise
    :class:`CommandRejected` with a clear message to refuse a command.
    """

    def on_sku(self, sku: str) -> None:
        """Select the recipe ``sku``; refuse an unknown SKU."""

    def on_trigger(self, part_id: str | None) -> None:
        """Start a part (software trigger); ``None`` lets the station assign the part id."""

    def on_ack(self, part_id: str) -> None:
        """Take the PLC's acknowledgement of the result of ``part_id``."""

    def on_pause(self) -> None:
        """Stop taking parts until resumed."""

    def on_resume(self) -> None:
        """Take parts again."""

    def on_reload(self) -> None:
        """Reload the station config."""


@dataclass(frozen=True)
class Command:
    """A checked command."""

    name: str
    body: dict[str, Any]

    @property
    def request_id(self) -> str | None:
        """The sender's correlation id, if any."""
        value = self.body.get("request_id")
        return value if isinstance(value, str) else None


def parse(topics: Topics, topic: str, payload: bytes, *, retained: bool, max_bytes: int) -> Command:
    """Check one received message and return the command it carries.

    Raises:
        CommandError: with the reason (never any other exception for any input).

    """
    name = topics.command_name(topic)
    if name is None:
        raise CommandError(f"topic {topic!r} is not under {topics.root}/cmd/")
    if name not in COMMAND_NAMES:
        raise CommandError(f"unknown command {name!r}; known: {', '.join(COMMAND_NAMES)}")
    if retained:
        raise CommandError(
            "retained command refused: publish commands with retain=false (a retained command would run "
            "again on every reconnect); clear it by publishing an empty retained message"
        )
    if len(payload) > max_bytes:
        raise CommandError(f"payload of {len(payload)} bytes exceeds the {max_bytes}-byte limit")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"payload is not UTF-8 text: {exc}") from None
    # A PLC often cannot send a JSON body for a bare command: an empty message means {}.
    if not text.strip():
        text = "{}"
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"payload is not valid JSON: {exc}") from None
    except RecursionError:
        raise CommandError("payload is not valid JSON: nested too deeply") from None
    try:
        validate(_SCHEMA_OF[name], body)
    except PayloadError as exc:
        raise CommandError(str(exc)) from None
    return Command(name=name, body=body)


def dispatch(command: Command, handler: CommandHandler) -> None:
    """Call the handler method for ``command``; lets :class:`CommandRejected` through."""
    body = command.body
    match command.name:
        case "sku":
            handler.on_sku(body["sku"])
        case "trigger":
            handler.on_trigger(body.get("part_id"))
        case "ack":
            handler.on_ack(body["part_id"])
        case "pause":
            handler.on_pause()
        case "resume":
            handler.on_resume()
        case "reload":
            handler.on_reload()
        case _:  # parse() only returns known names; this guards against the two lists drifting apart
            raise CommandRejected(f"command {command.name!r} has no handler method")


class CommandProcessor:
    """Turns every received command message into exactly one reply.

    Args:
        topics: The station's topics.
        handler: The runtime's handler; ``None`` until the runtime registers one (commands are refused).
        max_bytes: Largest accepted payload.

    """

    def __init__(
        self,
        topics: Topics,
        handler: CommandHandler | None = None,
        max_bytes: int = DEFAULT_MAX_COMMAND_BYTES,
    ) -> None:
        self.topics = topics
        self.handler = handler
        self.max_bytes = max_bytes
        self.accepted = 0
        self.refused = 0

    def handle(self, topic: str, payload: bytes, *, retained: bool) -> ReplyPayload | None:
        """Check, dispatch and answer one message. Never raises.

        Returns:
            The reply, or ``None`` for an empty retained message: that is someone clearing a retained
            command from the broker, which needs no answer.

        """
        name = self.topics.command_name(topic)
        if retained and not payload:
            log.info("retained message on %s cleared", topic)
            return None
        request_id: str | None = None
        try:
            command = parse(self.topics, topic, payload, retained=retained, max_bytes=self.max_bytes)
            request_id = command.request_id
            if self.handler is None:
                raise CommandRejected("the station is not ready for commands yet (no handler registered)")
            dispatch(command, self.handler)
        except (CommandError, CommandRejected) as exc:
            return self._refuse(name, topic, str(exc), request_id)
        except Exception as exc:
            log.exception("command on %s failed", topic)
            return self._refuse(name, topic, f"internal error: {type(exc).__name__}: {exc}", request_id)
        self.accepted += 1
        log.info("command %s accepted", topic)
        return ReplyPayload(command=name, topic=topic, ok=True, request_id=request_id)

    def _refuse(self, name: str | None, topic: str, reason: str, request_id: str | None) -> ReplyPayload:
        self.refused += 1
        log.warning("command on %s refused: %s", topic, reason)
        return ReplyPayload(command=name, topic=topic, ok=False, error=reason, request_id=request_id)
