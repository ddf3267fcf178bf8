"""A/B config slots under a station root, switched by an atomic rename of the ``current`` symlink.

Layout::

    <root>/current -> slots/a     the active slot (relative symlink)
    <root>/slots/a, slots/b       complete slots: station.yaml, banks/, manifest.json (written last)
    <root>/slots/.staging-*       a slot being built (never pointed at; removed by the next flash)

The active slot is never written to. A new config is staged, fsync'd, renamed into the inactive slot and only
then made active by replacing the symlink, so at every instant ``current`` names a complete slot, the old or
the new one. A slot is valid when its manifest exists and every file it lists has the recorded hash.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.flash.fsutil import fsync_dir, fsync_tree, replace_symlink, sha256_file, write_durable

SLOT_NAMES = ("a", "b")
CONFIG_NAME = "station.yaml"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


class SlotError(Exception):
    """A slot is missing, incomplete or corrupt."""


@dataclass(frozen=True)
class SlotInfo:
    """A verified slot."""

    name: str
    path: Path
    manifest: dict[str, Any]

    @property
    def config_path(self) -> Path:
        """The station config installed in this slot."""
        return self.path / CONFIG_NAME

    @property
    def config_hash(self) -> str:
        """Hash of the installed config (``edge.config.config_hash``)."""
        return str(self.manifest.get("config_hash", ""))


class StationRoot:
    """The station's config store: A/B slots, the ``current`` link, journal and caches."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def slots_dir(self) -> Path:
        """Folder of the slots."""
        return self.root / "slots"

    @property
    def current_link(self) -> Path:
        """The ``current`` symlink."""
        return self.root / "current"

    def slot_path(self, name: str) -> Path:
        """Folder of slot ``name``."""
        if name not in SLOT_NAMES:
            raise ValueError(f"unknown slot {name!r}")
        return self.slots_dir / name

    def current_name(self) -> str | None:
        """Name of the active slot, ``None`` when nothing was ever flashed (or the link is broken)."""
        try:
            target = str(self.current_link.readlink())
        except (FileNotFoundError, OSError):
            return None
        name = Path(target).name
        return name if name in SLOT_NAMES and Path(target).parent.name == "slots" else None

    def inactive_name(self) -> str:
        """Return the slot a new config goes into."""
        return "b" if self.current_name() == "a" else "a"

    def verify(self, name: str) -> SlotInfo:
        """Check slot ``name`` is complete and intact.

        Raises:
            SlotError: No manifest, unreadable manifest, a listed file missing or with another hash.

        """
        path = self.slot_path(name)
        try:
            manifest = json.loads((path / MANIFEST_NAME).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SlotError(f"slot {name} has no manifest (empty or incomplete)") from None
        except (OSError, ValueError) as exc:
            raise SlotError(f"slot {name}: manifest unreadable: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise SlotError(f"slot {name}: manifest has an unknown format")
        files = manifest.get("files")
        if not isinstance(files, dict) or CONFIG_NAME not in files:
            raise SlotError(f"slot {name}: manifest lists no {CONFIG_NAME}")
        for rel, digest in files.items():
            file = path / rel
            if ".." in Path(rel).parts or not file.is_file():
                raise SlotError(f"slot {name}: {rel} is missing")
            if sha256_file(file) != digest:
                raise SlotError(f"slot {name}: {rel} is corrupt (hash mismatch)")
        return SlotInfo(name, path, manifest)

    def current(self) -> SlotInfo:
        """Return the verified active slot.

        Raises:
            SlotError: Nothing flashed yet, or the active slot is damaged.

        """
        name = self.current_name()
        if name is None:
            raise SlotError(f"no config has been flashed ({self.current_link} does not exist)")
        return self.verify(name)

    def new_staging(self) -> Path:
        """Create a fresh, empty staging folder (left-overs of interrupted flashes are removed first)."""
        self.slots_dir.mkdir(parents=True, exist_ok=True)
        self.clean_staging()
        staging = self.slots_dir / f".staging-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        return staging

    def clean_staging(self) -> None:
        """Remove staging and trash folders of interrupted flashes (never a slot)."""
        if not self.slots_dir.is_dir():
            return
        for leftover in self.slots_dir.iterdir():
            if leftover.name.startswith((".staging-", ".trash-")):
                shutil.rmtree(leftover, ignore_errors=True)

    def seal(self, staging: Path, manifest: dict[str, Any]) -> None:
        """Hash every staged file into the manifest, write it last, and fsync the whole tree."""
        files = {
            str(p.relative_to(staging)): sha256_file(p)
            for p in sorted(staging.rglob("*"))
            if p.is_file() and p.name != MANIFEST_NAME
        }
        body = {**manifest, "format": MANIFEST_FORMAT, "files": files}
        fsync_tree(staging)
        write_durable(staging / MANIFEST_NAME, json.dumps(body, indent=2, sort_keys=True).encode())

    def install(self, staging: Path, name: str) -> None:
        """Move a sealed staging folder into the (inactive) slot ``name``.

        Raises:
            SlotError: ``name`` is the active slot (it must never be overwritten).

        """
        if name == self.current_name():
            raise SlotError(f"refusing to overwrite the active slot {name}")
        target = self.slot_path(name)
        if target.exists():
            # Rename first (atomic), delete after: the slot is either the old complete one or absent.
            trash = self.slots_dir / f".trash-{uuid.uuid4().hex[:8]}"
            target.rename(trash)
            fsync_dir(self.slots_dir)
            shutil.rmtree(trash, ignore_errors=True)
        staging.rename(target)
        fsync_dir(self.slots_dir)

    def activate(self, name: str | None) -> None:
        """Make slot ``name`` active (``None``: no active config) with an atomic, durable symlink switch."""
        if name is None:
            with contextlib.suppress(FileNotFoundError):
                self.current_link.unlink()
            fsync_dir(self.root)
            return
        self.slot_path(name)  # validates the name
        replace_symlink(self.current_link, f"slots/{name}")


def write_json_durable(path: Path, data: dict[str, Any]) -> None:
    """Atomically and durably write a JSON file."""
    write_durable(path, json.dumps(data, indent=2, sort_keys=True).encode())
