"""The feedback loop: engineers turn review answers into a new config revision, installed by ``edge flash``.

Two changes are offered, both as a *new config revision* flashed with :func:`edge.flash.flash.flash` (so they
go through the same validation, bank building, calibration, self-test, hooks, atomic A/B install, rollback and
journal as any flash; nothing here installs anything by itself):

* **promote** false-alarm frames into a SKU's golden bank: the SKU's golden images plus the promoted frames
  are copied into a new folder ``golden-revisions/<sku>/<revision>/`` and the revision points ``golden_dir``
  at it (the folder the running config uses is never modified);
* **threshold**: set (or clear, back to calibration) a SKU's fixed threshold.

The revision is the active slot's exact config with that one change, written next to the config it derives
from (``<base>/<name>.rev-<revision>.yaml``): relative paths in a config are relative to its own folder, so
the revision resolves exactly like its parent. When the flash does not commit, the revision's files are
removed again (the journal keeps why).

A station with signed configs (``trusted_keys/``) refuses an unsigned revision: the flash aborts with the
signature error and the engineer signs and flashes the revision with ``edge flash`` instead.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edge.config.paths import PathEscapeError, confine
from edge.config.resolve import default_allowed_roots, list_images
from edge.flash.active import SafeMode, load_active_config
from edge.flash.flash import BankBuilder, FlashOptions, flash
from edge.flash.revision import new_revision
from edge.flash.slots import CONFIG_NAME

log = logging.getLogger(__name__)

GOLDEN_REVISIONS = "golden-revisions"


@dataclass(frozen=True)
class FeedbackResult:
    """Outcome of a promotion or threshold change.

    Attributes:
        result: ``committed``, ``rolled_back``, ``aborted`` (the flash's words), ``refused`` (not flashed).
        config_file: The revision that was flashed (removed again unless committed).

    """

    result: str
    reason: str
    flash_id: str = ""
    config_file: Path | None = None
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The revision is the active config."""
        return self.result == "committed"


class FeedbackError(Exception):
    """The change cannot be made (unknown SKU, no image, no flashed config...); nothing was flashed."""


_Edit = Callable[[dict[str, Any], Path, str, list[Path]], None]
"""``(raw config, base folder, revision id, created paths)``: changes the raw config in place."""


class GoldenFeedback:
    """Makes and flashes config revisions on the station at ``root``. One change at a time.

    Args:
        root: Station root (flashed A/B slots).
        hooks_dir: Firmware hooks folder, as for ``edge flash``.
        bank_builder: Passed to the flash (default: the flash's own bank builder).
        extra_roots: Extra allowed data roots (``edge flash --allow``).
        load_producer: Load the GenTL producer while resolving (as ``edge flash`` does).

    """

    def __init__(
        self,
        root: Path,
        *,
        hooks_dir: Path | None = None,
        bank_builder: BankBuilder | None = None,
        extra_roots: Sequence[Path] = (),
        load_producer: bool = True,
    ) -> None:
        self.root = root
        self.hooks_dir = hooks_dir
        self.bank_builder = bank_builder
        self.extra_roots = tuple(extra_roots)
        self.load_producer = load_producer
        self._lock = threading.Lock()

    def promote(self, sku: str, images: Sequence[tuple[str, Path]], user: str) -> FeedbackResult:
        """Add ``images`` (``(name, PNG file)``, e.g. archived false-alarm frames) to ``sku``'s golden bank.

        Raises:
            FeedbackError: Nothing to promote, unknown SKU, or no flashed config.

        """
        if not images:
            raise FeedbackError("no image selected")

        def edit(raw: dict[str, Any], base: Path, revision: str, created: list[Path]) -> None:
            entry = _sku_entry(raw, sku)
            roots = default_allowed_roots(base / CONFIG_NAME, self.root, self.extra_roots).data
            try:
                current = confine(str(entry["golden_dir"]), base_dir=base, roots=roots)
            except PathEscapeError as exc:
                raise FeedbackError(f"golden folder of {sku}: {exc}") from None
            rel = Path(GOLDEN_REVISIONS) / sku / revision
            target = base / rel
            # Remember the topmost folder this creates, so a failed flash leaves the bundle as it was.
            created.append(
                next(p for p in (base / rel.parts[0], base / rel.parent, target) if not p.exists())
            )
            target.mkdir(parents=True)
            for image in list_images(current):
                shutil.copy2(image, target / image.name)
            for name, source in images:
                stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
                shutil.copy2(source, target / f"promoted-{stem}{source.suffix}")
            entry["golden_dir"] = rel.as_posix()

        names = ", ".join(name for name, _ in images)
        return self._revise(edit, f"promote {len(images)} image(s) into {sku} golden bank: {names}", user)

    def set_threshold(self, sku: str, threshold: float | None, user: str) -> FeedbackResult:
        """Set ``sku``'s fixed threshold (``None``: calibrate from the golden images again)."""
        if threshold is not None and not threshold > 0:
            raise FeedbackError(f"threshold must be a positive number, got {threshold}")

        def edit(raw: dict[str, Any], base: Path, revision: str, created: list[Path]) -> None:
            entry = _sku_entry(raw, sku)
            if threshold is None:
                entry.pop("threshold", None)
            else:
                entry["threshold"] = float(threshold)

        what = "calibrated" if threshold is None else f"{threshold:g}"
        return self._revise(edit, f"set {sku} threshold to {what}", user)

    def _revise(self, edit: _Edit, change: str, user: str) -> FeedbackResult:
        if not self._lock.acquire(blocking=False):
            return FeedbackResult("refused", "another promotion or threshold change is running")
        try:
            return self._revise_locked(edit, change, user)
        finally:
            self._lock.release()

    def _revise_locked(self, edit: _Edit, change: str, user: str) -> FeedbackResult:
        active = load_active_config(self.root)
        if isinstance(active, SafeMode):
            raise FeedbackError(f"no usable flashed config on this station: {active.reason}")
        raw = yaml.safe_load((active.slot_dir / CONFIG_NAME).read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise FeedbackError("the active config is not a YAML mapping")
        rev = new_revision(active)
        base, revision, config_file = rev.base, rev.revision, rev.config_file
        created: list[Path] = []
        try:
            edit(raw, base, revision, created)
            header = (
                f"# Revision {revision} of {rev.source.name} "
                f"(slot {active.slot}, config {active.config_hash[:12]}),\n"
                f"# made in the review UI by {user}: {change}.\n"
            )
            config_file.write_text(header + yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
            created.append(config_file)
        except BaseException:
            _remove(created)
            raise
        log.info("review: %s by %s -> flashing %s", change, user, config_file)
        result = flash(
            config_file,
            FlashOptions(
                root=self.root,
                hooks_dir=self.hooks_dir,
                by=f"review:{user}",
                extra_roots=self.extra_roots,
                bank_builder=self.bank_builder,
                load_producer=self.load_producer,
            ),
        )
        if not result.ok:
            _remove(created)
        return FeedbackResult(result.result, result.reason, result.flash_id, config_file, list(result.steps))


def _sku_entry(raw: dict[str, Any], sku: str) -> dict[str, Any]:
    for entry in raw.get("skus") or []:
        if isinstance(entry, dict) and entry.get("id") == sku:
            return entry
    raise FeedbackError(f"SKU {sku!r} is not in the active config")


def _remove(paths: Sequence[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
