from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from edge.config.schema import SCHEMA_PATH, config_schema, schema_text

EXAMPLES = sorted(SCHEMA_PATH.parent.glob("*.yaml"))


def test_checked_in_schema_is_up_to_date() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "station_configs/schema.json is stale: run `edge config schema --write`"
    )


def test_examples_validate_against_the_published_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    for path in EXAMPLES:
        jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), schema)


def test_schema_rejects_unknown_keys(tmp_path: Path) -> None:
    schema = config_schema()
    assert schema["additionalProperties"] is False
    data = yaml.safe_load(EXAMPLES[0].read_text(encoding="utf-8"))
    data["station"]["colour"] = "red"
    validator = jsonschema.Draft202012Validator(schema)
    assert any("colour" in e.message for e in validator.iter_errors(data))
