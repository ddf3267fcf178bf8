"""Secrets by reference: the YAML names where a secret lives, never its value.

``{env: NAME}`` or ``{file: PATH}``: a config can be committed, diffed, shown and journaled without leaking.

Resolution is a separate, explicit step (:func:`resolve_secret`) so that validating a config stays pure.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator

from edge.config.base import ConfigPath, Section

MASK = "***"
"""What ``edge config show`` prints in place of a secret value."""

MAX_SECRET_BYTES = 64 * 1024


class SecretError(ValueError):
    """A secret reference could not be resolved; the message never contains the secret value."""


class SecretRef(Section):
    """Where a secret lives: exactly one of ``env`` (environment variable) or ``file`` (file path)."""

    env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable holding the secret.",
    )
    file: ConfigPath | None = Field(
        default=None,
        description="Path of a file holding the secret (trailing newline stripped), e.g. /run/secrets/mqtt.",
    )

    @model_validator(mode="before")
    @classmethod
    def _reject_literal(cls, data: Any) -> Any:
        if isinstance(data, str | int | float | bytes):
            # Do not echo the value back: it may be a real password typed into the YAML by mistake.
            raise ValueError(
                "secrets must be given by reference, {env: NAME} or {file: PATH}, never as a literal value"
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self

    def describe(self) -> str:
        """Human-readable reference (safe to print: it names the place, not the value)."""
        return f"env {self.env}" if self.env is not None else f"file {self.file}"


def resolve_secret(
    ref: SecretRef,
    *,
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    allowed_roots: Sequence[Path] = (),
) -> SecretStr:
    """Read the secret a reference points to.

    Args:
        ref: The reference from the config.
        env: Environment to read ``env`` references from (default: ``os.environ``).
        base_dir: Folder relative ``file`` references are resolved against (the config file's folder).
        allowed_roots: Folders a ``file`` secret must lie inside (after following symlinks). Empty allows
            none: a file reference then always fails.

    Returns:
        The value wrapped in :class:`pydantic.SecretStr` so that ``repr``/logging never shows it.

    Raises:
        SecretError: The variable is unset or empty, the file is missing, unreadable, too large or outside
            the allowed roots.

    """
    if ref.env is not None:
        value = (os.environ if env is None else env).get(ref.env)
        if not value:
            raise SecretError(f"environment variable {ref.env} is not set or empty")
        return SecretStr(value)
    assert ref.file is not None  # guaranteed by SecretRef._exactly_one
    from edge.config.paths import PathEscapeError, confine  # local: paths imports nothing from here

    try:
        path = confine(ref.file, base_dir=base_dir or Path.cwd(), roots=allowed_roots)
    except PathEscapeError as exc:
        raise SecretError(f"secret file {ref.file}: {exc}") from None
    try:
        if path.stat().st_size > MAX_SECRET_BYTES:
            raise SecretError(f"secret file {ref.file} is larger than {MAX_SECRET_BYTES} bytes")
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        raise SecretError(f"secret file {ref.file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"secret file {ref.file} cannot be read: {type(exc).__name__}") from None
    if not value:
        raise SecretError(f"secret file {ref.file} is empty")
    return SecretStr(value)
