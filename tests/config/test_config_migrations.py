from __future__ import annotations

from typing import Any

import pytest
import yaml

from edge.config import CURRENT_VERSION, parse_config
from edge.config.migrations import MIGRATIONS, MigrationError, migrate

V0: dict[str, Any] = {
    "version": 0,
    "station": {"site": "plant", "line": "l1", "id": "st1"},
    "camera": {"source": "genicam", "producer": "/opt/vendor/producer.cti"},
    "skus": {"widget": {"golden": "golden/widget", "top_k": 2}, "gadget": {"golden": "golden/gadget"}},
}


def test_v0_document_migrates_to_current_and_validates() -> None:
    migrated, applied = migrate(V0)
    assert applied == [0]
    assert migrated["version"] == CURRENT_VERSION
    assert migrated["camera"]["cti"] == "/opt/vendor/producer.cti"
    assert migrated["skus"] == [
        {"id": "widget", "golden_dir": "golden/widget", "top_k": 2},
        {"id": "gadget", "golden_dir": "golden/gadget"},
    ]
    assert V0["skus"]["widget"]["golden"] == "golden/widget"  # input untouched
    config = parse_config(yaml.safe_dump(V0, sort_keys=False), source="v0.yaml")
    assert config.skus[0].id == "widget"


def test_every_version_below_current_has_a_migration() -> None:
    assert set(MIGRATIONS) == set(range(CURRENT_VERSION))


def test_migrations_chain_one_version_at_a_time() -> None:
    calls: list[int] = []

    def step(n: int) -> Any:
        def run(data: dict[str, Any]) -> dict[str, Any]:
            calls.append(n)
            assert data["version"] == n
            return {**data, f"v{n + 1}": True}

        return run

    out, applied = migrate({"version": 0}, registry={0: step(0), 1: step(1), 2: step(2)}, target=3)
    assert calls == applied == [0, 1, 2]
    assert out == {"version": 3, "v1": True, "v2": True, "v3": True}


def test_gap_in_the_chain_is_an_error() -> None:
    with pytest.raises(MigrationError, match="no migration from version 1"):
        migrate({"version": 0}, registry={0: lambda d: d}, target=2)
