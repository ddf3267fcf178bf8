"""``edge enroll``: capture golden parts of a SKU at the station, check them, keep the good ones.

    edge enroll station.yaml --sku widget --frames 20            # from the configured camera
    edge enroll station.yaml --sku widget --from-folder shots/   # from images taken elsewhere

Frames are checked as a batch (:mod:`edge.enroll.checks`: focus, exposure clipping, near-duplicates, a frame
unlike the rest); the kept ones are written as PNG (lossless) into the SKU's ``golden_dir``, and a summary
says what was kept and why the others were not. Nothing already in the golden folder is overwritten. Then
``edge flash station.yaml`` builds the bank from them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.enroll.checks import FrameCheck, check_frames

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class EnrollError(RuntimeError):
    """Enrollment cannot run (config, SKU, camera or folder); the message says what to fix."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``edge enroll``."""
    p = subparsers.add_parser(
        "enroll",
        help="capture and check golden parts of a SKU into its golden folder",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("config", type=Path, help="station config (its camera and the SKU's golden_dir are used)")
    p.add_argument("--sku", required=True, help="SKU id from the config")
    p.add_argument("--frames", type=int, default=20, help="frames to capture from the camera (default 20)")
    p.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between captured frames (time to change the part)",
    )
    p.add_argument("--from-folder", type=Path, default=None, help="take these images instead of the camera")
    p.add_argument("--dry-run", action="store_true", help="check and report, write nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``edge enroll``; 0 when at least two frames were kept."""
    try:
        golden_dir, frames = _collect(args)
    except EnrollError as exc:
        print(f"edge enroll: {exc}", file=sys.stderr)
        return 2
    checks = check_frames(frames)
    kept = [(c, image) for c, (_, image) in zip(checks, frames, strict=True) if c.kept]
    written = [] if args.dry_run else _write(golden_dir, args.sku, kept)
    print(summary(checks, golden_dir, written, args.dry_run))
    return 0 if len(kept) >= 2 else 1


def _collect(args: argparse.Namespace) -> tuple[Path, list[tuple[str, npt.NDArray[np.uint8]]]]:
    from edge.config.errors import ConfigError
    from edge.config.loader import load_config
    from edge.config.resolve import default_allowed_roots, resolve_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise EnrollError(str(exc)) from None
    sku = next((s for s in config.skus if s.id == args.sku), None)
    if sku is None:
        known = ", ".join(s.id for s in config.skus)
        raise EnrollError(f"SKU '{args.sku}' is not in {args.config} (its SKUs: {known})")
    golden_dir = Path(sku.golden_dir)
    if not golden_dir.is_absolute():
        golden_dir = args.config.resolve().parent / golden_dir
    if args.from_folder is not None:
        return golden_dir, _from_folder(args.from_folder)
    if args.frames < 2:
        raise EnrollError("--frames must be at least 2 (a golden bank needs part-to-part variation)")
    try:
        # The golden folder may be empty or missing: that is what enrollment is for.
        resolved = resolve_config(
            config, source=args.config, roots=default_allowed_roots(args.config), check_golden=False
        )
    except ConfigError as exc:
        raise EnrollError(str(exc)) from None
    return golden_dir, _from_camera(resolved, args.frames, args.interval)


def _from_folder(folder: Path) -> list[tuple[str, npt.NDArray[np.uint8]]]:
    if not folder.is_dir():
        raise EnrollError(f"--from-folder {folder}: not a folder")
    frames = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR) if path.is_file() else None
        if image is None:
            raise EnrollError(f"{path}: not a readable image (corrupt or not an image file)")
        rgb = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        frames.append((path.stem, rgb))
    if not frames:
        raise EnrollError(f"--from-folder {folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return frames


def _from_camera(resolved: Any, count: int, interval_s: float) -> list[tuple[str, npt.NDArray[np.uint8]]]:
    from edge.capture.errors import CaptureError
    from edge.capture.factory import open_source
    from edge.runtime.adapters import camera_settings

    frames = []
    try:
        with open_source(camera_settings(resolved)) as source:
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


def _write(golden_dir: Path, sku: str, kept: list[tuple[FrameCheck, npt.NDArray[np.uint8]]]) -> list[Path]:
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


def summary(checks: list[FrameCheck], golden_dir: Path, written: list[Path], dry_run: bool) -> str:
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
    elif not dry_run:
        lines.append("next: edge flash <config> (builds and self-tests the bank from them)")
    return "\n".join(lines)
