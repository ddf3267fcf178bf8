"""The archive: what is kept, the index the UI reads, retention by quota, age and free disk."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from edge.capture.frame import Frame
from edge.capture.part import Part
from edge.inspection.inspector import Inspector
from edge.inspection.types import Verdict
from edge.mqtt.payloads import VerdictPayload
from edge.review.records import PartFilter, PartRecord
from edge.review.retention import RetentionPolicy
from edge.runtime.archive import ImageArchive, bank_templates
from review.conftest import Inspected, Ui

QUOTA = 1_500_000


def noisy_part(
    seq: int, rng: np.random.Generator, verdict: Verdict = Verdict.NG
) -> tuple[Part, VerdictPayload]:
    """A part whose frame does not compress (about 49 kB as PNG), so the quota is reached quickly."""
    image = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    frame = Frame(image, seq=seq, timestamp=time.time(), source="test", pixel_format="RGB8")
    part = Part(part_id=f"st1-{seq:09d}", seq=seq, sku="plate", frame=frame)
    verdict_payload = VerdictPayload(
        part_id=part.part_id,
        seq=seq,
        sku="plate",
        verdict=verdict,
        score=2.0,
        threshold=1.0,
        frame_ts=frame.timestamp,
    )
    return part, verdict_payload


def disk_usage(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_archive_stays_under_its_quota_while_parts_keep_coming(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    root = tmp_path / "archive"
    archive = ImageArchive(
        root, retention=RetentionPolicy(max_age_s=86400, quota_bytes=QUOTA, min_free_bytes=0)
    )
    try:
        for seq in range(1, 61):
            archive(*noisy_part(seq, rng), None)
            assert archive.wait_idle(10)
            assert disk_usage(root) <= QUOTA, f"over quota after part {seq}"
        assert archive.written == 60 and archive.skipped == 0
        kept = [p.part_id for p in archive.index.parts(limit=100)]
        # Oldest went first: what is left is the newest parts, without a gap.
        assert 3 < len(kept) < 60
        assert kept == [f"st1-{s:09d}" for s in range(60, 60 - len(kept), -1)]
        assert archive.retention.stats.deleted_quota == 60 - len(kept)
        folders = {p.relative_to(root).as_posix() for p in (root / "parts").glob("*/*")}
        assert folders == archive.index.part_dirs()
    finally:
        archive.close()


def test_never_fills_the_disk(tmp_path: Path) -> None:
    """With less free space than the reserve, entries are skipped (counted), nothing is written."""
    rng = np.random.default_rng(1)
    root = tmp_path / "archive"
    archive = ImageArchive(
        root, retention=RetentionPolicy(max_age_s=86400, quota_bytes=1 << 40, min_free_bytes=1 << 62)
    )
    try:
        archive(*noisy_part(1, rng), None)
        assert archive.wait_idle(10)
        assert (archive.written, archive.skipped) == (0, 1)
        assert archive.retention.stats.refused == 1
        assert archive.index.count() == 0 and not (root / "parts").exists()
    finally:
        archive.close()


def test_parts_past_the_retention_period_are_deleted(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    root = tmp_path / "archive"
    archive = ImageArchive(
        root, retention=RetentionPolicy(max_age_s=3600, quota_bytes=1 << 30, min_free_bytes=0)
    )
    try:
        for seq in (1, 2):
            archive(*noisy_part(seq, rng), None)
        assert archive.wait_idle(10)
        assert archive.retention.expire(now=time.time() + 1800) == 0
        assert archive.retention.expire(now=time.time() + 3700) == 2
        assert archive.index.count() == 0 and list((root / "parts").glob("*/*")) == []
    finally:
        archive.close()


def test_flagged_parts_are_kept_ok_parts_sampled_dispositions_outlive_images(
    tmp_path: Path, inspected: list[Inspected], inspector: Inspector
) -> None:
    rng = np.random.default_rng(3)
    archive = ImageArchive(
        tmp_path / "archive",
        ok_sample_rate=0.0,
        retention=RetentionPolicy(86400, 1 << 30, 0),
        templates=bank_templates(lambda: inspector.banks),
    )
    try:
        for item in inspected:  # NG, OK, NG
            archive(item.part, item.verdict, item.result)
        missing = Part(part_id="st1-000000009", seq=9, sku="plate")  # no frame: NOT_INSPECTED
        archive(missing, VerdictPayload.uninspected(part_id=missing.part_id, seq=9, reason="overload"), None)
        error_part, _ = noisy_part(10, rng)
        archive(
            error_part,
            VerdictPayload.uninspected(part_id=error_part.part_id, seq=10, reason="bad", error=True),
            None,
        )
        assert archive.wait_idle(20)
        index = archive.index
        assert {p.part_id: p.verdict for p in index.parts()} == {
            "st1-000000001": "NG",
            "st1-000000003": "NG",
            "st1-000000009": "NOT_INSPECTED",
            "st1-000000010": "ERROR",
        }
        ng = index.part("st1-000000001")
        assert ng is not None
        assert set(ng.files) == {"frame", "template", "heatmap", "overlay"}
        assert ng.boxes and ng.score is not None and ng.score > ng.threshold  # type: ignore[operator]
        assert ng.template_id and ng.model_id and ng.width == 128
        assert index.part("st1-000000009").files == {}  # type: ignore[union-attr]
        assert index.count(PartFilter(verdict="NG")) == 2

        index.add_disposition("st1-000000001", "false_alarm", "olga")
        archive.retention.delete(ng)
        assert index.part("st1-000000001") is None
        stats = {s.sku: s for s in index.sku_stats()}
        assert (stats["plate"].ng_reviewed, stats["plate"].false_alarms) == (1, 1)
    finally:
        archive.close()


def test_a_crash_leaves_nothing_half_written(tmp_path: Path) -> None:
    """Orphan folders (written, never indexed) and rows without folders are cleaned at the next start."""
    rng = np.random.default_rng(4)
    root = tmp_path / "archive"
    policy = RetentionPolicy(86400, 1 << 30, 0)
    archive = ImageArchive(root, retention=policy)
    for seq in (1, 2):
        archive(*noisy_part(seq, rng), None)
    assert archive.wait_idle(10)
    archive.close()
    gone = (root / "parts").glob("*/st1-000000001-1")
    for folder in gone:
        for file in folder.iterdir():
            file.unlink()
        folder.rmdir()
    orphan = root / "parts" / "2000-01-01" / ".tmp-st1-000000003-3"
    orphan.mkdir(parents=True)
    (orphan / "frame.png").write_bytes(b"half")

    archive = ImageArchive(root, retention=policy)
    try:
        assert [p.part_id for p in archive.index.parts()] == ["st1-000000002"]
        assert not orphan.exists()
    finally:
        archive.close()


@pytest.mark.parametrize("verdict", [Verdict.OK])
def test_ok_parts_are_sampled(tmp_path: Path, verdict: Verdict) -> None:
    rng = np.random.default_rng(5)
    archive = ImageArchive(
        tmp_path / "archive", ok_sample_rate=0.5, seed=1, retention=RetentionPolicy(86400, 1 << 30, 0)
    )
    try:
        for seq in range(1, 41):
            archive(*noisy_part(seq, rng, verdict), None)
        assert archive.wait_idle(20)
        assert 8 <= archive.index.count() <= 32
    finally:
        archive.close()


def test_a_part_cut_short_shows_why_it_has_no_images(ui: Ui) -> None:
    reason = "station stopping: archiving cut short after 5 s"
    ui.review.index.add_part(
        PartRecord(part_id="st1-000000009", verdict="NG", archived_at=time.time(), cut_short=reason)
    )
    session, _ = ui.login("olga")
    status, _, body, _ = ui.request("GET", "/parts/st1-000000009", cookie=session)
    assert status == 200
    assert f"Images not archived: {reason}".encode() in body and b"no frame image" in body
