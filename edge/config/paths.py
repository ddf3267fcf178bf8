"""Keep every path a config names inside the folders the station allows (no ``..``, no escaping symlinks)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


class PathEscapeError(ValueError):
    """A path points outside every allowed root (directly, through ``..`` or through a symlink)."""


def confine(path: str | Path, *, base_dir: Path, roots: Sequence[Path]) -> Path:
    """Resolve ``path`` against ``base_dir`` and check that it lies inside one of ``roots``.

    Symlinks are followed (``realpath``) before the check, so a link inside an allowed folder that points to
    ``/etc`` is rejected. The path does not need to exist; the longest existing prefix is resolved.

    Args:
        path: The path as written in the config; relative paths are relative to ``base_dir``.
        base_dir: The folder relative paths are resolved against.
        roots: Allowed folders (they are resolved too).

    Returns:
        The resolved absolute path.

    Raises:
        PathEscapeError: The path contains ``..`` or resolves outside every root.

    """
    raw = Path(path)
    if ".." in raw.parts:
        raise PathEscapeError("'..' is not allowed in paths")
    real = Path(os.path.realpath(base_dir / raw))
    for root in roots:
        real_root = Path(os.path.realpath(root))
        if real == real_root or real.is_relative_to(real_root):
            return real
    allowed = ", ".join(str(r) for r in roots) or "(none)"
    raise PathEscapeError(f"resolves to {real}, outside the allowed roots: {allowed}")
