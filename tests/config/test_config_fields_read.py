"""Every config field is read by the code it configures: a setting nothing outside ``edge/config`` reads is
accepted and ignored, which a line engineer cannot tell from a setting that works."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from edge.config.root import StationConfig

REPO = Path(__file__).resolve().parents[2]


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation) if get_origin(annotation) is not None else ():
        yield from _models(arg)


def fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(yaml path, field name)`` of every field below ``model``."""
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        yield path, name
        for sub in _models(info.annotation):
            yield from fields(sub, f"{path}.")


def code_outside_config() -> str:
    sources = [*(REPO / "edge").rglob("*.py"), *(REPO / "export").rglob("*.py")]
    return "\n".join(p.read_text() for p in sources if "edge/config" not in p.as_posix())


def is_read(name: str, code: str) -> bool:
    """Whether ``code`` reads field ``name``: as an attribute, a key or a keyword argument."""
    return re.search(rf"\.{name}\b|[\"']{name}[\"']|\b{name}=", code) is not None


def test_every_field_is_read_outside_the_config_package() -> None:
    code = code_outside_config()
    unread = [path for path, name in fields(StationConfig) if not is_read(name, code)]
    assert unread == [], f"config fields nothing outside edge/config reads: {unread}"


def test_the_check_finds_an_unread_field() -> None:
    class Probe(BaseModel):
        frobnicate_level_zz: int = 0

    code = code_outside_config()
    ((path, name),) = list(fields(Probe))
    assert not is_read(name, code), path
