"""Image sizes of one SKU: the frame size its golden images agree on, a model input that keeps its shape.

Rules (documented in ``docs/config.md``):

* **SKU frame size** = the median height and the median width of the golden images. Every golden image and
  every frame is resized to it (area interpolation), so golden images that differ by a few pixels, or crops
  of a surface that are each another size, are accepted, never refused.
* **Accepted aspect ratios** = the golden images' own range, widened by :data:`ASPECT_TOLERANCE`. A frame
  outside it shows something the golden set never did (another camera, another ROI) and gets a clear error;
  golden images far from the median aspect get a warning at flash time (they are squashed to the SKU size).
* **Model input** = the reference short side (``model.input_size``, 320 by default) and the long side that
  keeps the SKU's aspect ratio as closely as multiples of 64 allow (ties go to the smaller, cheaper side),
  capped at :data:`MAX_ELONGATION` times the short side. A 500x1250 part runs at 320x832, not squashed into
  320x320 (measured on VisA fryum, 750x500: patch-memory AUROC 0.878 at 320x320, 0.945 at 320x448, 0.954
  at 320x512).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

#: Multiple of the model input sides (the descriptor's 4x4 grid over the stride-16 map).
SIDE_MULTIPLE = 64
#: Longest model input side in units of the short side.
MAX_ELONGATION = 3.0
#: Frames may differ this much (relative) from the golden images' aspect range.
ASPECT_TOLERANCE = 0.05
#: Golden images whose aspect differs more than this (relative) from the median get a flash warning.
ASPECT_WARNING = 0.15


@dataclass(frozen=True)
class SkuGeometry:
    """Sizes one SKU runs at.

    Attributes:
        image_size: (height, width) every golden image and frame is resized to.
        input_size: (height, width) of the model input for this SKU.
        aspect_range: (min, max) width/height ratio a frame may have.
        squashed: ids of golden images whose aspect ratio is far from the SKU's (warned at flash time).

    """

    image_size: tuple[int, int]
    input_size: tuple[int, int]
    aspect_range: tuple[float, float]
    squashed: tuple[str, ...] = ()


def sku_input_size(image_size: tuple[int, int], reference: tuple[int, int]) -> tuple[int, int]:
    """Model input (height, width) for images of ``image_size``: short side of ``reference``, aspect kept."""
    h, w = image_size
    short = min(reference)
    aspect = max(h, w) / min(h, w)
    limit = max(1, math.floor(short * MAX_ELONGATION / SIDE_MULTIPLE))
    candidates = range(max(1, short // SIDE_MULTIPLE), limit + 1)
    # Closest aspect in log terms; the smaller side wins a tie (cheaper, and no detail is invented).
    best = min(candidates, key=lambda m: (round(abs(math.log(m * SIDE_MULTIPLE / short / aspect)), 9), m))
    long = best * SIDE_MULTIPLE
    return (short, long) if w >= h else (long, short)


def sku_geometry(
    sizes: Sequence[tuple[int, int]], ids: Sequence[str], reference: tuple[int, int]
) -> SkuGeometry:
    """The sizes a SKU runs at, from its golden images' (height, width)."""
    if not sizes:
        raise ValueError("no golden image sizes")
    hs = np.array([s[0] for s in sizes], float)
    ws = np.array([s[1] for s in sizes], float)
    image_size = (round(float(np.median(hs))), round(float(np.median(ws))))
    aspects = ws / hs
    median_aspect = image_size[1] / image_size[0]
    far = np.abs(np.log(aspects / median_aspect)) > math.log1p(ASPECT_WARNING)
    return SkuGeometry(
        image_size=image_size,
        input_size=sku_input_size(image_size, reference),
        aspect_range=(
            float(aspects.min()) / (1 + ASPECT_TOLERANCE),
            float(aspects.max()) * (1 + ASPECT_TOLERANCE),
        ),
        squashed=tuple(i for i, bad in zip(ids, far, strict=True) if bad),
    )


def resize_to(image: npt.NDArray[np.uint8], size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """``image`` at the SKU's frame ``size`` (height, width), area-interpolated; unchanged when it fits."""
    if image.shape[:2] == size:
        return image
    return np.asarray(cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA), np.uint8)
