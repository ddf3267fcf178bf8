"""The NG archive at stop: bounded, and a part it could not finish is in the index as cut short."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np

from edge.capture.frame import Frame
from edge.capture.part import Part
from edge.inspection.types import InspectionResult, Verdict
from edge.mqtt.payloads import VerdictPayload
from edge.review.index import ArchiveIndex
from edge.review.retention import RetentionPolicy
from edge.runtime.archive import CUT_SHORT_GRACE_S, PREVIEW_MAX_SIDE, ImageArchive

POLICY = RetentionPolicy(max_age_s=86400, quota_bytes=4 << 30, min_free_bytes=0)


def flagged(seq: int, image: np.ndarray) -> tuple[Part, VerdictPayload]:
    frame = Frame(image, seq=seq, timestamp=time.time(), source="test", pixel_format="RGB8")
    part = Part(part_id=f"st1-{seq:09d}", seq=seq, sku="plate", frame=frame)
    verdict = VerdictPayload(
        part_id=part.part_id, seq=seq, sku="plate", verdict=Verdict.NG, score=2.0, threshold=1.0
    )
    return part, verdict


def noise(side: int, seed: int) -> np.ndarray:
    # Noise does not compress: a PNG of it takes seconds at this size, inside one OpenCV call.
    return np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)


def test_close_is_bounded_and_records_what_it_cut_short(tmp_path: Path) -> None:
    archive = ImageArchive(tmp_path / "archive", retention=POLICY)
    small = noise(64, 1)
    archive(*flagged(1, small), None)
    assert archive.wait_idle(10)
    archive(*flagged(2, noise(5000, 2)), None)  # being encoded when the stop comes
    archive(*flagged(3, small), None)  # still queued behind it
    time.sleep(0.2)

    start = time.monotonic()
    finished = archive.close(timeout_s=0.3)
    took = time.monotonic() - start

    assert took < 0.3 + CUT_SHORT_GRACE_S + 0.5, f"close took {took:.1f} s"
    assert finished is not archive.is_writing()
    index = ArchiveIndex(tmp_path / "archive" / "index.db")
    parts = {p.part_id: p for p in index.parts()}
    assert set(parts) == {"st1-000000001", "st1-000000002", "st1-000000003"}, "no part silently missing"
    assert parts["st1-000000001"].cut_short is None and parts["st1-000000001"].files
    for part_id in ("st1-000000002", "st1-000000003"):
        part = parts[part_id]
        assert part.cut_short == "station stopping: archiving cut short after 0.3 s"
        assert part.dir is None and part.files == {} and part.verdict == "NG"
        assert part.width == part.height and part.width in (64, 5000)
    assert archive.cut_short == 2

    # When the encoding call returns, the writer drops its result: the row stays cut short.
    deadline = time.monotonic() + 60
    while archive.is_writing() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not archive.is_writing()
    assert index.part("st1-000000002") == parts["st1-000000002"]
    index.close()


def test_close_with_time_enough_writes_everything(tmp_path: Path) -> None:
    archive = ImageArchive(tmp_path / "archive", retention=POLICY)
    for seq in (1, 2, 3):
        archive(*flagged(seq, noise(64, seq)), None)
    assert archive.close(timeout_s=10.0) is True
    assert not archive.is_writing() and archive.written == 3 and archive.cut_short == 0
    index = ArchiveIndex(tmp_path / "archive" / "index.db")
    assert all(p.cut_short is None and p.files for p in index.parts())
    index.close()
    assert archive.close() is True, "idempotent"


def test_previews_of_a_huge_frame_stay_bounded(tmp_path: Path) -> None:
    archive = ImageArchive(tmp_path / "archive", retention=POLICY)
    part, verdict = flagged(1, np.full((3000, 9000, 3), 90, np.uint8))
    result = InspectionResult(
        verdict=Verdict.NG,
        score=2.0,
        threshold=1.0,
        boxes=[],
        sku="plate",
        template_ids=[],
        retrieval_scores=[],
        registrations=[],
        anomaly_map=np.linspace(0, 2, 40 * 120, dtype=np.float32).reshape(40, 120),
        map_scale=75.0,
    )
    archive(part, verdict, result)
    assert archive.close(timeout_s=60.0)
    index = ArchiveIndex(tmp_path / "archive" / "index.db")
    record = index.part(part.part_id)
    assert record is not None and record.dir is not None and (record.width, record.height) == (9000, 3000)
    folder = tmp_path / "archive" / record.dir
    shapes = {name: getattr(cv2.imread(str(folder / name)), "shape", None) for name in record.files.values()}
    assert shapes["frame.png"] == (3000, 9000, 3), "the frame itself is kept whole"
    assert shapes["heatmap.jpg"] == shapes["overlay.jpg"] == (PREVIEW_MAX_SIDE // 3, PREVIEW_MAX_SIDE, 3)
    index.close()


def test_an_index_written_before_cut_short_existed_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE parts (part_id TEXT PRIMARY KEY, seq INTEGER, sku TEXT, verdict TEXT NOT NULL, "
        "score REAL, threshold REAL, boxes TEXT NOT NULL DEFAULT '[]', template_id TEXT, "
        "model_id TEXT, backend TEXT, config_id TEXT, config_hash TEXT, reason TEXT, frame_ts REAL, "
        "archived_at REAL NOT NULL, dir TEXT, files TEXT NOT NULL DEFAULT '{}', "
        "bytes INTEGER NOT NULL DEFAULT 0, width INTEGER, height INTEGER)"
    )
    old.execute("INSERT INTO parts (part_id, verdict, archived_at) VALUES ('st1-000000001', 'NG', 1.0)")
    old.commit()
    old.close()
    index = ArchiveIndex(path)
    record = index.part("st1-000000001")
    assert record is not None and record.cut_short is None
    index.close()
