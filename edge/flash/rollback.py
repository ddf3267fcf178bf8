"""Back to the other slot (``edge flash rollback``), and settling a flash that was cut short.

Both take the station lock, so they never run beside a flash; both run the ``health-check`` hooks the flash
runs (:mod:`edge.flash.hooks`).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from edge.flash.flash import FlashResult
from edge.flash.hooks import HookContext, run_hooks
from edge.flash.interrupted import PENDING_NAME, Resolution, resolve_locked
from edge.flash.journal import JOURNAL_NAME, Journal, who
from edge.flash.lock import FlashError, station_lock
from edge.flash.reload import request_reload
from edge.flash.slots import SlotError, StationRoot


def resolve_interrupted(
    root: Path, *, hooks_dir: Path | None = None, timeout_s: float = 60.0, by: str | None = None
) -> Resolution | None:
    """Settle a flash that was cut short (see :mod:`edge.flash.interrupted`); ``None``: nothing pending.

    Run by the station at boot and before every flash or rollback. While another flash holds the station
    lock it is that flash's business: nothing is done.
    """
    if not (root / PENDING_NAME).exists():
        return None
    try:
        with station_lock(root):
            return resolve_locked(root, Journal(root / JOURNAL_NAME), hooks_dir, timeout_s, by)
    except FlashError:
        return None


def rollback(
    root: Path, *, by: str | None = None, hooks_dir: Path | None = None, timeout_s: float = 60.0
) -> FlashResult:
    """Switch back to the other slot, if it holds a complete config, and ask the station to reload.

    Hooks: ``health-check`` runs after the switch; if it fails the switch is undone.
    """
    result = FlashResult(flash_id=uuid.uuid4().hex[:12], result="aborted")
    store = StationRoot(root)
    journal = Journal(root / JOURNAL_NAME)
    try:
        with station_lock(root):
            resolve_locked(root, journal, hooks_dir, timeout_s, by)
            current = store.current_name()
            other = "b" if current == "a" else "a"
            result.previous_slot, result.slot = current, other
            try:
                if current is None:
                    raise SlotError("nothing was ever flashed on this station")
                if not store.slot_path(other).exists():
                    raise SlotError(f"only one config was ever flashed here (slot {current})")
                info = store.verify(other)
            except SlotError as exc:
                result.reason = f"nothing to roll back to: {exc}"
            else:
                store.activate(other)
                result.config_hash = info.config_hash
                request_reload(
                    root,
                    config_hash=info.config_hash,
                    slot=other,
                    flash_id=result.flash_id,
                    reason="rollback",
                )
                context = HookContext(
                    station_id=str(info.manifest.get("station_id", "")),
                    config_path=str(info.config_path),
                    slot=other,
                    previous_slot=current or "",
                    artifact_dir=str(info.manifest.get("artifact_dir", "")),
                    reason=f"rollback by {who(by)}",
                    station_root=str(root),
                    config_hash=info.config_hash,
                )
                report = run_hooks("health-check", hooks_dir, context, timeout_s=timeout_s)
                if report.ok:
                    result.result, result.reason = "committed", f"slot {other} active"
                else:
                    store.activate(current)
                    request_reload(
                        root, config_hash="", slot=current, flash_id=result.flash_id, reason="undo rollback"
                    )
                    result.reason = (
                        f"health-check failed after rollback, slot {current} restored: {report.failure()}"
                    )
            journal.append(
                {
                    "event": "rollback",
                    "phase": "end",
                    "flash_id": result.flash_id,
                    "by": who(by),
                    "result": result.result,
                    "reason": result.reason,
                    "slot": result.slot,
                    "previous_slot": result.previous_slot,
                    "config_hash": result.config_hash,
                }
            )
    except FlashError as exc:
        result.reason = str(exc)
    return result
