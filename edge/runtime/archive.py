"""Archive hook: flagged parts (and a sample of OK parts) saved with their images for the review station.

Every NG, NOT_INSPECTED and ERROR part is archived (OK parts with probability ``ok_sample_rate``): the frame,
the retrieved golden template, the anomaly heatmap and the heatmap over the frame, with boxes, scores and
model/config ids in the SQLite index (:mod:`edge.review.index`), which is all the review UI reads. A part
without a frame (e.g. NOT_INSPECTED "overload") gets an index row without images.

Encoding images takes milliseconds, so the archive runs on its own thread behind a small queue; when the disk
cannot keep up, archive entries (never verdicts) are skipped and counted in :attr:`ImageArchive.skipped`.
Before each entry is written the :class:`~edge.review.retention.Retention` makes room: oldest parts go first
to stay under the quota and to leave the file system its reserve; an entry that cannot fit is skipped.

The archive never holds up or crashes a stop. :meth:`ImageArchive.close` gives the writer ``timeout_s`` to
finish what is queued; then every part not written yet (the one being encoded, those still queued) is
recorded in the index as *cut short* (``cut_short`` says why; no images), and the writer stops at its next
step. A step is one OpenCV call, which cannot be interrupted: a frame of 144 MP takes seconds to encode as
PNG. If one still runs when ``close`` returns, :meth:`ImageArchive.is_writing` says so and the process must
not finalize the interpreter around it: CPython 3.11 ends a daemon thread that comes back from C++ code
during finalization with ``pthread_exit``, whose unwinding through OpenCV's frame aborts the process
(``terminate called without an active exception``, SIGABRT). ``edge run`` then exits without
finalization (:func:`edge.runtime.cli.leave`). Heatmap and overlay are made at most
:data:`PREVIEW_MAX_SIDE` pixels wide or high, so their cost does not grow with the frame.
"""

from __future__ import annotations

import contextlib
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

from edge.capture.part import Part
from edge.inspection.types import InspectionResult, Verdict
from edge.mqtt.payloads import VerdictPayload
from edge.review.index import INDEX_NAME, ArchiveIndex, PartRecord
from edge.review.retention import Retention, RetentionPolicy

log = logging.getLogger(__name__)

TemplateLookup = Callable[[str, str], npt.NDArray[np.uint8] | None]
"""``(sku, template id) -> template image`` (grey or RGB), ``None`` when unknown."""

EXPIRE_EVERY_S = 60.0
"""How often parts past the retention period are looked for."""

PREVIEW_MAX_SIDE = 4096
"""Longest side of the heatmap and overlay images. The anomaly map is coarse (tens of cells a side) and the
review UI scales images to the screen, so a larger preview shows nothing more; at the frame's own size a
12000 x 12000 frame made the overlay arithmetic take 13 s and 1.7 GB (float32)."""

CUT_SHORT_GRACE_S = 1.0
"""After the timeout of :meth:`ImageArchive.close`, how long the writer gets to reach its next step."""

_FLAGGED = (Verdict.NG, Verdict.NOT_INSPECTED, Verdict.ERROR)

_Entry = tuple[Part, VerdictPayload, InspectionResult | None]


