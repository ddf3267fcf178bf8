"""The flash journal: one JSON object per line, appended and fsync'd, never rewritten.

A record is written when a flash starts and another when it ends, sharing a ``flash_id``; a start without an
end is a flash that was interrupted (power cut, SIGKILL). A torn last line is skipped when reading.
"""

from __future__ import annotations

import getpass
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

#: The journal file in the station root.
JOURNAL_NAME = "journal.jsonl"


def who(by: str | None = None) -> str:
    """Who is flashing: ``--by``, else ``$USER``, else the login name."""
    if by:
        return by
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def now() -> str:
    """UTC timestamp, ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Journal:
    """Append-only JSON-lines log of flashes and rollbacks."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict[str, Any]) -> None:
        """Append one record durably (``O_APPEND`` + fsync)."""
        line = json.dumps({"ts": now(), **record}, sort_keys=True, default=str) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> list[dict[str, Any]]:
        """Every readable record, oldest first."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # torn write of an interrupted flash
            if isinstance(record, dict):
                out.append(record)
        return out
