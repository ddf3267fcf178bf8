"""Folder replay: images on disk served like a camera, for demos and offline trials.

Images are served in sorted relative-path order, paced at ``rate_hz`` (free-run) or one per ``trigger()``.

The folder is followed, by this rule:

* What looks like a frame is listed: every entry under the folder (recursively) whose name ends in an image
  suffix, whatever it turns out to be. The list is sorted by relative path.
* When the list runs out, the folder is scanned again. Entries not listed before are appended, sorted among
  themselves, so a file added while the source runs is served after what was already waiting. (Scanning
  only then keeps one rule for the order: a scan in between could only append the same entries earlier.)
* ``loop=False``: each entry (by relative path) is served at most once for the life of the source, also when
  it is rewritten; the stream ends (:class:`EndOfStreamError`) when the list runs out and a scan finds
  nothing new.
* ``loop=True``: when the list runs out, a new cycle lists every entry present then.
* Nothing listed is skipped silently: an entry that cannot be served (a dangling symlink, a directory or fifo
  named ``x.png``, a file that vanished, cannot be read or decoded, or whose header announces more than
  ``max_frame_pixels``) raises :class:`BadFrame` for its slot (the part still gets an ``ERROR`` verdict
  downstream), is counted and logged with the path, and the next ``read`` moves on.
* A folder that disappears while the source runs is a lost device (:class:`DeviceUnavailableError` while the
  list has run out), not the end of the stream.

Write new files atomically: under a name without an image suffix (``x.png.part``), then rename; a file
still being written when its turn comes would be served truncated (an ``ERROR`` verdict).
"""

from __future__ import annotations

import json
import logging
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import cv2
import numpy as np

from edge.capture.errors import (
    BadFrame,
    CaptureConfigError,
    CaptureError,
    CaptureTimeout,
    DeviceUnavailableError,
    EndOfStreamError,
)
from edge.capture.frame import Frame, RgbImage
from edge.capture.header import image_size
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


def list_images(folder: Path, sku_source: SkuSource) -> list[ReplayItem]:
    """List what looks like a frame under ``folder`` in replay order (possibly nothing).

    Entries are listed by name only, so one that cannot be served (a directory or a dangling symlink named
    ``x.png``) is listed too and fails when it is read, with the reason, rather than being left out unseen.

    Raises:
        FileNotFoundError: The folder does not exist (or is not a folder).

    """
    if not folder.is_dir():
        raise FileNotFoundError(f"replay: folder {folder} does not exist")
    items = []
    for path in folder.rglob("*"):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        rel = path.relative_to(folder)
        sku = rel.parts[0] if sku_source is SkuSource.SUBFOLDER and len(rel.parts) > 1 else None
        items.append(ReplayItem(path=path, relative=rel.as_posix(), folder_sku=sku))
    return sorted(items, key=lambda item: item.relative)