class _CutShortError(Exception):
    """Internal: the archive is closing past its timeout; the entry being written stops here."""


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
        self._queue: queue.Queue[_Entry | None] = queue.Queue(maxsize=backlog)
        self._idle = threading.Condition()
        self._pending = 0
        self.cut_short = 0
        """Entries recorded as cut short (without images) because the archive closed before writing them."""
        self._closed = False
        self._abort = threading.Event()  # set by close() past its timeout: stop writing, record the rest
        self._cut_reason = "station stopping"
        self._entry_lock = threading.Lock()  # orders the writer's index row against close() cutting it short
        self._current: _Entry | None = None
        self._current_claimed = False
        # A daemon: a writer stuck in a native call must not keep the process alive (see the module doc).
        self._thread = threading.Thread(target=self._run, name="archive", daemon=True)
        self._thread.start()

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

    def is_writing(self) -> bool:
        """Whether the writer thread still runs (after :meth:`close`: inside a native call)."""
        return self._thread.is_alive()

    def close(self, timeout_s: float = 5.0) -> bool:
        """Write what is queued within ``timeout_s``, record what is not as cut short, and stop.

        Bounded: returns after at most ``timeout_s`` + :data:`CUT_SHORT_GRACE_S` seconds, whatever the writer
        is doing. Idempotent.

        Returns:
            ``True`` when the writer has stopped (the index is closed); ``False`` when it is still inside a
            native call (see the module docstring: the process must then exit without finalization).

        """
        if self._closed:
            return not self._thread.is_alive()
        self._closed = True
        deadline = time.monotonic() + timeout_s
        # Behind whatever is queued; a full queue makes room as the writer goes, or the deadline passes.
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=max(0.0, timeout_s))
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._cut_reason = f"station stopping: archiving cut short after {timeout_s:g} s"
            self._abort.set()
            n = self._cut_short_unwritten()
            log.warning("archive: %d part(s) not written within %g s; recorded as cut short", n, timeout_s)
            self._thread.join(CUT_SHORT_GRACE_S)
        if self._thread.is_alive():
            log.warning("archive writer still inside an encoding call; the index stays open until exit")
            return False
        self.index.close()
        return True

    def _cut_short_unwritten(self) -> int:
        """Record the entry being written and every queued one as cut short (from the closing thread)."""
        entries: list[_Entry] = []
        with self._entry_lock:
            if self._current is not None and not self._current_claimed:
                self._current_claimed = True  # the writer drops its own result for it
                entries.append(self._current)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                entries.append(item)
                self._done()
        for part, verdict, _ in entries:
            self._record_cut_short(part, verdict)
        return len(entries)

    def _record_cut_short(self, part: Part, verdict: VerdictPayload) -> None:
        try:
            self.index.add_part(self._record(part, verdict, time.time(), cut_short=self._cut_reason))
            with self._entry_lock:
                self.cut_short += 1
        except Exception:  # the index is a review aid; a stop must go on
            log.exception("archive: cannot record part %s as cut short", part.part_id)

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _run(self) -> None:
        while not self._abort.is_set():  # past close()'s timeout: close() has recorded what is queued
            try:
                item = self._queue.get(timeout=EXPIRE_EVERY_S)
            except queue.Empty:
                self._expire()
                continue
            if item is None:
                return
            part, verdict, result = item
            with self._entry_lock:
                self._current, self._current_claimed = item, False
            try:
                self._checkpoint()  # taken from the queue after close() emptied it: recorded just below
                if time.monotonic() - self._last_expiry >= EXPIRE_EVERY_S:
                    self._expire()
                if self._write(part, verdict, result):
                    self.written += 1
                else:
                    self.skipped += 1
            except _CutShortError:
                with self._entry_lock:
                    claimed, self._current_claimed = self._current_claimed, True
                if not claimed:  # close() did not see this entry: it is recorded here
                    self._record_cut_short(part, verdict)
                log.info("archiving part %s cut short (station stopping)", part.part_id)
            except Exception:
                self.skipped += 1
                log.exception("archiving part %s failed", part.part_id)
            finally:
                with self._entry_lock:
                    self._current = None
                self._done()

    def _expire(self) -> None:
        self._last_expiry = time.monotonic()
        try:
            if n := self.retention.expire():
                log.info("archive: %d part(s) past the retention period deleted", n)
        except Exception:
            log.exception("archive retention failed")

    # -- one entry ---------------------------------------------------------------------------------------

    def _checkpoint(self) -> None:
        """Between two encoding steps: stop here when :meth:`close` gave up waiting."""
        if self._abort.is_set():
            raise _CutShortError

    def _write(self, part: Part, verdict: VerdictPayload, result: InspectionResult | None) -> bool:
        """Encode, make room, write the folder atomically, then index it. ``False``: no room (skipped).

        Raises:
            _CutShortError: The archive is closing past its timeout (the entry is recorded by ``close``).

        """
        files = self._encode(part, result)
        files["verdict.json"] = json.dumps(verdict.to_dict(), indent=1).encode("utf-8")
        size = sum(len(b) for b in files.values())
        self._checkpoint()
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
        record = self._record(part, verdict, archived_at, rel_dir=rel_dir, files=kinds, size=size)
        with self._entry_lock:
            if self._current_claimed:
                # close() recorded it as cut short meanwhile; its folder is an orphan that the next start's
                # reconcile() removes, so index and disk agree.
                raise _CutShortError
            self.index.add_part(record)
            self._current = None  # written: from now on close() must not cut it short
        return True

    def _record(
        self,
        part: Part,
        verdict: VerdictPayload,
        archived_at: float,
        *,
        rel_dir: str | None = None,
        files: dict[str, str] | None = None,
        size: int = 0,
        cut_short: str | None = None,
    ) -> PartRecord:
        """The index row of a part: its verdict, and where its images are (none when cut short)."""
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
            reason=verdict.reason,
            frame_ts=verdict.frame_ts,
            archived_at=archived_at,
            dir=rel_dir,
            files=files or {},
            bytes=size if rel_dir else 0,
            width=width,
            height=height,
            cut_short=cut_short,
        )

    def _encode(self, part: Part, result: InspectionResult | None) -> dict[str, bytes]:
        # A checkpoint after every OpenCV call: each is the longest the writer cannot be stopped.
        if part.frame is None:
            return {}
        frame = np.asarray(cv2.cvtColor(part.frame.image, cv2.COLOR_RGB2BGR), np.uint8)
        self._checkpoint()
        files = {"frame.png": _png(frame)}
        self._checkpoint()
        if result is None:
            return files
        template = self._template(result)
        if template is not None:
            files["template.png"] = _png(template)
            self._checkpoint()
        if result.anomaly_map.size:
            preview = _preview(frame)
            self._checkpoint()
            heat = heatmap(result.anomaly_map, result.threshold, preview.shape[:2])
            files["heatmap.jpg"] = _jpg(heat)
            self._checkpoint()
            files["overlay.jpg"] = _jpg(overlay(preview, heat, result.anomaly_map, result.threshold))
            self._checkpoint()
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


def _preview(frame_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The frame at most :data:`PREVIEW_MAX_SIDE` a side, aspect kept (the frame itself when smaller)."""
    h, w = frame_bgr.shape[:2]
    scale = PREVIEW_MAX_SIDE / max(h, w)
    if scale >= 1.0:
        return frame_bgr
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(cv2.resize(frame_bgr, size, interpolation=cv2.INTER_AREA), np.uint8)


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
