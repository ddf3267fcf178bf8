"""JSON Schema of the station config, published for editors (YAML language server) and line engineers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge.config.root import StationConfig

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "station_configs" / "schema.json"
"""The checked-in copy; a test fails when it is out of date (regenerate: ``edge config schema --write``)."""


def config_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of :class:`StationConfig`."""
    schema = StationConfig.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text() -> str:
    """Return the schema as stable, diff-friendly text."""
    return json.dumps(config_schema(), indent=2, sort_keys=True) + "\n"
