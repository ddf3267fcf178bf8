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
import logging
import sys
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.enroll.checks import check_frames
from edge.enroll.golden import EnrollError, capture_from_camera, summary, write_golden

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


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
    p.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="seconds of frames discarded after the camera starts (exposure and white balance settle)",
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
    written = [] if args.dry_run else write_golden(golden_dir, args.sku, kept)
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
    return golden_dir, capture_from_camera(resolved, args.frames, args.interval, args.warmup)


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
