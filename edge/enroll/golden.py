"""Golden frames at the station: capture them from the camera, write the kept ones, say what happened.

``edge enroll`` (:mod:`edge.enroll.cli`) and ``edge run --simulated-camera`` (which enrolls the simulator's
part before it inspects) share these steps; the checks themselves are :mod:`edge.enroll.checks`.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.enroll.checks import FrameCheck


class EnrollError(RuntimeError):
    """Enrollment cannot run (config, SKU, camera or folder); the message says what to fix."""


Frames = list[tuple[str, npt.NDArray[np.uint8]]]


def capture_from_camera(resolved: Any, count: int, interval_s: float, warmup_s: float = 0.0) -> Frames:
    """Capture ``count`` frames from the config's camera, ``interval_s`` apart (time to change the part).

    Args:
        resolved: The resolved station config (:class:`edge.config.resolve.ResolvedConfig`).
        count: Frames to capture.
        interval_s: Seconds between frames.
        warmup_s: Frames of the first seconds after acquisition starts are read and discarded: a camera's
            automatic exposure, gain and white balance settle meanwhile (a triggered camera that sends
            nothing untriggered just waits that long).

    Returns:
        ``(name, RGB image)`` per frame, ``frame000`` first.

    Raises:
        EnrollError: The camera cannot be opened or delivers no frame.

    """
    from edge.capture.errors import CaptureError
    from edge.capture.factory import open_source
    from edge.runtime.adapters import camera_settings

    frames = []
    try:
        with open_source(camera_settings(resolved)) as source:
            _discard_until(source, time.monotonic() + warmup_s)
            for i in range(count):
                if i:
                    print(f"  next part in {interval_s:g} s ...", file=sys.stderr, flush=True)
                    time.sleep(interval_s)
                with contextlib.suppress(NotImplementedError, CaptureError):
                    source.trigger()  # free-running sources need no trigger
                frame = source.read(timeout_s=10.0)
                frames.append((f"frame{i:03d}", frame.image))
                print(f"  captured {i + 1}/{count}", file=sys.stderr, flush=True)
    except (CaptureError, OSError, ValueError) as exc:
        raise EnrollError(f"camera: {exc}") from None
    return frames


def _discard_until(source: Any, deadline: float) -> None:
    from edge.capture.errors import CaptureTimeout

    while (left := deadline - time.monotonic()) > 0:
        try:
            source.read(timeout_s=left)
        except CaptureTimeout:
            return


def write_golden(
    golden_dir: Path, sku: str, kept: list[tuple[FrameCheck, npt.NDArray[np.uint8]]]
) -> list[Path]:
    """Write the kept frames as PNG into ``golden_dir``, never overwriting an image; returns the paths."""
    golden_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    written = []
    for check, image in kept:
        path = golden_dir / f"{sku}-{stamp}-{check.name}.png"
        n = 1
        while path.exists():  # never overwrite a golden image
            path = golden_dir / f"{sku}-{stamp}-{check.name}-{n}.png"
            n += 1
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
        ok, data = cv2.imencode(".png", bgr)
        if not ok:
            raise EnrollError(f"cannot encode {path.name}")
        tmp = path.with_suffix(".png.tmp")
        tmp.write_bytes(data.tobytes())
        tmp.rename(path)  # a half-written file never looks like a golden image
        written.append(path)
    return written


def summary(
    checks: list[FrameCheck],
    golden_dir: Path,
    written: list[Path],
    dry_run: bool,
    next_step: str | None = "edge flash <config> (builds and self-tests the bank from them)",
) -> str:
    """What was kept, what was not and why, and what to do next."""
    kept = [c for c in checks if c.kept]
    lines = [f"{len(kept)} of {len(checks)} frames kept" + (" (dry run: nothing written)" if dry_run else "")]
    for c in checks:
        mark = "kept   " if c.kept else "dropped"
        why = "" if c.kept else ": " + "; ".join(c.problems)
        lines.append(f"  {mark} {c.name}  sharpness {c.sharpness:.0f}{why}")
    if written:
        lines.append(f"wrote {len(written)} golden image(s) to {golden_dir}")
    if len(kept) < 2:
        lines.append("not enough good frames for a golden bank (at least 2, better 10+ different good parts)")
    elif not dry_run and next_step is not None:
        lines.append(f"next: {next_step}")
    return "\n".join(lines)
