"""Turn configs into text for people: the canonical dict, its hash, a masked view, and a diff."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from edge.config.resolve import ResolvedConfig
from edge.config.root import StationConfig
from edge.config.secrets import MASK

SECRET_PATHS: tuple[tuple[str, ...], ...] = (("mqtt", "password"),)
"""Where secret references sit in the config (kept explicit so a new secret field needs a conscious entry)."""


def canonical(config: StationConfig) -> dict[str, Any]:
    """Return the config as plain JSON data with defaults and derived values filled in."""
    data: dict[str, Any] = config.model_dump(mode="json")
    data["mqtt"]["topic_root"] = config.topic_root
    data["mqtt"]["client_id"] = config.client_id
    return data


def config_hash(config: StationConfig) -> str:
    """Content hash of what the config means (not how it is written): comments and key order do not count.

    Secret references count (which secret is used is configuration), secret values do not (they are never in
    the config).
    """
    text = json.dumps(canonical(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def masked_view(resolved: ResolvedConfig) -> dict[str, Any]:
    """Canonical data with paths replaced by their resolved absolute form and secrets by ``***``."""
    data = canonical(resolved.config)
    for yaml_path, real in resolved.paths.items():
        _set(data, yaml_path, str(real))
    for keys in SECRET_PATHS:
        parent = data
        for key in keys[:-1]:
            parent = parent.get(key) or {}
        if parent.get(keys[-1]) is not None:
            parent[keys[-1]] = MASK
    return data


def _set(data: dict[str, Any], yaml_path: str, value: str) -> None:
    target: Any = data
    parts = yaml_path.replace("[", ".[").split(".")
    for part in parts[:-1]:
        target = target[int(part[1:-1])] if part.startswith("[") else target[part]
    last = parts[-1]
    if last.startswith("["):
        target[int(last[1:-1])] = value
    else:
        target[last] = value


def flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Flatten ``{"a": {"b": [1]}}`` to ``("a.b[0]", 1)``; SKUs are keyed by id (reordering is no change)."""
    if isinstance(data, dict):
        if not data and prefix:
            yield prefix, {}
        for key, value in data.items():
            yield from flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list) and prefix == "skus":
        for item in data:
            yield from flatten(item, f"skus[{item['id']}]")
    elif isinstance(data, list) and data and any(isinstance(v, dict | list) for v in data):
        for i, item in enumerate(data):
            yield from flatten(item, f"{prefix}[{i}]")
    else:
        yield prefix, data


def diff(a: StationConfig, b: StationConfig) -> list[str]:
    """List changes from ``a`` to ``b``: ``~ path: old -> new``, ``+ path: new``, ``- path: old``."""
    fa, fb = dict(flatten(canonical(a))), dict(flatten(canonical(b)))
    # An absent optional section (null) on one side and its fields on the other is one change, not two.
    for mine, other in ((fa, fb), (fb, fa)):
        for key in [k for k, v in mine.items() if v is None and k not in other]:
            if any(o.startswith(key + ".") or o.startswith(key + "[") for o in other):
                del mine[key]
    lines = []
    for key in sorted(fa.keys() | fb.keys()):
        if key not in fb:
            lines.append(f"- {key}: {json.dumps(fa[key])}")
        elif key not in fa:
            lines.append(f"+ {key}: {json.dumps(fb[key])}")
        elif fa[key] != fb[key]:
            lines.append(f"~ {key}: {json.dumps(fa[key])} -> {json.dumps(fb[key])}")
    return lines
