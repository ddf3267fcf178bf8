"""A flash cut short after the slot switch is settled at the next start: committed or rolled back."""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable
from pathlib import Path

from edge.flash.active import ActiveConfig, load_active_config
from edge.flash.cli import main as flash_main
from edge.flash.flash import FlashOptions, flash
from edge.flash.interrupted import PENDING_NAME, mark_pending, read_pending
from edge.flash.journal import Journal
from edge.flash.rollback import resolve_interrupted
from flash.flash_helpers import standin_builder, variant

AddHook = Callable[[str, str, str], Path]


def _flash_killed_after_switch(config: Path, root: Path, hooks_dir: Path) -> None:
    """Run a flash in a child process whose post-flash hook SIGKILLs it (power loss after the switch)."""

    def child() -> None:
        flash(config, FlashOptions(root=root, hooks_dir=hooks_dir, bank_builder=standin_builder()))

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join(60)
    assert proc.exitcode == -signal.SIGKILL, f"the flash was not cut short (exit code {proc.exitcode})"


def _two_configs(bundle: Path, root: Path) -> tuple[Path, str]:
    """Flash an old config (committed); return a new config and the old config's slot."""
    old = flash(bundle, FlashOptions(root=root, bank_builder=standin_builder()))
    assert old.ok, old.reason
    assert old.slot is not None
    return variant(bundle, "new.yaml", station={"id": "st2"}), old.slot


def test_cut_short_after_the_switch_then_health_checked_and_committed(
    bundle: Path, root: Path, hooks: AddHook, tmp_path: Path, capsys: object
) -> None:
    new, old_slot = _two_configs(bundle, root)
    kill_hooks = hooks("post-flash", "10-power-loss", "kill -9 $PPID\nsleep 5\n")
    _flash_killed_after_switch(new, root, kill_hooks)
    pending = read_pending(root)
    assert pending is not None and pending["previous_slot"] == old_slot
    assert flash_main(["flash", "status", "--root", str(root)]) == 0
    assert "settled at the next start" in capsys.readouterr().out  # type: ignore[attr-defined]

    healthy = tmp_path / "healthy-hooks"
    (healthy / "health-check.d").mkdir(parents=True)
    resolution = resolve_interrupted(root, hooks_dir=healthy)
    assert resolution is not None and resolution.result == "committed", resolution
    active = load_active_config(root)
    assert isinstance(active, ActiveConfig) and active.config.station.id == "st2"
    assert not (root / PENDING_NAME).exists()
    end = Journal(root / "journal.jsonl").records()[-1]
    assert (end["phase"], end["result"], end["resolved"]) == ("end", "committed", "next start")
    assert resolve_interrupted(root) is None  # settled once


def test_cut_short_after_the_switch_then_failing_its_health_check_is_rolled_back(
    bundle: Path, root: Path, hooks: AddHook
) -> None:
    new, old_slot = _two_configs(bundle, root)
    folder = hooks("post-flash", "10-power-loss", "kill -9 $PPID\nsleep 5\n")
    hooks("health-check", "10-camera", "echo 'camera not answering' >&2\nexit 1\n")
    _flash_killed_after_switch(new, root, folder)
    # The next flash (or `edge run`) settles it first: the station must not keep an unchecked config.
    resolution = resolve_interrupted(root, hooks_dir=folder)
    assert resolution is not None and resolution.result == "rolled_back", resolution
    assert "camera not answering" in resolution.reason
    active = load_active_config(root)
    assert isinstance(active, ActiveConfig) and active.slot == old_slot
    assert active.config.station.id == "st1"


def test_cut_short_before_the_switch_is_aborted_and_nothing_changes(bundle: Path, root: Path) -> None:
    new, old_slot = _two_configs(bundle, root)
    mark_pending(
        root, {"flash_id": "deadbeef0000", "slot": "b" if old_slot == "a" else "a", "previous_slot": old_slot}
    )
    # Settled by the next flash, which then runs as usual.
    result = flash(new, FlashOptions(root=root, bank_builder=standin_builder()))
    assert result.ok, result.reason
    ends = [r for r in Journal(root / "journal.jsonl").records() if r.get("flash_id") == "deadbeef0000"]
    assert [r["result"] for r in ends] == ["aborted"]
    assert not (root / PENDING_NAME).exists()
