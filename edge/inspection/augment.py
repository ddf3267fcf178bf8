"""What a production line does to a part's image: small placement error, lighting drift, sensor noise, blur.

Used by threshold calibration (golden images seen "as the line would show them") and by ``edge eval
--perturb line``. Seeded, so every run is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class LinePerturbation:
    """Ranges of the nuisance a line introduces (uniform in +-range unless stated).

    Attributes:
        max_shift_px: translation per axis, in pixels of a 640-pixel-wide image (scaled with image size).
        max_angle_deg: rotation about the image centre.
        brightness: additive brightness change as a fraction of full scale.
        contrast: multiplicative contrast change.
        noise_sigma: Gaussian sensor noise (grey levels).
        blur_sigma: (min, max) Gaussian blur sigma, pixels.

    """

    max_shift_px: float = 8.0
    max_angle_deg: float = 1.5
    brightness: float = 0.15
    contrast: float = 0.15
    noise_sigma: float = 5.0
    blur_sigma: tuple[float, float] = (0.5, 1.0)

    def apply(self, image: Image, rng: np.random.Generator) -> tuple[Image, npt.NDArray[np.float64]]:
        """Perturb ``image``; returns the image and the 2x3 map from original to perturbed coordinates."""
        h, w = image.shape[:2]
        scale = max(h, w) / 640.0
        dx, dy = rng.uniform(-self.max_shift_px, self.max_shift_px, 2) * scale
        angle = rng.uniform(-self.max_angle_deg, self.max_angle_deg)
        matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
        matrix[0, 2] += dx
        matrix[1, 2] += dy
        out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        gain = 1.0 + rng.uniform(-self.contrast, self.contrast)
        bias = rng.uniform(-self.brightness, self.brightness) * 255.0
        mean = float(out.mean())
        x = (out.astype(np.float32) - mean) * gain + mean + bias
        x += rng.normal(0.0, self.noise_sigma, size=x.shape).astype(np.float32)
        x = np.clip(x, 0, 255).astype(np.uint8)
        sigma = rng.uniform(*self.blur_sigma)
        x = cv2.GaussianBlur(x, (0, 0), sigma)
        return x, matrix.astype(np.float64)


def transform_box(
    box: tuple[float, float, float, float], matrix: npt.NDArray[np.float64]
) -> tuple[float, ...]:
    """Axis-aligned bounds of an ``(x1, y1, x2, y2)`` box after a 2x3 map."""
    x1, y1, x2, y2 = box
    pts = np.array([[x1, y1, 1.0], [x2, y1, 1.0], [x1, y2, 1.0], [x2, y2, 1.0]]) @ matrix.T
    return (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))
