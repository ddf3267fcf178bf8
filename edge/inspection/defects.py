"""Synthetic defects drawn onto golden images: what the self-configuration measures what the station can see.

Five kinds, each seeded and each with its pixel mask, sized relative to the image and with a contrast
relative to the image's own grey-level spread (a defect that is obvious on one product is invisible on
another, so fixed grey levels would mean nothing):

* ``scratch``: a thin curved line, darker or brighter than its surroundings;
* ``spot``: a small filled blob (contamination, a burn mark, a pin-hole);
* ``cut_paste``: a patch of the same image moved elsewhere, rotated (a misplaced or extra component,
  a texture that does not belong there: CutPaste, Li et al. 2021);
* ``missing``: a region replaced by a heavily blurred version of itself (a missing feature or print);
* ``colour``: a region whose colour and brightness shift (a wrong material, a stain).

They are drawn away from the image border (where a line's placement error would hide them anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
KINDS = ("scratch", "spot", "cut_paste", "missing", "colour")


@dataclass(frozen=True)
class SyntheticDefect:
    """One golden image with a drawn defect."""

    image: Image  # RGB, same size as the source
    mask: npt.NDArray[np.bool_]  # True on the defect
    kind: str


def _spread(image: Image) -> float:
    lo, hi = np.percentile(image, [2, 98])
    return max(float(hi - lo), 24.0)


def _centre(rng: np.random.Generator, h: int, w: int, r: int) -> tuple[int, int]:
    margin_y, margin_x = max(r, h // 8), max(r, w // 8)
    return int(rng.integers(margin_x, max(margin_x + 1, w - margin_x))), int(
        rng.integers(margin_y, max(margin_y + 1, h - margin_y))
    )


def draw_defect(image: Image, kind: str, rng: np.random.Generator) -> SyntheticDefect:
    """Draw one defect of ``kind`` onto a copy of the RGB ``image``.

    Raises:
        ValueError: ``kind`` is not one of :data:`KINDS`.

    """
    if kind not in KINDS:
        raise ValueError(f"unknown synthetic defect '{kind}' (expected one of {KINDS})")
    h, w = image.shape[:2]
    short = min(h, w)
    out = image.astype(np.float32).copy()
    mask = np.zeros((h, w), np.uint8)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    contrast = sign * rng.uniform(0.35, 0.6) * _spread(image)
    if kind == "scratch":
        length = rng.uniform(0.12, 0.3) * short
        cx, cy = _centre(rng, h, w, int(length / 2))
        angle = rng.uniform(0, np.pi)
        bend = rng.uniform(-0.15, 0.15) * length
        t = np.linspace(-0.5, 0.5, 24)
        xs = cx + t * length * np.cos(angle) - bend * (1 - 4 * t**2) * np.sin(angle)
        ys = cy + t * length * np.sin(angle) + bend * (1 - 4 * t**2) * np.cos(angle)
        pts = np.stack([xs, ys], 1).round().astype(np.int32)
        cv2.polylines(mask, [pts], False, 255, max(2, round(short * 0.008)), cv2.LINE_AA)
        out += contrast * (mask[:, :, None] / 255.0)
    elif kind == "spot":
        r = max(3, round(rng.uniform(0.02, 0.05) * short))
        cx, cy = _centre(rng, h, w, r)
        axes = (r, max(2, round(r * rng.uniform(0.6, 1.0))))
        cv2.ellipse(mask, (cx, cy), axes, rng.uniform(0, 180), 0, 360, 255, -1, cv2.LINE_AA)
        tint = rng.uniform(0.7, 1.0, 3).astype(np.float32)
        out += contrast * tint * (mask[:, :, None] / 255.0)
    elif kind == "cut_paste":
        ph, pw = (max(6, round(rng.uniform(0.08, 0.16) * short)) for _ in range(2))
        sx, sy = int(rng.integers(0, w - pw)), int(rng.integers(0, h - ph))
        patch = image[sy : sy + ph, sx : sx + pw]
        k = int(rng.integers(1, 4))
        patch = np.rot90(patch, k).copy()
        ph, pw = patch.shape[:2]
        cx, cy = _centre(rng, h, w, max(ph, pw))
        x0 = int(np.clip(cx - pw // 2, 0, w - pw))
        y0 = int(np.clip(cy - ph // 2, 0, h - ph))
        out[y0 : y0 + ph, x0 : x0 + pw] = patch
        mask[y0 : y0 + ph, x0 : x0 + pw] = 255
    elif kind == "missing":
        r = max(5, round(rng.uniform(0.05, 0.1) * short))
        cx, cy = _centre(rng, h, w, r)
        cv2.circle(mask, (cx, cy), r, 255, -1)
        blurred = cv2.GaussianBlur(image, (0, 0), r * 0.8).astype(np.float32)
        soft = cv2.GaussianBlur(mask, (0, 0), 1.5)[:, :, None] / 255.0
        out = out * (1 - soft) + blurred * soft
    else:  # colour
        r = max(5, round(rng.uniform(0.05, 0.1) * short))
        cx, cy = _centre(rng, h, w, r)
        cv2.ellipse(mask, (cx, cy), (r, max(3, round(r * 0.7))), rng.uniform(0, 180), 0, 360, 255, -1)
        shift = rng.normal(0, 1, 3).astype(np.float32)
        shift = (shift / max(float(np.linalg.norm(shift)), 1e-6) * abs(contrast) * 0.8).astype(np.float32)
        soft = cv2.GaussianBlur(mask, (0, 0), 2.0)[:, :, None] / 255.0
        out += (shift * soft).astype(np.float32)
    result = np.clip(out, 0, 255).astype(np.uint8)
    return SyntheticDefect(image=result, mask=mask > 127, kind=kind)


def defect_set(
    images: Sequence[Image], per_kind: int, seed: int, kinds: Sequence[str] = KINDS
) -> list[tuple[int, SyntheticDefect]]:
    """``per_kind`` defects of each kind, drawn onto images picked in turn: ``(image index, defect)``."""
    rng = np.random.default_rng(seed)
    out = []
    n = 0
    for kind in kinds:
        for _ in range(per_kind):
            idx = n % len(images)
            n += 1
            out.append((idx, draw_defect(images[idx], kind, rng)))
    return out
