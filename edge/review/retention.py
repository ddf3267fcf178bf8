"""Archive retention: drop parts older than the retention period, keep under the quota, never fill the disk.

Everything is decided from the index (bytes per part) plus one ``statvfs`` of the file system; nothing walks
the archive tree except :func:`reconcile`, which runs once at start to clean up after a crash.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from edge.review.index import INDEX_NAME, ArchiveIndex
from edge.review.records import PartRecord

log = logging.getLogger(__name__)

INDEX_HEADROOM_BYTES = 512 * 1024
"""Kept free inside the quota for the index database and its write-ahead log to grow."""

DEFAULT_MIN_FREE_FRACTION = 0.05
"""Free space the archive always leaves on its file system (fraction of the file system's size)."""


@dataclass(frozen=True)
class RetentionPolicy:
    """Limits of an archive.

    Attributes:
        max_age_s: Parts archived longer ago than this are deleted.
        quota_bytes: Upper bound of the archive (part files plus the index database and its WAL).
        min_free_bytes: Free space always left on the file system; ``None``: 5 % of its size.

    """

    max_age_s: float
    quota_bytes: int
    min_free_bytes: int | None = None

    @classmethod
    def from_storage(cls, retention_days: int, quota_mb: int) -> RetentionPolicy:
        """Build from the config's ``storage`` section values."""
        return cls(max_age_s=retention_days * 86400.0, quota_bytes=quota_mb * 1024 * 1024)


@dataclass
class RetentionStats:
    """What retention did so far."""

    deleted_age: int = 0
    deleted_quota: int = 0
    deleted_disk: int = 0
    refused: int = 0  # entries not archived: no room even after deleting everything older


class Retention:
    """Applies a :class:`RetentionPolicy` to one archive folder and its index.

    Args:
        root: Archive folder (part folders and ``index.db``).
        index: Its index.
        policy: The limits.

    """

    def __init__(self, root: Path, index: ArchiveIndex, policy: RetentionPolicy) -> None:
        self.root = root
        self.index = index
        self.policy = policy
        self.stats = RetentionStats()
        min_free = policy.min_free_bytes
        if min_free is None:
            min_free = int(shutil.disk_usage(root).total * DEFAULT_MIN_FREE_FRACTION)
        self.min_free_bytes = min_free

    def used_bytes(self) -> int:
        """Archive size: part files (from the index) plus the index database and its WAL."""
        db = sum(p.stat().st_size for p in self.root.glob(f"{INDEX_NAME}*") if p.is_file())
        return self.index.total_bytes() + db

    def expire(self, now: float | None = None) -> int:
        """Delete parts older than the retention period; returns how many."""
        cutoff = (time.time() if now is None else now) - self.policy.max_age_s
        deleted = 0
        while batch := self.index.older_than(cutoff):
            for part in batch:
                self.delete(part)
                deleted += 1
        self.stats.deleted_age += deleted
        return deleted

    def make_room(self, incoming: int) -> bool:
        """Delete oldest parts until ``incoming`` more bytes fit the quota and the disk keeps its reserve.

        Returns:
            ``False`` when even an empty archive could not take ``incoming`` bytes (skip the entry).

        """
        while True:
            over_quota = self.used_bytes() + incoming + INDEX_HEADROOM_BYTES > self.policy.quota_bytes
            low_disk = shutil.disk_usage(self.root).free - incoming < self.min_free_bytes
            if not (over_quota or low_disk):
                return True
            oldest = self.index.oldest(limit=8)
            if not oldest:
                self.stats.refused += 1
                return False
            for part in oldest:
                self.delete(part)
                if over_quota:
                    self.stats.deleted_quota += 1
                else:
                    self.stats.deleted_disk += 1

    def delete(self, part: PartRecord) -> None:
        """Delete a part's files, then its index row (a crash in between leaves a row to reconcile)."""
        if part.dir:
            folder = (self.root / part.dir).resolve()
            if folder.is_relative_to(self.root.resolve()) and folder != self.root.resolve():
                shutil.rmtree(folder, ignore_errors=True)
        self.index.remove_part(part.part_id)

    def reconcile(self) -> tuple[int, int]:
        """After a crash: drop index rows whose folder is gone and folders the index does not know.

        Returns:
            ``(rows dropped, folders deleted)``.

        """
        rows = 0
        for part in self.index.parts(limit=10_000_000):
            if part.dir and not (self.root / part.dir).is_dir():
                self.index.remove_part(part.part_id)
                rows += 1
        known = self.index.part_dirs()
        folders = 0
        parts_root = self.root / "parts"
        if parts_root.is_dir():
            for day in parts_root.iterdir():
                if not day.is_dir():
                    continue
                for folder in day.iterdir():
                    rel = folder.relative_to(self.root).as_posix()
                    if rel not in known:
                        shutil.rmtree(folder, ignore_errors=True)
                        folders += 1
                if not any(day.iterdir()):
                    day.rmdir()
        if rows or folders:
            log.warning(
                "archive reconciled: %d index row(s) without files, %d orphan folder(s)", rows, folders
            )
        return rows, folders
