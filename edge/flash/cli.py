"""``edge flash FILE [--dry-run]``, ``edge flash status``, ``edge flash rollback``, ``edge flash refresh``.

``status``, ``rollback`` and ``refresh`` are words, not files: to flash a file literally named ``status``
write ``./status``. ``refresh`` re-exports and re-flashes the active config after a software update changed
the model (:mod:`edge.flash.refresh`; the ``post-update`` hook).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from edge.config.cli import station_root
from edge.flash.active import ActiveConfig, load_active_config
from edge.flash.flash import FlashOptions, FlashResult, flash
from edge.flash.hooks import ENV_HOOKS_DIR, find_hooks_dir
from edge.flash.interrupted import read_pending
from edge.flash.journal import JOURNAL_NAME, Journal
from edge.flash.rollback import rollback


def hooks_dir(args: argparse.Namespace, root: Path) -> Path | None:
    """``--hooks-dir``, else :func:`edge.flash.hooks.find_hooks_dir`."""
    return find_hooks_dir(root, args.hooks_dir)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``flash`` command."""
    p = subparsers.add_parser(
        "flash",
        help="install a station config safely (A/B slots, hooks, rollback); or status / rollback / refresh",
        description="edge flash FILE | edge flash status | edge flash rollback | edge flash refresh",
    )
    p.add_argument("target", metavar="FILE|status|rollback|refresh")
    p.add_argument(
        "--root", type=Path, help="station root (default $EDGE_STATION_ROOT or /var/lib/edge/station)"
    )
    p.add_argument("--dry-run", action="store_true", help="validate, resolve, build banks and self-test only")
    p.add_argument("--by", help="who flashes (default $USER), recorded in the journal")
    p.add_argument("--hooks-dir", type=Path, help=f"firmware hooks folder (default ${ENV_HOOKS_DIR})")
    p.add_argument("--hook-timeout", type=float, default=60.0, help="seconds per hook (default 60)")
    p.add_argument("--allow", type=Path, action="append", default=[], help="extra allowed data root")
    p.add_argument(
        "--confirm-timeout",
        type=float,
        default=120.0,
        help="seconds a running station has to confirm the new config before rollback (default 120)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Dispatch ``flash`` / ``status`` / ``rollback``."""
    root = station_root(args)
    if args.target == "status":
        return _status(root, args.json)
    if args.target == "refresh":
        from edge.flash.refresh import refresh

        return _report(
            refresh(
                root,
                by=args.by,
                hooks_dir=hooks_dir(args, root),
                hook_timeout_s=args.hook_timeout,
                confirm_timeout_s=args.confirm_timeout,
            ),
            args.json,
        )
    if args.target == "rollback":
        return _report(
            rollback(root, by=args.by, hooks_dir=hooks_dir(args, root), timeout_s=args.hook_timeout),
            args.json,
        )
    options = FlashOptions(
        root=root,
        hooks_dir=hooks_dir(args, root),
        by=args.by,
        dry_run=args.dry_run,
        hook_timeout_s=args.hook_timeout,
        extra_roots=tuple(args.allow),
        confirm_timeout_s=args.confirm_timeout,
    )
    return _report(flash(Path(args.target), options), args.json)


def _report(result: FlashResult, as_json: bool) -> int:
    if as_json:
        print(json.dumps(result.__dict__, default=str))
    else:
        for line in result.capability:
            print(line)
        stream = sys.stdout if result.ok else sys.stderr
        print(f"{result.result}: {result.reason}", file=stream)
    return 0 if result.ok else 1


def _status(root: Path, as_json: bool) -> int:
    active = load_active_config(root)
    records = Journal(root / JOURNAL_NAME).records()
    ends = {r.get("flash_id") for r in records if r.get("phase") == "end"}
    interrupted = [r for r in records if r.get("phase") == "start" and r.get("flash_id") not in ends]
    last = [r for r in records if r.get("phase") == "end"][-5:]
    if isinstance(active, ActiveConfig):
        state = {
            "state": "active",
            "slot": active.slot,
            "config_hash": active.config_hash,
            "station": active.config.topic_root,
            "flashed_at": active.manifest.get("flashed_at"),
            "by": active.manifest.get("by"),
        }
    else:
        state = {"state": "safe_mode", "reason": active.reason}
    state["interrupted_flashes"] = len(interrupted)
    pending = read_pending(root)
    if pending is not None:
        # Settled by the next `edge run`, flash or rollback (edge.flash.interrupted); say so until then.
        state["unfinished_flash"] = (
            f"{pending.get('flash_id') or '?'} (slot {pending.get('slot')}): settled at the next start"
        )
    resolved = [r for r in last if r.get("resolved")]
    if resolved:
        r = resolved[-1]
        state["last_interrupted_flash"] = (
            f"{r.get('flash_id')}: {r.get('result')} at the next start ({r.get('reason')})"
        )
    if as_json:
        print(json.dumps({**state, "recent": last}, default=str))
    else:
        for key, value in state.items():
            print(f"{key}: {value}")
        for r in last:
            print(f"  {r.get('ts')} {r.get('event')} {r.get('result')} by {r.get('by')}: {r.get('reason')}")
    return 0 if isinstance(active, ActiveConfig) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge.flash.cli flash ...`` (same as ``edge flash ...``)."""
    parser = argparse.ArgumentParser(prog="edge")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
