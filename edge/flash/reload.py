"""Tell a running station that a new config is active.

Mechanism (docs/config.md): the flash writes ``<root>/run/reload-request.json`` atomically (config hash, slot,
flash id) and, when ``<root>/run/station.pid`` names a live process, sends it ``SIGHUP``. The runtime reloads
``<root>/current`` on SIGHUP (or when it sees a new request file at its next poll) and publishes the new
config id/hash on its ``state`` topic. A station that is not running simply picks up ``current`` at boot.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from edge.flash.journal import now
from edge.flash.slots import write_json_durable

RUN_DIR = "run"
PID_FILE = "station.pid"
REQUEST_FILE = "reload-request.json"


def request_reload(root: Path, *, config_hash: str, slot: str | None, flash_id: str, reason: str) -> str:
    """Write the reload request and signal the station if it runs; returns what was done (for the journal)."""
    run = root / RUN_DIR
    run.mkdir(parents=True, exist_ok=True)
    write_json_durable(
        run / REQUEST_FILE,
        {
            "config_hash": config_hash,
            "slot": slot,
            "flash_id": flash_id,
            "reason": reason,
            "requested_at": now(),
        },
    )
    pid = running_station_pid(root)
    if pid is None:
        return "reload request written; no running station"
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return f"reload request written; station pid {pid} is gone"
    except PermissionError:
        return f"reload request written; not allowed to signal pid {pid}"
    return f"reload request written; SIGHUP sent to station pid {pid}"


def running_station_pid(root: Path) -> int | None:
    """PID from ``run/station.pid`` if that process is alive."""
    try:
        pid = int((root / RUN_DIR / PID_FILE).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    if pid <= 1:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid
