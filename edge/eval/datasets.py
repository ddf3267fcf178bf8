"""Readers for the two evaluation layouts: MVTec AD and DeepPCB (auto-detected)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.inspection.box_scoring import BoxXYXY, mask_boxes

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


class DatasetError(ValueError):
    """A dataset folder that matches neither layout, or a malformed annotation."""


@dataclass
class Sample:
    """One image to inspect with its ground truth."""

    path: Path
    defective: bool
    boxes: list[BoxXYXY] = field(default_factory=list)  # x1, y1, x2, y2 (exclusive) in image pixels
    template_id: str | None = None  # the golden image it should be compared with, when known (DeepPCB)
    mask_path: Path | None = None


@dataclass
class Category:
    """One SKU: golden images and test samples."""

    name: str
    golden: list[Path]
    samples: list[Sample]
    layout: str  # "mvtec" | "deeppcb"


def read_image(path: Path) -> npt.NDArray[np.uint8]:
    """Read an image as RGB uint8; raises :class:`DatasetError` naming the file."""
    data = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if data is None:
        raise DatasetError(f"{path}: not a readable image")
    out = np.asarray(cv2.cvtColor(data, cv2.COLOR_BGR2RGB), dtype=np.uint8)
    return out


def _images(folder: Path) -> list[Path]:
    return (
        sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    )


def _is_mvtec_category(path: Path) -> bool:
    return (path / "train" / "good").is_dir() and (path / "test").is_dir()


def _is_deeppcb_group(path: Path) -> bool:
    return path.name.startswith("group") and any(path.glob("*/*_temp.jpg"))


def load_mvtec_category(path: Path) -> Category:
    """MVTec AD layout: train/good golden images, test/<defect>/ images, ground_truth masks."""
    golden = _images(path / "train" / "good")
    samples: list[Sample] = []
    for defect_dir in sorted(d for d in (path / "test").iterdir() if d.is_dir()):
        for img in _images(defect_dir):
            if defect_dir.name == "good":
                samples.append(Sample(path=img, defective=False))
                continue
            mask_path = path / "ground_truth" / defect_dir.name / f"{img.stem}_mask.png"
            boxes: list[BoxXYXY] = []
            if mask_path.exists():
                mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
                if mask is None:
                    raise DatasetError(f"{mask_path}: not a readable mask")
                boxes = mask_boxes(np.asarray(mask, dtype=np.uint8))
            samples.append(
                Sample(
                    path=img, defective=True, boxes=boxes, mask_path=mask_path if mask_path.exists() else None
                )
            )
    return Category(name=path.name, golden=golden, samples=samples, layout="mvtec")


def read_deeppcb_boxes(path: Path) -> list[BoxXYXY]:
    """``x1 y1 x2 y2 type`` per line, space- or comma-separated."""
    boxes: list[BoxXYXY] = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
        if not parts:
            continue
        if len(parts) < 4:
            raise DatasetError(f"{path}:{lineno}: expected 'x1 y1 x2 y2 type', got {line!r}")
        x1, y1, x2, y2 = (float(v) for v in parts[:4])
        boxes.append((x1, y1, x2, y2))
    return boxes


def load_deeppcb_group(path: Path) -> Category:
    """DeepPCB layout: ``NNNNN/<id>_temp.jpg`` golden, ``<id>_test.jpg`` tested, boxes in ``NNNNN_not/``."""
    golden: list[Path] = []
    samples: list[Sample] = []
    for sub in sorted(d for d in path.iterdir() if d.is_dir() and not d.name.endswith("_not")):
        for temp in sorted(sub.glob("*_temp.jpg")):
            golden.append(temp)
            ident = temp.name[: -len("_temp.jpg")]
            test = sub / f"{ident}_test.jpg"
            ann = path / f"{sub.name}_not" / f"{ident}.txt"
            if test.exists():
                boxes = read_deeppcb_boxes(ann) if ann.exists() else []
                samples.append(Sample(path=test, defective=bool(boxes), boxes=boxes, template_id=temp.stem))
    return Category(name=path.name, golden=golden, samples=samples, layout="deeppcb")


def discover(root: Path) -> list[Category]:
    """Every category (MVTec) or board group (DeepPCB) under ``root``, or ``root`` itself."""
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    if _is_mvtec_category(root):
        return [load_mvtec_category(root)]
    if _is_deeppcb_group(root):
        return [load_deeppcb_group(root)]
    found: list[Category] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if _is_mvtec_category(child):
            found.append(load_mvtec_category(child))
        elif _is_deeppcb_group(child):
            found.append(load_deeppcb_group(child))
    if not found:
        raise DatasetError(
            f"{root}: neither an MVTec AD category (train/good, test/) nor DeepPCB groups (groupNNNNN/) found"
        )
    return found


def iter_golden(category: Category, k: int | None) -> Iterator[tuple[str, npt.NDArray[np.uint8]]]:
    """The first ``k`` golden images (all when None), as (template id, RGB image)."""
    paths = category.golden if k is None else category.golden[:k]
    for p in paths:
        yield p.stem, read_image(p)
