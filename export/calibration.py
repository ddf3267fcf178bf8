"""Golden images for INT8 calibration and its held-out check, prepared exactly as the runtime prepares frames.

The set is identified by a hash of its sorted file hashes (independent of file names and order), recorded in
the manifest so an INT8 artifact can always be traced to the images it was calibrated on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.model.backbone_catalog import file_sha256
from edge.model.preprocess import ImageError, ViewSettings, prepare
from edge.synthetic.parts import make_part

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
MIN_IMAGES = 4
HOLD_OUT_EVERY = 5
Image = npt.NDArray[np.uint8]


class CalibrationError(ValueError):
    """The calibration images cannot be used (missing, unreadable, too few)."""


@dataclass
class CalibrationSet:
    """Model inputs ``[H, W, 3]`` uint8 RGB for calibration and for the held-out gate.

    Attributes:
        calibrate: Images the quantizer computes activation ranges on.
        held_out: Images never seen by the quantizer; the INT8 gate is measured on them.
        sha256: Hash of the sorted SHA-256s of all source files (or of the generated pixels).
        source: Where the images came from (directory or ``synthetic:<seed>``).

    """

    calibrate: list[Image]
    held_out: list[Image]
    sha256: str
    source: str
    input_size: tuple[int, int] = (0, 0)
    files: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, object]:
        """Manifest entry."""
        return {
            "sha256": self.sha256,
            "source": self.source,
            "calibration_images": len(self.calibrate),
            "held_out_images": len(self.held_out),
            "input_size": list(self.input_size),
        }


def image_files(directory: Path) -> list[Path]:
    """Image files under ``directory`` (recursively), sorted by relative path."""
    if not directory.is_dir():
        raise CalibrationError(f"calibration directory {directory} does not exist or is not a directory")
    return sorted(
        (p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
        key=lambda p: p.relative_to(directory).as_posix(),
    )


def set_hash(file_hashes: list[str]) -> str:
    """Order- and name-independent identity of a set of files."""
    return hashlib.sha256("\n".join(sorted(file_hashes)).encode()).hexdigest()


def _split(images: list[Image], max_calibration: int) -> tuple[list[Image], list[Image]]:
    held = [im for i, im in enumerate(images) if i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1]
    rest = [im for i, im in enumerate(images) if i % HOLD_OUT_EVERY != HOLD_OUT_EVERY - 1]
    if not held:
        held, rest = rest[-1:], rest[:-1]
    if len(rest) > max_calibration:
        # Evenly spread, so a directory sorted by capture time still covers the whole shift.
        picks = np.linspace(0, len(rest) - 1, max_calibration).round().astype(int)
        rest = [rest[i] for i in picks]
    return rest, held


def load_calibration(
    directory: Path, input_size: tuple[int, int], max_calibration: int = 64, max_images: int = 400
) -> CalibrationSet:
    """Read golden images from ``directory`` and split them into calibration and held-out sets.

    Every fifth image (sorted by path) is held out. Images go through the runtime's own preprocessing
    (:func:`edge.model.preprocess.prepare`), so the quantizer sees the activation ranges a station sees.

    Args:
        directory: Folder of golden images (searched recursively).
        input_size: (height, width) of the vision encoder.
        max_calibration: Cap on calibration images (evenly spread over the set).
        max_images: Cap on images read at all.

    Raises:
        CalibrationError: Directory missing, fewer than :data:`MIN_IMAGES` images, or an unreadable image
            (named).

    """
    files = image_files(directory)[:max_images]
    if len(files) < MIN_IMAGES:
        raise CalibrationError(
            f"{directory}: {len(files)} images found, need at least {MIN_IMAGES} "
            f"({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    images: list[Image] = []
    views = ViewSettings()
    for path in files:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise CalibrationError(f"{path}: not a readable image")
        try:
            images.append(
                prepare(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), input_size, views, str(path)).model_input
            )
        except ImageError as exc:
            raise CalibrationError(str(exc)) from exc
    calibrate, held_out = _split(images, max_calibration)
    return CalibrationSet(
        calibrate=calibrate,
        held_out=held_out,
        sha256=set_hash([file_sha256(p) for p in files]),
        source=str(directory),
        input_size=input_size,
        files=[p.relative_to(directory).as_posix() for p in files],
    )


def synthetic_calibration(input_size: tuple[int, int], count: int = 15, seed: int = 0) -> CalibrationSet:
    """Golden parts of the project's synthetic SKU, for when no real golden images are at hand."""
    rng = np.random.default_rng(seed)
    views = ViewSettings()
    images = [prepare(make_part(rng).image, input_size, views, "synthetic").model_input for _ in range(count)]
    calibrate, held_out = _split(images, count)
    return CalibrationSet(
        calibrate=calibrate,
        held_out=held_out,
        sha256=set_hash([hashlib.sha256(im.tobytes()).hexdigest() for im in images]),
        source=f"synthetic:seed={seed},count={count}",
        input_size=input_size,
    )
