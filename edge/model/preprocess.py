"""Turn a camera image into the views the inspection needs: model input, registration and fine greyscale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

THUMB_SIDE = 16


class ImageError(ValueError):
    """An image the inspection cannot use (wrong type, shape or size)."""


@dataclass(frozen=True)
class ViewSettings:
    """Resolutions of the inspection's views.

    Attributes:
        reg_side: longer side of the greyscale image used for registration.
        fine_side: longer side (cap) of the greyscale image used for the pixel-level comparison.

    """

    reg_side: int = 320
    fine_side: int = 640


@dataclass
class PreparedImage:
    """The views of one image."""

    size: tuple[int, int]  # original (height, width)
    model_input: npt.NDArray[np.uint8]  # [H_in, W_in, 3] RGB
    gray_reg: npt.NDArray[np.uint8]
    gray_fine: npt.NDArray[np.uint8]
    thumb: npt.NDArray[np.float32]  # zero-mean, unit-norm 16x16 greyscale thumbnail

    @property
    def reg_scale(self) -> float:
        """Registration-image pixels per original pixel."""
        return float(self.gray_reg.shape[1]) / self.size[1]

    @property
    def fine_scale(self) -> float:
        """Fine-image pixels per original pixel."""
        return float(self.gray_fine.shape[1]) / self.size[1]


def as_rgb(image: npt.NDArray[Any], where: str = "image") -> npt.NDArray[np.uint8]:
    """Validate an image and return it as contiguous uint8 RGB ``[H, W, 3]``."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{where}: expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageError(f"{where}: expected uint8 pixels, got {image.dtype}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    elif not (image.ndim == 3 and image.shape[2] == 3):
        raise ImageError(f"{where}: expected HxW, HxWx1, HxWx3 or HxWx4, got shape {image.shape}")
    if min(image.shape[:2]) < 32:
        raise ImageError(f"{where}: image {image.shape[1]}x{image.shape[0]} is too small (min 32 px a side)")
    return np.ascontiguousarray(image, dtype=np.uint8)


def _resize_long(gray: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.uint8]:
    h, w = gray.shape
    scale = min(1.0, side / max(h, w))
    if scale >= 1.0:
        return gray
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    return out


def thumbnail(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Zero-mean unit-norm 16x16 thumbnail: normalised cross-correlation by a dot product."""
    t = cv2.resize(gray, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    t -= t.mean()
    n = float(np.linalg.norm(t))
    return t / n if n > 0 else t


def prepare(
    image: npt.NDArray[Any], input_size: tuple[int, int], views: ViewSettings, where: str = "image"
) -> PreparedImage:
    """Validate ``image`` and compute its views.

    Args:
        image: uint8 greyscale or RGB(A) image.
        input_size: (height, width) of the vision encoder.
        views: resolutions of the registration and fine views.
        where: what to call the image in error messages.

    """
    rgb = as_rgb(image, where)
    h, w = rgb.shape[:2]
    model_input = cv2.resize(rgb, (input_size[1], input_size[0]), interpolation=cv2.INTER_AREA)
    gray = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    gray_fine = _resize_long(gray, views.fine_side)
    gray_reg = _resize_long(gray_fine, views.reg_side)
    return PreparedImage(
        size=(h, w),
        model_input=np.ascontiguousarray(model_input),
        gray_reg=gray_reg,
        gray_fine=gray_fine,
        thumb=thumbnail(gray_reg),
    )
