"""One flash or rollback at a time per station: an exclusive lock on the station root, and the step error."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = "flash.lock"


class FlashError(Exception):
    """A flash step failed; ``step`` names it."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


@contextlib.contextmanager
def station_lock(root: Path) -> Iterator[None]:
    """Exclusive lock on the station root; released by the kernel if the process dies."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FlashError("lock", "another flash or rollback is running on this station") from None
        yield
    finally:
        os.close(fd)
