"""A flash that was cut short (power loss, SIGKILL, a reboot mid-flash) is resolved at the next start.

Just before ``current`` is switched, the flash writes ``flash-pending.json`` (durably) with its id and the
two slots; it removes the marker after its journal end record. A marker found later means the flash never
finished, and this rule settles it, under the station lock, before anything else uses the station:

* **``current`` is not the flash's slot** (cut short before the switch, or after its own rollback): the
  station runs what it ran before. Journaled as ``aborted``.
* **``current`` is the flash's slot** (cut short after the switch, before commit): the new config is checked
  the way the flash would have finished it: the slot must verify (manifest, config hash) and the
  ``health-check`` hooks must pass. Then it is ``committed``; otherwise ``current`` goes back to the previous
  slot (``rolled_back``; no previous slot: no active config, the station starts in safe mode) and the
  station is asked to reload.

Either way a journal end record with ``"resolved": "next start"`` closes the flash, so ``edge flash status``
shows how it ended instead of counting it as interrupted forever.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.flash.hooks import HookContext, run_hooks
from edge.flash.journal import Journal, now, who
from edge.flash.reload import request_reload
from edge.flash.slots import SlotError, StationRoot, write_json_durable

log = logging.getLogger(__name__)

PENDING_NAME = "flash-pending.json"


@dataclass(frozen=True)
class Resolution:
    """How an interrupted flash ended."""

    flash_id: str
    result: str  # committed | rolled_back | aborted
    reason: str
    slot: str | None
    previous_slot: str | None


def mark_pending(root: Path, record: dict[str, Any]) -> None:
    """Record, durably, that a flash is about to switch slots (``flash_id``, ``slot``, ``previous_slot``)."""
    write_json_durable(root / PENDING_NAME, {**record, "marked_at": now()})


def clear_pending(root: Path) -> None:
    """The flash finished (whatever its result): nothing is left to resolve."""
    (root / PENDING_NAME).unlink(missing_ok=True)


def read_pending(root: Path) -> dict[str, Any] | None:
    """The marker of an unfinished flash, or ``None``; an unreadable marker is reported as such."""
    path = root / PENDING_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"flash_id": "", "slot": None, "previous_slot": None, "unreadable": str(exc)}
    return data if isinstance(data, dict) else {"flash_id": "", "unreadable": "not a JSON object"}


def resolve_locked(
    root: Path, journal: Journal, hooks_dir: Path | None, timeout_s: float, by: str | None = None
) -> Resolution | None:
    """Settle an unfinished flash by the module's rule; the caller holds the station lock.

    Returns:
        What was decided, or ``None`` when no flash was pending.

    """
    pending = read_pending(root)
    if pending is None:
        return None
    store = StationRoot(root)
    flash_id = str(pending.get("flash_id") or "")
    slot = pending.get("slot")
    previous = pending.get("previous_slot")
    current = store.current_name()
    if slot is None or current != slot:
        result, reason = "aborted", f"interrupted before the switch: slot {current or 'none'} still active"
    else:
        problem = _check(store, str(slot), str(previous or ""), hooks_dir, timeout_s, by)
        if problem is None:
            result, reason = (
                "committed",
                f"interrupted after the switch; slot {slot} verified and health-checked",
            )
        else:
            store.activate(previous)
            request_reload(
                root,
                config_hash="",
                slot=previous,
                flash_id=flash_id,
                reason="interrupted flash rolled back",
            )
            result = "rolled_back"
            reason = f"interrupted after the switch; {problem}; back to slot {previous or 'none'}"
    journal.append(
        {
            "event": "flash",
            "phase": "end",
            "flash_id": flash_id,
            "by": who(by),
            "result": result,
            "reason": reason,
            "slot": slot,
            "previous_slot": previous,
            "resolved": "next start",
        }
    )
    clear_pending(root)
    log.warning("flash %s had not finished: %s (%s)", flash_id or "?", result, reason)
    return Resolution(flash_id, result, reason, slot, previous)


def _check(
    store: StationRoot, slot: str, previous: str, hooks_dir: Path | None, timeout_s: float, by: str | None
) -> str | None:
    """``None`` when ``slot`` verifies and its health-check hooks pass; else what failed."""
    try:
        info = store.verify(slot)
    except SlotError as exc:
        return f"slot {slot} does not verify: {exc}"
    context = HookContext(
        station_id=str(info.manifest.get("station_id", "")),
        config_path=str(info.config_path),
        slot=slot,
        previous_slot=previous,
        artifact_dir=str(info.manifest.get("artifact_dir", "")),
        reason=f"interrupted flash resolved by {who(by)}",
        station_root=str(store.root),
        config_hash=info.config_hash,
    )
    report = run_hooks("health-check", hooks_dir, context, timeout_s=timeout_s)
    return None if report.ok else f"health-check failed: {report.failure()}"
