"""The archive index: one SQLite database (WAL) listing every archived part, its files and its dispositions.

The runtime's archive writer adds parts and removes them (retention); the review UI reads parts, records
dispositions and promotions. Files are named by the index (a folder relative to the archive root plus a
file name per image kind), never by a request, so the UI can only serve what the index lists.

Dispositions are kept when retention removes a part (they carry the part's SKU and verdict), so per-SKU
false-alarm and escape statistics outlive the images.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edge.review.records import (
    DISPOSITIONS,
    Disposition,
    DispositionRecord,
    PartFilter,
    PartRecord,
    PromotionRecord,
    SkuStats,
)

# The archive writer (edge.runtime.archive) and retention import the record type with the index.
__all__ = ["INDEX_NAME", "ArchiveIndex", "PartRecord"]

INDEX_NAME = "index.db"
WAL_LIMIT_BYTES = 256 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS parts (
    part_id     TEXT PRIMARY KEY,
    seq         INTEGER,
    sku         TEXT,
    verdict     TEXT NOT NULL,
    score       REAL,
    threshold   REAL,
    boxes       TEXT NOT NULL DEFAULT '[]',
    template_id TEXT,
    model_id    TEXT,
    backend     TEXT,
    config_id   TEXT,
    config_hash TEXT,
    reason      TEXT,
    frame_ts    REAL,
    archived_at REAL NOT NULL,
    dir         TEXT,
    files       TEXT NOT NULL DEFAULT '{}',
    bytes       INTEGER NOT NULL DEFAULT 0,
    width       INTEGER,
    height      INTEGER,
    cut_short   TEXT
);
CREATE INDEX IF NOT EXISTS parts_by_time ON parts (archived_at);
CREATE INDEX IF NOT EXISTS parts_by_sku ON parts (sku, archived_at);
CREATE TABLE IF NOT EXISTS dispositions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    part_id       TEXT NOT NULL,
    sku           TEXT,
    verdict       TEXT NOT NULL,
    disposition   TEXT NOT NULL,
    defect_class  TEXT,
    comment       TEXT NOT NULL DEFAULT '',
    user          TEXT NOT NULL,
    at            REAL NOT NULL,
    published     INTEGER NOT NULL DEFAULT 0,
    publish_error TEXT
);
CREATE INDEX IF NOT EXISTS dispositions_by_part ON dispositions (part_id, id);
CREATE TABLE IF NOT EXISTS promotions (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    kind     TEXT NOT NULL,
    sku      TEXT NOT NULL,
    part_ids TEXT NOT NULL DEFAULT '[]',
    detail   TEXT NOT NULL DEFAULT '',
    user     TEXT NOT NULL,
    at       REAL NOT NULL,
    result   TEXT NOT NULL,
    reason   TEXT NOT NULL DEFAULT '',
    flash_id TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS promoted_parts (
    part_id      TEXT PRIMARY KEY,
    promotion_id INTEGER NOT NULL
);
"""

# The latest disposition of a part decides its state (an operator may correct a mistake).
_LATEST = "(SELECT MAX(id) FROM dispositions GROUP BY part_id)"


_PART_COLUMNS = (
    "part_id", "seq", "sku", "verdict", "score", "threshold", "boxes", "template_id", "model_id", "backend",
    "config_id", "config_hash", "reason", "frame_ts", "archived_at", "dir", "files", "bytes", "width",
    "height", "cut_short",
)  # fmt: skip

_ADDED_COLUMNS = {"cut_short": "TEXT"}
"""Part columns newer than the first index format: added in place to an older index when it is opened."""

_FROM = f"FROM parts p LEFT JOIN dispositions d ON d.part_id = p.part_id AND d.id IN {_LATEST}"

