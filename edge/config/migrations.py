"""Chained schema migrations: a file of version N is lifted one version at a time to the current one.

Each entry of :data:`MIGRATIONS` turns a plain dict of version ``N`` into one of version ``N + 1``. Keeping
every step small and pure means an old station config can always be read by newer software, and a test per
step pins what it does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from edge.config.root import CURRENT_VERSION

Migration = Callable[[dict[str, Any]], dict[str, Any]]


class MigrationError(ValueError):
    """The file's version cannot be migrated (unknown, newer than this software, or malformed)."""


def _v0_to_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (pilot stations) -> 1.

    v0 kept SKUs as a mapping ``{id: {...}}``, named the GenTL producer ``camera.producer`` and the golden
    folder ``golden``; v1 uses a list of SKUs with explicit ``id`` and the names ``cti`` / ``golden_dir``.
    """
    camera = data.get("camera")
    if isinstance(camera, dict) and "producer" in camera:
        camera["cti"] = camera.pop("producer")
    skus = data.get("skus")
    if isinstance(skus, dict):
        converted = []
        for sku_id, body in skus.items():
            entry = {"id": sku_id, **(body if isinstance(body, dict) else {})}
            if "golden" in entry:
                entry["golden_dir"] = entry.pop("golden")
            converted.append(entry)
        data["skus"] = converted
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}
"""Version N -> function producing version N + 1."""


def migrate(
    data: dict[str, Any], *, registry: dict[int, Migration] | None = None, target: int = CURRENT_VERSION
) -> tuple[dict[str, Any], list[int]]:
    """Lift ``data`` to ``target`` (default :data:`CURRENT_VERSION`) one registered step at a time.

    Args:
        data: The parsed YAML document; it is not modified.
        registry: Migrations to use (default :data:`MIGRATIONS`; tests pass their own chains).
        target: Version to reach.

    Returns:
        The migrated copy and the versions it was migrated from (empty when already current).

    Raises:
        MigrationError: ``version`` is missing, not an integer, newer than this software or has no migration.

    """
    if "version" not in data:
        raise MigrationError(f"required: the schema version of the file (current: {target})")
    version = data["version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise MigrationError(f"must be an integer schema version (current: {target})")
    steps = MIGRATIONS if registry is None else registry
    if version > target:
        raise MigrationError(
            f"version {version} is newer than this software understands ({target}); update it"
        )
    if version < 0:
        raise MigrationError(f"version must be between 0 and {target}")
    out = copy.deepcopy(data)
    applied: list[int] = []
    while version < target:
        step = steps.get(version)
        if step is None:
            raise MigrationError(
                f"no migration from version {version} (oldest supported: {min(steps, default=target)})"
            )
        out = step(out)
        applied.append(version)
        version += 1
        out["version"] = version
    return out, applied
