"""Tell a running station that a new config is active, and hear back what it did.

Mechanism (docs/config.md): the flash writes ``<root>/run/reload-request.json`` atomically (config hash, slot,
flash id) and, when ``<root>/run/station.pid`` names a live process, sends it ``SIGHUP``. The runtime reloads
``<root>/current`` on SIGHUP (or when it sees a new request file at its next poll), publishes the new
config id/hash on its ``state`` topic, and records the outcome in ``<root>/run/station-status.json``: its
status (``online`` / ``safe_mode``), the config hash it runs, the id of the last request it acted on and, when
it refused a reload, why. The flash waits for that record before it commits. A station that is not running
simply picks up ``current`` at boot.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.flash.journal import now
from edge.flash.slots import write_json_durable

RUN_DIR = "run"
PID_FILE = "station.pid"
REQUEST_FILE = "reload-request.json"
STATUS_FILE = "station-status.json"


@dataclass(frozen=True)
class ReloadRequest:
    """What :func:`request_reload` did.

    Attributes:
        detail: One line for the journal.
        signalled_pid: The running station that was sent ``SIGHUP`` (``None``: no station was signalled).

    """

    detail: str
    signalled_pid: int | None = None


def request_reload(
    root: Path, *, config_hash: str, slot: str | None, flash_id: str, reason: str
) -> ReloadRequest:
    """Write the reload request and signal the station if it runs; returns what was done."""
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
        return ReloadRequest("reload request written; no running station")
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return ReloadRequest(f"reload request written; station pid {pid} is gone")
    except PermissionError:
        return ReloadRequest(f"reload request written; not allowed to signal pid {pid}")
    return ReloadRequest(f"reload request written; SIGHUP sent to station pid {pid}", pid)


def read_reload_request(root: Path) -> dict[str, Any] | None:
    """The last reload request (``None`` if there is none or it is unreadable)."""
    return _read_json(root / RUN_DIR / REQUEST_FILE)


def write_station_status(root: Path, status: Mapping[str, Any]) -> None:
    """Record what the running station does now (written by the runtime; atomically, durably)."""
    run = root / RUN_DIR
    run.mkdir(parents=True, exist_ok=True)
    write_json_durable(run / STATUS_FILE, {**status, "pid": os.getpid(), "at": now()})


def read_station_status(root: Path) -> dict[str, Any] | None:
    """The running station's last status record (``None`` if there is none or it is unreadable)."""
    return _read_json(root / RUN_DIR / STATUS_FILE)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def station_outcome(
    root: Path, *, flash_id: str, config_hash: str, pid: int, timeout_s: float, poll_s: float = 0.1
) -> str | None:
    """Wait until the station ``pid`` acted on request ``flash_id``; ``None`` if it runs ``config_hash``.

    Returns:
        ``None`` when the station reports ``online`` with ``config_hash``; otherwise why not (it refused the
        config, could not start it, died, or did not answer within ``timeout_s``).

    """
    deadline = time.monotonic() + timeout_s
    while True:
        status = read_station_status(root)
        if status is not None and status.get("pid") == pid and status.get("request") == flash_id:
            if status.get("status") == "online" and status.get("config_hash") == config_hash:
                return None
            if status.get("refused"):
                return f"the station refused the new config and keeps the previous one: {status['refused']}"
            if status.get("status") == "safe_mode":
                return f"the station cannot run the new config (safe mode): {status.get('reason')}"
        if running_station_pid(root) != pid:
            return f"the station (pid {pid}) stopped before it confirmed the new config"
        if time.monotonic() >= deadline:
            return f"the station did not confirm the new config within {timeout_s:g} s"
        time.sleep(poll_s)


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