_SELECT = f"""
SELECT {", ".join("p." + c for c in _PART_COLUMNS)},
       d.disposition, d.defect_class, d.comment, d.user, pp.part_id IS NOT NULL
FROM parts p
LEFT JOIN dispositions d ON d.part_id = p.part_id AND d.id IN {_LATEST}
LEFT JOIN promoted_parts pp ON pp.part_id = p.part_id
"""


class ArchiveIndex:
    """The SQLite index of an archive folder; thread-safe (one connection behind a lock).

    Several processes or objects may open the same database (WAL: readers never block the writer).

    Args:
        path: The database file (usually ``<archive>/index.db``).

    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a power cut may lose the last transactions but never corrupts the index; the
        # archive is a review aid, verdicts themselves are made durable by the MQTT outbox.
        self._db.execute("PRAGMA synchronous=NORMAL")
        # Keep the WAL small (it counts against the archive quota): checkpoint every 64 pages.
        self._db.execute("PRAGMA wal_autocheckpoint=64")
        self._db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._db.executescript(_SCHEMA)  # idempotent; executescript manages its own transaction
            present = {row[1] for row in self._db.execute("PRAGMA table_info(parts)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column not in present:  # an index written by an older station: rows keep NULL
                    self._db.execute(f"ALTER TABLE parts ADD COLUMN {column} {kind}")

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    # -- parts -------------------------------------------------------------------------------------------

    def add_part(self, record: PartRecord) -> None:
        """Insert (or replace: a part id archived again) one part."""
        values = [getattr(record, c) for c in _PART_COLUMNS]
        values[_PART_COLUMNS.index("boxes")] = json.dumps(record.boxes)
        values[_PART_COLUMNS.index("files")] = json.dumps(record.files)
        marks = ", ".join("?" for _ in _PART_COLUMNS)
        with self._tx() as db:
            db.execute(f"INSERT OR REPLACE INTO parts ({', '.join(_PART_COLUMNS)}) VALUES ({marks})", values)

    def remove_part(self, part_id: str) -> None:
        """Forget a part (its dispositions stay, for the statistics)."""
        with self._tx() as db:
            db.execute("DELETE FROM parts WHERE part_id = ?", (part_id,))

    def part(self, part_id: str) -> PartRecord | None:
        """The part with this id, with its latest disposition; ``None`` when not archived."""
        rows = self._query(_SELECT + " WHERE p.part_id = ?", (part_id,))
        return _record(rows[0]) if rows else None

    def parts(self, where: PartFilter | None = None, *, limit: int = 50, offset: int = 0) -> list[PartRecord]:
        """Archived parts matching ``where``, newest first."""
        cond, params = (where or PartFilter()).where()
        rows = self._query(
            _SELECT + f" WHERE {cond} ORDER BY p.archived_at DESC, p.part_id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_record(r) for r in rows]

    def count(self, where: PartFilter | None = None) -> int:
        """Number of archived parts matching ``where``."""
        cond, params = (where or PartFilter()).where()
        return int(self._query(f"SELECT COUNT(*) {_FROM} WHERE {cond}", params)[0][0])

    def neighbours(self, part_id: str, where: PartFilter | None = None) -> tuple[str | None, str | None]:
        """``(newer, older)`` part ids next to ``part_id`` in the filtered, newest-first list."""
        current = self.part(part_id)
        if current is None:
            return None, None
        cond, params = (where or PartFilter()).where()
        at, pid = current.archived_at, current.part_id
        base = f"SELECT p.part_id {_FROM} WHERE {cond} AND "
        newer = self._query(
            base + "(p.archived_at > ? OR (p.archived_at = ? AND p.part_id > ?)) "
            "ORDER BY p.archived_at, p.part_id LIMIT 1",
            [*params, at, at, pid],
        )
        older = self._query(
            base + "(p.archived_at < ? OR (p.archived_at = ? AND p.part_id < ?)) "
            "ORDER BY p.archived_at DESC, p.part_id DESC LIMIT 1",
            [*params, at, at, pid],
        )
        return (newer[0][0] if newer else None), (older[0][0] if older else None)

    def oldest(self, limit: int = 32) -> list[PartRecord]:
        """The oldest archived parts (retention deletes these first)."""
        rows = self._query(_SELECT + " ORDER BY p.archived_at, p.part_id LIMIT ?", (limit,))
        return [_record(r) for r in rows]

    def older_than(self, cutoff: float, limit: int = 256) -> list[PartRecord]:
        """Parts archived before ``cutoff`` (epoch seconds), oldest first."""
        rows = self._query(
            _SELECT + " WHERE p.archived_at < ? ORDER BY p.archived_at, p.part_id LIMIT ?", (cutoff, limit)
        )
        return [_record(r) for r in rows]

    def total_bytes(self) -> int:
        """Disk space of every archived part's files."""
        return int(self._query("SELECT COALESCE(SUM(bytes), 0) FROM parts")[0][0])

    def part_dirs(self) -> set[str]:
        """Image folders the index refers to (to find orphans after a crash)."""
        return {r[0] for r in self._query("SELECT dir FROM parts WHERE dir IS NOT NULL")}

    def skus(self) -> list[str]:
        """SKUs with archived parts or dispositions."""
        rows = self._query(
            "SELECT sku FROM parts WHERE sku IS NOT NULL "
            "UNION SELECT sku FROM dispositions WHERE sku IS NOT NULL"
        )
        return sorted(r[0] for r in rows)

    # -- dispositions ------------------------------------------------------------------------------------

    def add_disposition(
        self,
        part_id: str,
        disposition: Disposition,
        user: str,
        *,
        defect_class: str | None = None,
        comment: str = "",
        at: float | None = None,
    ) -> DispositionRecord:
        """Store an operator's disposition of an archived part.

        Raises:
            KeyError: The part is not archived.
            ValueError: Unknown disposition.

        """
        if disposition not in DISPOSITIONS:
            raise ValueError(
                f"unknown disposition {disposition!r}; expected one of {', '.join(DISPOSITIONS)}"
            )
        when = time.time() if at is None else at
        with self._tx() as db:
            row = db.execute("SELECT sku, verdict FROM parts WHERE part_id = ?", (part_id,)).fetchone()
            if row is None:
                raise KeyError(part_id)
            cur = db.execute(
                "INSERT INTO dispositions"
                " (part_id, sku, verdict, disposition, defect_class, comment, user, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (part_id, row[0], row[1], disposition, defect_class, comment, user, when),
            )
            new_id = int(cur.lastrowid or 0)
        return DispositionRecord(
            new_id, part_id, row[0], row[1], disposition, defect_class, comment, user, when, False, None
        )

    def mark_published(self, disposition_id: int, error: str | None = None) -> None:
        """Record whether the disposition reached the MQTT outbox (``error``: why not)."""
        with self._tx() as db:
            db.execute(
                "UPDATE dispositions SET published = ?, publish_error = ? WHERE id = ?",
                (0 if error else 1, error, disposition_id),
            )

    def unpublished(self) -> list[DispositionRecord]:
        """Dispositions not handed to MQTT yet (e.g. the outbox was full), oldest first."""
        rows = self._query("SELECT * FROM dispositions WHERE published = 0 ORDER BY id")
        return [_disposition(r) for r in rows]

    def dispositions(self, part_id: str) -> list[DispositionRecord]:
        """Every disposition of a part, oldest first (the history shown on the detail page)."""
        rows = self._query("SELECT * FROM dispositions WHERE part_id = ? ORDER BY id", (part_id,))
        return [_disposition(r) for r in rows]

    def promotable(self, sku: str) -> list[PartRecord]:
        """Archived NG parts of ``sku`` marked false alarm, with a frame, not promoted yet."""
        rows = self._query(
            _SELECT + " WHERE p.sku = ? AND p.verdict = 'NG' AND d.disposition = 'false_alarm' "
            "AND pp.part_id IS NULL ORDER BY p.archived_at DESC",
            (sku,),
        )
        return [r for r in map(_record, rows) if "frame" in r.files]

    # -- statistics --------------------------------------------------------------------------------------

    def sku_stats(self) -> list[SkuStats]:
        """Per-SKU archive counts, false alarms and escapes (latest disposition of each part)."""
        archived: dict[str, dict[str, int]] = {}
        for sku, verdict, n in self._query("SELECT sku, verdict, COUNT(*) FROM parts GROUP BY sku, verdict"):
            archived.setdefault(sku or "-", {})[verdict] = n
        reviewed: dict[tuple[str, str, str], int] = {}
        for sku, verdict, disposition, n in self._query(
            f"SELECT sku, verdict, disposition, COUNT(*) FROM dispositions WHERE id IN {_LATEST} "
            "GROUP BY sku, verdict, disposition"
        ):
            reviewed[(sku or "-", verdict, disposition)] = n
        out = []
        for sku in sorted(set(archived) | {k[0] for k in reviewed}):

            def n(verdict: str, disposition: str, sku: str = sku) -> int:
                return reviewed.get((sku, verdict, disposition), 0)

            out.append(
                SkuStats(
                    sku=sku,
                    archived=archived.get(sku, {}),
                    ng_reviewed=n("NG", "false_alarm") + n("NG", "confirm_defect"),
                    false_alarms=n("NG", "false_alarm"),
                    ok_reviewed=n("OK", "false_alarm") + n("OK", "confirm_defect"),
                    escapes=n("OK", "confirm_defect"),
                )
            )
        return out

    # -- feedback loop journal ---------------------------------------------------------------------------

    def add_promotion(
        self,
        *,
        kind: str,
        sku: str,
        part_ids: Sequence[str],
        detail: str,
        user: str,
        result: str,
        reason: str,
        flash_id: str,
        ok: bool,
    ) -> int:
        """Record a promotion or threshold change (and, when ``ok``, mark its parts as promoted)."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO promotions (kind, sku, part_ids, detail, user, at, result, reason, flash_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, sku, json.dumps(list(part_ids)), detail, user, time.time(), result, reason, flash_id),
            )
            promotion_id = int(cur.lastrowid or 0)
            if ok:
                db.executemany(
                    "INSERT OR REPLACE INTO promoted_parts (part_id, promotion_id) VALUES (?, ?)",
                    [(p, promotion_id) for p in part_ids],
                )
        return promotion_id

    def promotions(self, limit: int = 20) -> list[PromotionRecord]:
        """The latest promotions and threshold changes, newest first."""
        rows = self._query(
            "SELECT id, kind, sku, part_ids, detail, user, at, result, reason, flash_id FROM promotions "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            PromotionRecord(r[0], r[1], r[2], list(json.loads(r[3])), r[4], r[5], r[6], r[7], r[8], r[9])
            for r in rows
        ]


def _record(row: tuple[Any, ...]) -> PartRecord:
    values = dict(zip(_PART_COLUMNS, row[: len(_PART_COLUMNS)], strict=True))
    values["boxes"] = json.loads(values["boxes"] or "[]")
    values["files"] = json.loads(values["files"] or "{}")
    disposition, defect_class, comment, user, promoted = row[len(_PART_COLUMNS) :]
    return PartRecord(
        **values,
        disposition=disposition,
        defect_class=defect_class,
        comment=comment,
        reviewed_by=user,
        promoted=bool(promoted),
    )


def _disposition(row: tuple[Any, ...]) -> DispositionRecord:
    return DispositionRecord(
        id=row[0],
        part_id=row[1],
        sku=row[2],
        verdict=row[3],
        disposition=row[4],
        defect_class=row[5],
        comment=row[6],
        user=row[7],
        at=row[8],
        published=bool(row[9]),
        publish_error=row[10],
    )