def scan_folder(folder: Path, sku_source: SkuSource) -> list[ReplayItem]:
    """List the images under ``folder`` in replay order, refusing a folder that holds none.

    Raises:
        CaptureConfigError: The folder does not exist or holds no images.

    """
    try:
        items = list_images(folder, sku_source)
    except FileNotFoundError as exc:
        raise CaptureConfigError(str(exc)) from exc
    if not items:
        raise CaptureConfigError(f"replay: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return items


def read_frame_file(path: Path) -> bytes:
    """Return the bytes of a frame file, refusing what is not a regular, non-empty file.

    Raises:
        ValueError: The entry cannot be served; the message says why.

    """
    try:
        info = path.stat()  # follows symlinks: the target is what would be read
    except FileNotFoundError:
        if path.is_symlink():
            raise ValueError(f"dangling symbolic link (to {path.readlink()})") from None
        raise ValueError("file vanished before it was read") from None
    except OSError as exc:  # a symlink loop, a permission on the way, ...
        raise ValueError(f"cannot read file: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ValueError("a directory, not an image file")
    if not stat.S_ISREG(info.st_mode):
        # A fifo would block the read forever, a device would stream without end.
        raise ValueError("not a regular file (fifo, socket or device)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read file: {exc.strerror or exc}") from exc
    if not data:
        raise ValueError("empty file")
    return data


def decode_image(path: Path, max_pixels: int | None = None) -> RgbImage:
    """Read an image file as owned RGB ``uint8`` (greyscale and 16-bit files are converted).

    Args:
        path: The image file.
        max_pixels: Refuse, before decoding, an image whose header announces more pixels (width x height);
            ``None`` decodes whatever OpenCV accepts.

    Raises:
        ValueError: The file cannot be read, is too large or cannot be decoded; the message says which.

    """
    data = read_frame_file(path)  # not cv2.imread: it cannot tell "missing" from "corrupt"
    if max_pixels is not None:
        try:
            width, height = image_size(data)
        except ValueError as exc:
            raise ValueError(f"not a decodable image ({exc})") from exc
        if width * height > max_pixels:
            raise ValueError(
                f"frame too large: header announces {width}x{height} = {width * height:,} pixels, above "
                f"the limit of {max_pixels:,} (camera.max_frame_pixels); not decoded"
            )
    try:
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
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
    """A folder of images behaving like a camera (the folder is followed; see the module docstring).

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
        self._listed: set[str] = set()  # relative paths listed this cycle (loop) or ever (no loop)
        self._index = 0
        self._cycle = 0
        self._seq = 0
        self._next_due = 0.0
        self._folder_missing = False
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
        """Images of the current cycle in replay order, rescans' finds included (after :meth:`open`)."""
        return tuple(self._items)

    def open(self) -> None:
        """Scan the folder.

        Raises:
            CaptureConfigError: Missing folder or no images in it.

        """
        self._items = scan_folder(self._settings.folder, self._settings.sku_source)
        self._listed = {item.relative for item in self._items}
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
            CaptureTimeout: The next image is not due (free-run), no trigger came within ``timeout_s``, or a
                looping source's folder holds no image right now.
            DeviceUnavailableError: The list ran out and the folder is gone (it may come back).
            BadFrame: The next entry cannot be served; it is counted and the following ``read`` moves on.
            EndOfStreamError: ``loop`` is off and every image, also those added meanwhile, was served.
            CaptureError: The source is closed.

        """
        deadline = self._clock() + timeout_s
        if self._settings.trigger is TriggerMode.SOFTWARE:
            self._wait_for_trigger(deadline, timeout_s)
        else:
            self._wait_for_slot(deadline, timeout_s)
        item = self._take_next(deadline)
        seq = self._seq
        self._seq += 1
        acquired_at = time.time()
        sidecar: dict[str, Any] = {}
        sku = item.folder_sku
        try:
            if self._settings.sku_source is SkuSource.SIDECAR:
                sidecar = read_sidecar(item.path)
                sku = sidecar.get("sku", sku)
            image = decode_image(item.path, self._settings.max_frame_pixels)
        except Exception as exc:  # whatever fails with this file (MemoryError included) fails its part only
            reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            self._stats.add("bad_frames")
            log.error("%s: bad image %s (seq %d): %s", self._name, item.path, seq, reason)
            raise BadFrame(item.path, reason, seq=seq, sku=sku) from exc
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

    def _take_next(self, deadline: float) -> ReplayItem:
        if self._index >= len(self._items):
            # The list ran out: what was added meanwhile comes first, then the end (no loop) or a new cycle.
            if not self._rescan():
                self._wait_for_folder(deadline)
            if self._index >= len(self._items):
                if not self._settings.loop:
                    raise EndOfStreamError(f"{self._name}: all {len(self._items)} image(s) replayed")
                self._new_cycle(deadline)
        item = self._items[self._index]
        self._index += 1
        return item

    def _rescan(self) -> bool:
        """Append entries not listed before; ``False`` when the folder is gone."""
        try:
            found = list_images(self._settings.folder, self._settings.sku_source)
        except OSError as exc:
            if not self._folder_missing:
                log.error("%s: %s", self._name, exc)
            self._folder_missing = True
            return False
        if self._folder_missing:
            log.info("%s: folder %s is back", self._name, self._settings.folder)
            self._folder_missing = False
        new = [item for item in found if item.relative not in self._listed]
        if new:
            log.info("%s: %d new image(s) in %s", self._name, len(new), self._settings.folder)
            self._items.extend(new)
            self._listed.update(item.relative for item in new)
        return True

    def _new_cycle(self, deadline: float) -> None:
        try:
            found = list_images(self._settings.folder, self._settings.sku_source)
        except OSError:  # gone since the rescan a moment ago
            self._folder_missing = True
            self._wait_for_folder(deadline)
        if not found:
            # Nothing to serve now; wait out the read (not a busy loop for the caller), then say so.
            self._closing.wait(max(0.0, deadline - self._clock()))
            self._check_open()
            self._stats.add("timeouts")
            raise CaptureTimeout(f"{self._name}: no images under {self._settings.folder} right now")
        self._items = found
        self._listed = {item.relative for item in found}
        self._index = 0
        self._cycle += 1

    def _wait_for_folder(self, deadline: float) -> NoReturn:
        self._closing.wait(max(0.0, deadline - self._clock()))
        self._check_open()
        self._stats.add("timeouts")
        raise DeviceUnavailableError(
            f"{self._name}: folder {self._settings.folder} is gone; waiting for it to come back"
        )
