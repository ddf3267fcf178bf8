"""A synthetic SKU the project generates itself: a machined plate with holes, a label and a fillet.

Every part differs a little from the next (placement, rotation, lighting, sensor noise), as on a line;
defective parts carry a scratch, a spot, a missing hole or a dent, with a pixel mask. Written in the MVTec AD
layout so ``edge eval`` scores it like any other dataset, and used by the demo and the end-to-end tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
DEFECTS = ("scratch", "spot", "missing_hole", "dent")


@dataclass(frozen=True)
class SyntheticPart:
    """One generated part image and its defect mask (all zeros for a good part)."""

    image: Image  # RGB
    mask: Image  # 255 = defect
    defect: str | None


def _background(size: int) -> Image:
    """The conveyor under the camera: brushed metal, fixed in the image while parts move over it."""
    canvas = np.full((size, size, 3), (52, 55, 60), np.float32)
    streaks = np.random.default_rng(7).normal(0, 6, size=(size, 1)).astype(np.float32)
    return np.asarray(np.clip(canvas + streaks[:, :, None], 0, 255), dtype=np.uint8)


def _plate_mask(size: int) -> Image:
    s = size / 256.0
    mask = np.zeros((size, size), np.uint8)
    cv2.rectangle(mask, (int(40 * s), int(48 * s)), (int(216 * s), int(208 * s)), 255, -1)
    return mask


def _base_part(size: int, rng: np.random.Generator) -> Image:
    canvas = np.zeros((size, size, 3), np.uint8)
    s = size / 256.0
    cv2.rectangle(canvas, (int(40 * s), int(48 * s)), (int(216 * s), int(208 * s)), (170, 172, 178), -1)
    cv2.rectangle(
        canvas, (int(40 * s), int(48 * s)), (int(216 * s), int(208 * s)), (120, 122, 128), max(1, int(3 * s))
    )
    for cx, cy in ((70, 78), (186, 78), (70, 178), (186, 178)):
        cv2.circle(canvas, (int(cx * s), int(cy * s)), int(11 * s), (35, 35, 38), -1)
        cv2.circle(canvas, (int(cx * s), int(cy * s)), int(14 * s), (140, 142, 148), max(1, int(2 * s)))
    cv2.rectangle(canvas, (int(96 * s), int(110 * s)), (int(160 * s), int(146 * s)), (230, 226, 210), -1)
    cv2.putText(
        canvas,
        "A7",
        (int(108 * s), int(138 * s)),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.8 * s,
        (30, 30, 90),
        max(1, int(2 * s)),
        cv2.LINE_AA,
    )
    cv2.line(
        canvas, (int(60 * s), int(196 * s)), (int(196 * s), int(196 * s)), (150, 150, 156), max(1, int(2 * s))
    )
    return np.asarray(canvas, dtype=np.uint8)


def _defect(image: Image, kind: str, rng: np.random.Generator) -> Image:
    size = image.shape[0]
    s = size / 256.0
    mask = np.zeros(image.shape[:2], np.uint8)
    if kind == "scratch":
        x0, y0 = rng.uniform(60, 190, 2) * s
        ang = rng.uniform(0, np.pi)
        length = rng.uniform(25, 45) * s
        p0 = (int(x0), int(y0))
        p1 = (int(x0 + length * np.cos(ang)), int(y0 + length * np.sin(ang)))
        cv2.line(image, p0, p1, (70, 70, 74), max(2, int(2 * s)), cv2.LINE_AA)
        cv2.line(mask, p0, p1, 255, max(2, int(2 * s)) + 2)
    elif kind == "spot":
        c = (int(rng.uniform(60, 190) * s), int(rng.uniform(60, 190) * s))
        r = int(rng.uniform(5, 9) * s)
        cv2.circle(image, c, r, (95, 60, 40), -1, cv2.LINE_AA)
        cv2.circle(mask, c, r + 1, 255, -1)
    elif kind == "missing_hole":
        cx, cy = ((70, 78), (186, 78), (70, 178), (186, 178))[int(rng.integers(0, 4))]
        c, r = (int(cx * s), int(cy * s)), int(12 * s)
        cv2.circle(image, c, r, (170, 172, 178), -1)
        cv2.circle(mask, c, r + 1, 255, -1)
    elif kind == "dent":
        c = (int(rng.uniform(70, 180) * s), int(rng.uniform(60, 100) * s))
        axes = (int(rng.uniform(8, 14) * s), int(rng.uniform(4, 7) * s))
        cv2.ellipse(image, c, axes, float(rng.uniform(0, 180)), 0, 360, (120, 120, 126), -1, cv2.LINE_AA)
        cv2.ellipse(mask, c, (axes[0] + 1, axes[1] + 1), 0, 0, 360, 255, -1)
    else:
        raise ValueError(f"unknown defect kind '{kind}' (expected one of {DEFECTS})")
    return mask


def make_part(rng: np.random.Generator, size: int = 256, defect: str | None = None) -> SyntheticPart:
    """Generate one part: the SKU's layout, placed and lit as a line would, optionally with a defect."""
    plate = _base_part(size, rng)
    mask = _defect(plate, defect, rng) if defect else np.zeros((size, size), np.uint8)
    angle = rng.uniform(-1.0, 1.0)
    dx, dy = rng.uniform(-4, 4, 2) * size / 256.0
    m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0)
    m[:, 2] += (dx, dy)
    # The part moves on a conveyor that stays put: warp the part layer only, then lay it on the belt.
    plate = np.asarray(cv2.warpAffine(plate, m, (size, size)), np.float32)
    alpha = np.asarray(cv2.warpAffine(_plate_mask(size), m, (size, size)), np.float32)[:, :, None] / 255.0
    image = np.asarray(plate * alpha + _background(size) * (1.0 - alpha), dtype=np.uint8)
    mask = np.asarray(cv2.warpAffine(mask, m, (size, size), flags=cv2.INTER_NEAREST), np.uint8)
    gain = rng.uniform(0.92, 1.08)
    noise = rng.normal(0, 2.5, image.shape)
    image = np.clip(image.astype(np.float32) * gain + noise, 0, 255).astype(np.uint8)
    return SyntheticPart(image=image, mask=mask, defect=defect)


def write_sku(
    root: Path,
    name: str = "synthetic_plate",
    n_golden: int = 12,
    n_good: int = 6,
    n_per_defect: int = 3,
    size: int = 256,
    seed: int = 0,
) -> Path:
    """Write a synthetic SKU in the MVTec AD layout under ``root/name``; returns the category folder."""
    rng = np.random.default_rng(seed)
    cat = root / name
    groups: list[tuple[str, str | None, int]] = [("train/good", None, n_golden), ("test/good", None, n_good)]
    groups += [(f"test/{d}", d, n_per_defect) for d in DEFECTS]
    for folder, defect, count in groups:
        out = cat / folder
        out.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            part = make_part(rng, size, defect)
            cv2.imwrite(str(out / f"{i:03d}.png"), cv2.cvtColor(part.image, cv2.COLOR_RGB2BGR))
            if defect:
                gt = cat / "ground_truth" / defect
                gt.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(gt / f"{i:03d}_mask.png"), part.mask)
    return cat
