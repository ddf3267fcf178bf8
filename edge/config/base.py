"""Building blocks shared by every config section: the strict base model and constrained value types."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from pydantic_core import PydanticCustomError


class Section(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable once validated.

    ``extra="forbid"`` turns a typo (``exposur_us``) into an error instead of a silently ignored setting;
    ``frozen`` lets a validated config be shared between threads without defensive copies; ``strict``
    refuses coercion, so ``loop: 0``, ``ok_sample_rate: false`` or ``fps: "5"`` are errors rather than a
    value the engineer never wrote (YAML already gives real booleans and numbers); ``allow_inf_nan=False``
    names a NaN or infinite number as such instead of failing a range check with a confusing message.
    A field typed as a tuple sets ``strict=False`` on itself only (YAML has lists, not tuples): its items
    stay strict.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, strict=True, allow_inf_nan=False
    )


def _safe_path(value: str) -> str:
    """Reject paths that could walk out of the directory they are resolved against.

    Only the syntax is checked here (validation is pure); where a path really points, symlinks included, is
    checked by :func:`edge.config.resolve.resolve_config`.
    """
    if not value or not value.strip():
        raise ValueError("must be a non-empty path")
    if "\x00" in value:
        raise ValueError("must not contain NUL bytes")
    if ".." in PurePosixPath(value).parts:
        raise ValueError("must not contain '..' (paths may not climb out of their allowed root)")
    return value


ConfigPath = Annotated[str, AfterValidator(_safe_path)]
"""A file-system path as written in the YAML: relative paths are relative to the config file's folder."""

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
"""A name used in MQTT topics and directory names: letters, digits, ``_ . -``; 1 to 64 characters."""


def located_error(message: str, *subpath: str | int) -> PydanticCustomError:
    """Build a validation error that points below the field it is raised on.

    Cross-field checks run on a parent (``skus``) but the culprit is a child (``skus[2].id``); the loader
    appends ``subpath`` to the error location so the message names, and the line number points at, the
    culprit itself.
    """
    return PydanticCustomError("config_check", message, {"at": list(subpath)})
