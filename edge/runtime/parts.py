"""Part identity: a station-unique, monotonic sequence number that survives restarts.

The part record itself (:class:`edge.capture.part.Part`) sits lower, beside the frame, because the review
and the archive, below the runtime, handle parts too.

Sequence numbers are reserved on disk in blocks (one small fsynced write per ``block`` parts, not one per
part): at start the station reads the high-water mark, reserves the next block and hands out numbers from it.
A crash therefore skips at most one block but never reuses a number, so ``part_id`` stays unique and ``seq``
keeps increasing across restarts, as the MQTT contract promises subscribers that de-duplicate by it.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

DEFAULT_BLOCK = 1000


class PartIds:
    """Allocates ``(seq, part_id)`` pairs; thread-safe.

    Args:
        prefix: Start of generated part ids (the station id): ``<prefix>-<seq, 9 digits>``.
        path: JSON file holding the reserved high-water mark; ``None`` keeps numbers in memory (tests).
        block: Numbers reserved per disk write.

    """

    def __init__(self, prefix: str, path: Path | None = None, block: int = DEFAULT_BLOCK) -> None:
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.prefix = prefix
        self.path = path
        self.block = block
        self._lock = threading.Lock()
        self._next = self._read_mark()
        self._reserved_until = self._next  # exclusive; the first allocation reserves a block

    def _read_mark(self) -> int:
        if self.path is None or not self.path.exists():
            return 1
        try:
            value = json.loads(self.path.read_text(encoding="utf-8"))["next"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"part counter {self.path} is unreadable: {exc}") from exc
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"part counter {self.path}: 'next' must be a positive integer, got {value!r}")
        return value

    def _reserve(self, until: int) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            with tmp.open("w", encoding="utf-8") as handle:
                json.dump({"next": until}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(self.path)
        self._reserved_until = until

    @property
    def next_seq(self) -> int:
        """The number the next allocation returns."""
        with self._lock:
            return self._next

    def allocate(self, part_id: str | None = None) -> tuple[int, str]:
        """Return the next ``(seq, part_id)``; ``part_id`` given (e.g. by the PLC) is kept as is."""
        with self._lock:
            seq = self._next
            if seq >= self._reserved_until:
                self._reserve(seq + self.block)
            self._next += 1
        return seq, part_id or f"{self.prefix}-{seq:09d}"
