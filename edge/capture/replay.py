"""Folder replay: images on disk served like a camera, for demos and offline trials.

Images are found recursively and served in sorted relative-path order, paced at ``rate_hz`` (free-run) or one
per ``trigger()``. An unreadable image is not skipped silently: ``read`` raises :class:`BadFrame` for it (the
part still gets an ``ERROR`` verdict downstream), counts it, logs the path, and the next ``read`` moves on.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.capture.errors import BadFrame, CaptureConfigError, CaptureError, CaptureTimeout, EndOfStreamError
from edge.capture.frame import Frame, RgbImage
from edge.capture.settings import ReplaySettings, SkuSource, TriggerMode
from edge.capture.source import CaptureStats, ContextManagedSource, StatsCounter

log = logging.getLogger(__name__)

#: File suffixes (lower case) treated as images.
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})


@dataclass(frozen=True)
class ReplayItem:
    """One image to replay and the SKU its location gives it (sidecar SKUs are read when it is served)."""

    path: Path
    relative: str
    folder_sku: str | None


def scan_folder(folder: Path, sku_source: SkuSource) -> list[ReplayItem]:
    """List the images under ``folder`` in replay order.

    Raises:
        CaptureConfigError: The folder does not exist or holds no images.

    """
    if not folder.is_dir():
        raise CaptureConfigError(f"replay: folder {folder} does not exist")
    items = []
    for path in folder.rglob("*"):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        rel = path.relative_to(folder)
        sku = rel.parts[0] if sku_source is SkuSource.SUBFOLDER and len(rel.parts) > 1 else None
        items.append(ReplayItem(path=path, relative=rel.as_posix(), folder_sku=sku))
    if not items:
        raise CaptureConfigError(f"replay: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return sorted(items, key=lambda item: item.relative)


def decode_image(path: Path) -> RgbImage:
    """Read an image file as owned RGB ``uint8`` (greyscale and 16-bit files are converted).

    Raises:
        ValueError: The file cannot be read or decoded; the message says which.

    """
    try:
        raw = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: it cannot tell "missing" from "corrupt"
    except OSError as exc:
        raise ValueError(f"cannot read file: {exc.strerror or exc}") from exc
    if raw.size == 0:
        raise ValueError("empty file")
    try:
        bgr = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        # OpenCV raises (instead of returning None) for headers it refuses, e.g. a claimed size above
        # its pixel limit: still a bad frame of this part, never an error that loses the part.
        reason = str(exc.err or exc).strip()
        raise ValueError(f"not a decodable image (OpenCV: {reason})") from exc
    if bgr is None:
        raise ValueError("not a decodable image")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def read_sidecar(image: Path) -> dict[str, Any]:
    """Return the JSON object in ``<stem>.json`` next to ``image`` (``{}`` when there is none).

    Raises:
        ValueError: The sidecar exists but is not a JSON object, or its ``sku`` is not a string.

    """
    sidecar = image.with_suffix(".json")
    if not sidecar.is_file():
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"sidecar {sidecar.name}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"sidecar {sidecar.name}: expected a JSON object, got {type(data).__name__}")
    if "sku" in data and not isinstance(data["sku"], str):
        raise ValueError(f"sidecar {sidecar.name}: 'sku' must be a string")
    return data


class ReplaySource(ContextManagedSource):
    """A folder of images behaving like a camera.

    Args:
        settings: Folder, pacing and SKU options.
        clock: Monotonic clock used for pacing.

    """

    def __init__(self, settings: ReplaySettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._name = settings.source_name
        self._clock = clock
        self._stats = StatsCounter()
        self._items: list[ReplayItem] = []
        self._index = 0
        self._cycle = 0
        self._seq = 0
        self._next_due = 0.0
        self._pending_triggers = 0
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._open = False

    @property
    def name(self) -> str:
        """Source name put on frames."""
        return self._name

    @property
    def stats(self) -> CaptureStats:
        """Counter snapshot."""
        return self._stats.snapshot()

    @property
    def items(self) -> tuple[ReplayItem, ...]:
        """Images in replay order (after :meth:`open`)."""
        return tuple(self._items)

    def open(self) -> None:
        """Scan the folder.

        Raises:
            CaptureConfigError: Missing folder or no images in it.

        """
        self._items = scan_folder(self._settings.folder, self._settings.sku_source)
        self._index = 0
        self._cycle = 0
        self._closing.clear()
        self._next_due = self._clock()
        self._open = True
        log.info("%s: replaying %d image(s) from %s", self._name, len(self._items), self._settings.folder)

    def close(self) -> None:
        """Stop serving; wakes a ``read`` waiting for its slot or a trigger."""
        self._closing.set()
        with self._cond:
            self._open = False
            self._cond.notify_all()

    def trigger(self) -> None:
        """Release one image (software-trigger mode).

        Raises:
            CaptureError: The source is in free-run or closed.

        """
        if self._settings.trigger is not TriggerMode.SOFTWARE:
            raise CaptureError(f"{self._name}: trigger() needs trigger mode 'software', not free_run")
        with self._cond:
            if not self._open:
                raise CaptureError(f"{self._name}: trigger() on a closed source")
            self._pending_triggers += 1
            self._cond.notify_all()

    def read(self, timeout_s: float) -> Frame:
        """Return the next image as a frame.

        Raises:
            CaptureTimeout: The next image is not due (free-run) or no trigger came within ``timeout_s``.
            BadFrame: The next image cannot be decoded; it is counted and the following ``read`` moves on.
            EndOfStreamError: ``loop`` is off and every image was served.
            CaptureError: The source is closed.

        """
        deadline = self._clock() + timeout_s
        if self._settings.trigger is TriggerMode.SOFTWARE:
            self._wait_for_trigger(deadline, timeout_s)
        else:
            self._wait_for_slot(deadline, timeout_s)
        item = self._take_next()
        seq = self._seq
        self._seq += 1
        acquired_at = time.time()
        sidecar: dict[str, Any] = {}
        sku = item.folder_sku
        try:
            if self._settings.sku_source is SkuSource.SIDECAR:
                sidecar = read_sidecar(item.path)
                sku = sidecar.get("sku", sku)
            image = decode_image(item.path)
        except ValueError as exc:
            self._stats.add("bad_frames")
            log.error("%s: bad image %s (seq %d): %s", self._name, item.path, seq, exc)
            raise BadFrame(item.path, str(exc), seq=seq, sku=sku) from exc
        self._stats.add("frames")
        return Frame(
            image=image,
            seq=seq,
            timestamp=acquired_at,
            source=self._name,
            pixel_format="RGB8",
            sku=sku,
            meta={"path": str(item.path), "cycle": self._cycle, "sidecar": sidecar},
        )

    def _check_open(self) -> None:
        if not self._open or self._closing.is_set():
            raise CaptureError(f"{self._name}: read() on a closed source")

    def _wait_for_trigger(self, deadline: float, timeout_s: float) -> None:
        with self._cond:
            while True:
                self._check_open()
                if self._pending_triggers > 0:
                    self._pending_triggers -= 1
                    return
                remaining = deadline - self._clock()
                if remaining <= 0:
                    self._stats.add("timeouts")
                    raise CaptureTimeout(f"{self._name}: no trigger within {timeout_s:.3g} s")
                self._cond.wait(remaining)

    def _wait_for_slot(self, deadline: float, timeout_s: float) -> None:
        self._check_open()
        rate = self._settings.rate_hz
        if rate is None:
            return
        due = self._next_due
        if due > deadline:
            self._closing.wait(max(0.0, deadline - self._clock()))
            self._check_open()
            self._stats.add("timeouts")
            raise CaptureTimeout(f"{self._name}: next image due in more than {timeout_s:.3g} s")
        if self._closing.wait(max(0.0, due - self._clock())):
            self._check_open()
        period = 1.0 / rate
        now = self._clock()
        # A reader more than a period late gets this image at once, and the schedule is re-anchored on now:
        # no burst of catch-up images, as from a camera at a fixed rate whose old frames are gone.
        self._next_due = due + period if due + period >= now else now + period

    def _take_next(self) -> ReplayItem:
        if self._index >= len(self._items):
            if not self._settings.loop:
                raise EndOfStreamError(f"{self._name}: all {len(self._items)} image(s) replayed")
            self._index = 0
            self._cycle += 1
        item = self._items[self._index]
        self._index += 1
        return item
