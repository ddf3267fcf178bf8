"""Archive hook: flagged parts (and a sample of OK parts) saved with their images for the review station.

Every NG, NOT_INSPECTED and ERROR part is archived (OK parts with probability ``ok_sample_rate``): the frame,
the retrieved golden template, the anomaly heatmap and the heatmap over the frame, with boxes, scores and
model/config ids in the SQLite index (:mod:`edge.review.index`), which is all the review UI reads. A part
without a frame (e.g. NOT_INSPECTED "overload") gets an index row without images.

Encoding images takes milliseconds, so the archive runs on its own thread behind a small queue; when the disk
cannot keep up, archive entries (never verdicts) are skipped and counted in :attr:`ImageArchive.skipped`.
Before each entry is written the :class:`~edge.review.retention.Retention` makes room: oldest parts go first
to stay under the quota and to leave the file system its reserve; an entry that cannot fit is skipped.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.inspection.types import InspectionResult, Verdict
from edge.mqtt.payloads import VerdictPayload
from edge.review.index import INDEX_NAME, ArchiveIndex, PartRecord
from edge.review.retention import Retention, RetentionPolicy
from edge.runtime.parts import Part

log = logging.getLogger(__name__)

TemplateLookup = Callable[[str, str], npt.NDArray[np.uint8] | None]
"""``(sku, template id) -> template image`` (grey or RGB), ``None`` when unknown."""

EXPIRE_EVERY_S = 60.0
#: At process exit, how long the writer may still take to finish the part it is writing.
EXIT_WAIT_S = 60.0
#: Index note of a part whose images were not written because the station was stopping.
CUT_SHORT_REASON = "archiving cut short at shutdown: images not written"
"""How often parts past the retention period are looked for."""

_FLAGGED = (Verdict.NG, Verdict.NOT_INSPECTED, Verdict.ERROR)


@dataclass(frozen=True)
class ConfigIds:
    """Which config decided the archived parts (shown next to every part)."""

    config_id: str | None = None
    config_hash: str | None = None


class ImageArchive:
    """A verdict listener that archives flagged parts under ``<root>/parts/<YYYY-MM-DD>/<part>/``.

    Args:
        root: Archive folder (``index.db`` and ``parts/``).
        ok_sample_rate: Fraction of OK parts archived as well (for escape statistics).
        backlog: Entries waiting to be written before new ones are skipped.
        seed: Seed of the OK sampling (tests).
        retention: Age, quota and disk reserve; default: 30 days, 2 GiB, 5 % of the file system free.
        templates: Finds the retrieved golden template of a part (the station passes its banks).
        config: Config id and hash recorded with every part.

    """

    def __init__(
        self,
        root: Path,
        ok_sample_rate: float = 0.0,
        backlog: int = 16,
        seed: int | None = None,
        *,
        retention: RetentionPolicy | None = None,
        templates: TemplateLookup | None = None,
        config: ConfigIds | None = None,
    ) -> None:
        self.root = root
        self.ok_sample_rate = ok_sample_rate
        self.written = 0
        self.skipped = 0
        self.templates = templates
        self.config = config or ConfigIds()
        root.mkdir(parents=True, exist_ok=True)
        self.index = ArchiveIndex(root / INDEX_NAME)
        self.retention = Retention(
            root, self.index, retention or RetentionPolicy(max_age_s=30 * 86400.0, quota_bytes=2048 << 20)
        )
        self.retention.reconcile()
        self.retention.expire()
        self._last_expiry = time.monotonic()
        self._random = random.Random(seed)
        self._queue: queue.Queue[tuple[Part, VerdictPayload, InspectionResult | None] | None] = queue.Queue(
            maxsize=backlog
        )
        self._idle = threading.Condition()
        self._pending = 0
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="archive", daemon=True)
        self._thread.start()
        # If the process exits while the writer is inside OpenCV (a huge frame being encoded), a daemon
        # thread killed in native code aborts the interpreter ("terminate called without an active
        # exception"). At exit, the writer is told to stop and given time to finish its current part.
        atexit.register(self._finish_at_exit)

    def __call__(self, part: Part, verdict: VerdictPayload, result: InspectionResult | None) -> None:
        """Queue the part when it is flagged (NG, NOT_INSPECTED, ERROR) or a sampled OK."""
        keep = verdict.verdict in _FLAGGED or (
            verdict.verdict is Verdict.OK
            and part.frame is not None
            and self._random.random() < self.ok_sample_rate
        )
        if not keep:
            return
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait((part, verdict, result))
        except queue.Full:
            self.skipped += 1
            self._done()

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued entry is written (tests, benchmarks); ``False`` on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop: the part being written is finished; parts still queued are indexed as cut short, no images.

        Returns within ``timeout_s``; a writer still busy then (a very large frame) finishes in the
        background, and at the latest the process waits :data:`EXIT_WAIT_S` for it at exit.
        """
        self._closing.set()
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning(
                "archive: still writing a part after %.0f s; it finishes in the background", timeout_s
            )
        else:
            atexit.unregister(self._finish_at_exit)

    def _finish_at_exit(self) -> None:
        if self._thread.is_alive():
            self._closing.set()
            self._queue.put(None)
            self._thread.join(EXIT_WAIT_S)

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=EXPIRE_EVERY_S)
            except queue.Empty:
                self._expire()
                continue
            if item is None:
                self.index.close()
                return
            if time.monotonic() - self._last_expiry >= EXPIRE_EVERY_S:
                self._expire()
            part, verdict, result = item
            try:
                if self._closing.is_set():
                    # Shutting down: no time to encode; the index still says the part existed and why it
                    # has no images (never silently missing).
                    self._write_cut_short(part, verdict)
                    self.skipped += 1
                elif self._write(part, verdict, result):
                    self.written += 1
                else:
                    self.skipped += 1
            except Exception:
                self.skipped += 1
                log.exception("archiving part %s failed", part.part_id)
            finally:
                self._done()

    def _expire(self) -> None:
        self._last_expiry = time.monotonic()
        try:
            if n := self.retention.expire():
                log.info("archive: %d part(s) past the retention period deleted", n)
        except Exception:
            log.exception("archive retention failed")

    # -- one entry ---------------------------------------------------------------------------------------

    def _write(self, part: Part, verdict: VerdictPayload, result: InspectionResult | None) -> bool:
        """Encode, make room, write the folder atomically, then index it. ``False``: no room (skipped)."""
        files = self._encode(part, result)
        files["verdict.json"] = json.dumps(verdict.to_dict(), indent=1).encode("utf-8")
        size = sum(len(b) for b in files.values())
        if not self.retention.make_room(size):
            log.error("archive has no room for part %s (%d bytes): not archived", part.part_id, size)
            return False
        archived_at = time.time()
        rel_dir: str | None = None
        kinds: dict[str, str] = {}
        if part.frame is not None:
            day = time.strftime("%Y-%m-%d", time.gmtime(part.frame.timestamp))
            stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in part.part_id)[:80]
            rel_dir = f"parts/{day}/{stem}-{part.seq}"
            self._write_folder(self.root / rel_dir, files)
            kinds = {name.split(".")[0]: name for name in files if name != "verdict.json"}
        self.index.add_part(
            self._record(part, verdict, verdict.reason, archived_at, rel_dir, kinds, size if rel_dir else 0)
        )
        return True

    def _write_cut_short(self, part: Part, verdict: VerdictPayload) -> None:
        """Index a part without images: archiving was cut short by shutdown."""
        note = CUT_SHORT_REASON if not verdict.reason else f"{verdict.reason}; {CUT_SHORT_REASON}"
        self.index.add_part(self._record(part, verdict, note, time.time(), None, {}, 0))

    def _record(
        self,
        part: Part,
        verdict: VerdictPayload,
        reason: str | None,
        archived_at: float,
        rel_dir: str | None,
        kinds: dict[str, str],
        size: int,
    ) -> PartRecord:
        height, width = (part.frame.height, part.frame.width) if part.frame is not None else (None, None)
        return PartRecord(
            part_id=verdict.part_id,
            seq=verdict.seq,
            sku=verdict.sku,
            verdict=verdict.verdict.value,
            score=verdict.score,
            threshold=verdict.threshold,
            boxes=[box.as_list() for box in verdict.boxes],
            template_id=verdict.template_id,
            model_id=verdict.model_id,
            backend=verdict.backend,
            config_id=self.config.config_id,
            config_hash=self.config.config_hash,
            reason=reason,
            frame_ts=verdict.frame_ts,
            archived_at=archived_at,
            dir=rel_dir,
            files=kinds,
            bytes=size,
            width=width,
            height=height,
        )

    def _encode(self, part: Part, result: InspectionResult | None) -> dict[str, bytes]:
        if part.frame is None:
            return {}
        frame = np.asarray(cv2.cvtColor(part.frame.image, cv2.COLOR_RGB2BGR), np.uint8)
        files = {"frame.png": _png(frame)}
        if result is None:
            return files
        template = self._template(result)
        if template is not None:
            files["template.png"] = _png(template)
        if result.anomaly_map.size:
            heat = heatmap(result.anomaly_map, result.threshold, frame.shape[:2])
            files["heatmap.jpg"] = _jpg(heat)
            files["overlay.jpg"] = _jpg(overlay(frame, heat, result.anomaly_map, result.threshold))
        return files

    def _template(self, result: InspectionResult) -> npt.NDArray[np.uint8] | None:
        if self.templates is None or not result.template_id:
            return None
        try:
            image = self.templates(result.sku, result.template_id)
        except Exception:
            log.exception("template %s of %s unavailable", result.template_id, result.sku)
            return None
        if image is not None and image.ndim == 3:
            image = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return image

    def _write_folder(self, folder: Path, files: dict[str, bytes]) -> None:
        # Written under a temporary name and renamed: a crash leaves an orphan that reconcile() removes,
        # never a half-written part the index points to.
        tmp = folder.with_name(f".tmp-{folder.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)


def heatmap(anomaly_map: npt.NDArray[Any], threshold: float, size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """Colour-coded anomaly map at frame size (BGR): the threshold sits mid-scale, 2x threshold saturates."""
    scale = 2.0 * threshold if threshold > 0 else float(np.max(anomaly_map)) or 1.0
    grey = np.clip(np.nan_to_num(anomaly_map.astype(np.float32)) / scale, 0.0, 1.0)
    grey8 = (grey * 255).astype(np.uint8)
    resized = cv2.resize(grey8, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return np.asarray(cv2.applyColorMap(resized, cv2.COLORMAP_INFERNO), np.uint8)


def overlay(
    frame_bgr: npt.NDArray[np.uint8],
    heat_bgr: npt.NDArray[np.uint8],
    anomaly_map: npt.NDArray[Any],
    threshold: float,
) -> npt.NDArray[np.uint8]:
    """The heatmap over the frame, more opaque where the map is higher (0 at a third of the threshold).

    Low scores leave the frame visible, so the operator sees the part and where the station looked.
    """
    h, w = frame_bgr.shape[:2]
    level = np.nan_to_num(anomaly_map.astype(np.float32)) / (threshold if threshold > 0 else 1.0)
    alpha = np.clip((level - 1.0 / 3.0) * 0.9, 0.0, 0.75)
    alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
    out = frame_bgr.astype(np.float32) * (1.0 - alpha) + heat_bgr.astype(np.float32) * alpha
    return np.asarray(np.clip(out, 0, 255), np.uint8)


def _png(image: npt.NDArray[np.uint8]) -> bytes:
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError("PNG encoding failed")
    return data.tobytes()


def _jpg(image: npt.NDArray[np.uint8]) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def bank_templates(banks: Callable[[], dict[str, Any]]) -> TemplateLookup:
    """A :data:`TemplateLookup` over the inspector's golden banks (the template as the station compares it).

    Args:
        banks: Returns the current ``{sku: SkuBank}`` (read at lookup time, so a reload is followed).

    """

    def lookup(sku: str, template_id: str) -> npt.NDArray[np.uint8] | None:
        bank = banks().get(sku)
        if bank is None or template_id not in bank.template_ids:
            return None
        return np.ascontiguousarray(bank.gray_fine[bank.template_ids.index(template_id)])

    return lookup
