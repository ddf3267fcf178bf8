"""Reload requests: SIGHUP (sent by ``edge flash``), a new ``run/reload-request.json``, or ``cmd/reload``.

The station's main loop waits on :class:`ReloadRequests`; a reload re-reads the config and, only when it is
valid and its banks load, restarts the pipeline with it. Otherwise the station keeps running the last good
config and says why in its log (see ``docs/runtime.md``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

from edge.flash.reload import PID_FILE, REQUEST_FILE, RUN_DIR, read_reload_request, write_station_status

log = logging.getLogger(__name__)


class ReloadRequests:
    """Collects reload requests from any thread; optionally polls the flash request file.

    Args:
        request_file: ``<root>/run/reload-request.json`` to watch (``None``: no file).

    """

    def __init__(self, request_file: Path | None = None) -> None:
        self.request_file = request_file
        self._event = threading.Event()
        self._reason = ""
        self._lock = threading.Lock()
        self._seen = self._stamp()

    def _stamp(self) -> int | None:
        if self.request_file is None:
            return None
        try:
            return self.request_file.stat().st_mtime_ns
        except OSError:
            return None

    def request(self, reason: str) -> None:
        """Ask for a reload (signal handlers, command handlers)."""
        with self._lock:
            self._reason = reason
        self._event.set()

    def poll(self) -> None:
        """Turn a new request file into a request."""
        stamp = self._stamp()
        if stamp is not None and stamp != self._seen:
            self._seen = stamp
            self.request(f"request file {self.request_file}")

    def take(self) -> str | None:
        """Return the pending request's reason (clearing it), or ``None``."""
        self.poll()
        if not self._event.is_set():
            return None
        with self._lock:
            self._event.clear()
            return self._reason


def write_pid_file(root: Path) -> Path:
    """Write ``<root>/run/station.pid`` so ``edge flash`` can signal this process."""
    run = root / RUN_DIR
    run.mkdir(parents=True, exist_ok=True)
    path = run / PID_FILE
    path.write_text(f"{os.getpid()}\n", encoding="ascii")
    return path


def remove_pid_file(path: Path) -> None:
    """Remove the pid file if it is still ours."""
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text(encoding="ascii").strip()) == os.getpid():
            path.unlink()


def request_file(root: Path) -> Path:
    """Where ``edge flash`` writes its reload request."""
    return root / RUN_DIR / REQUEST_FILE


class StatusRecord:
    """What the station runs, recorded for ``edge flash`` (which waits for it to confirm a new config).

    Args:
        root: The station root.

    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.request_id: str | None = None  # flash id of the last reload request acted on

    def note_request(self) -> None:
        """Remember which flash's reload request the station acts on (echoed in its status record)."""
        request = read_reload_request(self.root)
        self.request_id = str(request.get("flash_id")) if request else None

    def write(self, status: str, **fields: Any) -> None:
        """Record ``status`` and ``fields`` (a failed write is logged, never raised)."""
        try:
            write_station_status(self.root, {"status": status, "request": self.request_id, **fields})
        except OSError as exc:  # the flash then times out and rolls back; the line keeps running
            log.error("cannot write the station status record: %s", exc)
