"""Where a new revision of the active config is written, and under which name.

A revision (a golden promotion or threshold change from the review UI, or a re-flash after a software
update) goes next to the config it derives from: relative paths in a config are relative to its own folder,
so the revision resolves exactly like its parent. Name: ``<parent stem>.rev-<UTC time>-<random>.yaml``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from edge.flash.active import ActiveConfig
from edge.flash.slots import CONFIG_NAME


@dataclass(frozen=True)
class Revision:
    """A new revision of the active config.

    Attributes:
        base: The folder the active config was flashed from.
        source: The file name it was flashed as.
        revision: Unique revision id (sortable by time).
        config_file: Where the revision's YAML goes.

    """

    base: Path
    source: Path
    revision: str
    config_file: Path


def new_revision(active: ActiveConfig) -> Revision:
    """Name a new revision of ``active`` (nothing is written)."""
    base = Path(str(active.manifest.get("base_dir") or active.slot_dir))
    source = Path(str(active.manifest.get("source") or CONFIG_NAME))
    revision = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)
    return Revision(base, source, revision, base / f"{source.stem.split('.rev-')[0]}.rev-{revision}.yaml")
