"""Validation of MQTT payloads against the contract's JSON Schemas (``edge/mqtt/schemas/*.json``).

The schemas are package data and the single source of truth: ``docs/mqtt.md`` describes them, the tests
validate every payload the code emits against them, and incoming commands are checked with them at run time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any, Final

from jsonschema import Draft202012Validator

#: Schema names, one per payload kind (file ``schemas/<name>.json``).
SCHEMA_NAMES: Final[tuple[str, ...]] = (
    "state",
    "verdict",
    "result",
    "ready",
    "metrics",
    "review",
    "reply",
    "cmd_sku",
    "cmd_trigger",
    "cmd_ack",
    "cmd_control",
)


class PayloadError(ValueError):
    """A payload does not match its schema; the message names the schema, the field and the rule."""


@cache
def schema(name: str) -> dict[str, Any]:
    """Return the JSON Schema ``name`` (one of :data:`SCHEMA_NAMES`) as a dict."""
    if name not in SCHEMA_NAMES:
        raise KeyError(f"no MQTT schema named {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    schema = resources.files("edge.mqtt").joinpath("schemas").joinpath(f"{name}.json")
    text = schema.read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator(name: str) -> Draft202012Validator:
    spec = schema(name)
    Draft202012Validator.check_schema(spec)
    return Draft202012Validator(spec)


def errors(name: str, payload: object) -> list[str]:
    """All violations of schema ``name`` by ``payload``, as readable strings (empty when valid)."""
    # Sorted by location (as strings: paths mix keys and indices) so the message is stable.
    found = sorted(_validator(name).iter_errors(payload), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_where(e.absolute_path)}: {e.message}" for e in found]


def validate(name: str, payload: Mapping[str, Any] | object) -> None:
    """Check ``payload`` against schema ``name``.

    Raises:
        PayloadError: naming the schema, the offending field (JSON path) and the rule it breaks.

    """
    found = errors(name, payload)
    if found:
        more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
        raise PayloadError(f"{name} payload invalid: {'; '.join(found[:5])}{more}")


def _where(path: Iterable[str | int]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
