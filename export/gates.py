"""Numeric gates of reduced-precision artifacts against the FP32 export.

Thresholds are stated here, once, and recorded with the measured figures in the manifest:

* **INT8** (vision encoder, on held-out golden images never seen by the calibrator): mean per-location feature
  cosine >= 0.98 over all held-out images, every image's mean >= 0.95, every descriptor's cosine >= 0.97.
  Features are unit vectors per location and the anomaly score is ``1 - cosine``, so a mean cosine of 0.98
  shifts a score by about 0.02 on average (measured in docs/export.md).
* **FP16** (both encoders, on the fixed parity inputs): feature cosine mean >= 0.999 and min >= 0.99,
  descriptor cosine >= 0.999, anomaly max abs difference <= 5e-3, validity mask exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge.engines.base import Runner
from edge.engines.parity import ParityError, Tolerance, cosine_along_channels

FP16_VISION_TOLERANCES = {
    "features": Tolerance(mean_cosine=0.999, min_cosine=0.99),
    "descriptor": Tolerance(min_cosine=0.999),
}
FP16_COMPARISON_TOLERANCES = {"anomaly": Tolerance(max_abs=5e-3), "valid": Tolerance(max_abs=0.0)}


@dataclass(frozen=True)
class CosineGate:
    """Acceptance of a quantized vision encoder against FP32 on held-out images."""

    mean_feature: float = 0.98
    min_image_feature: float = 0.95
    min_descriptor: float = 0.97


INT8_GATE = CosineGate()


def feature_cosine_gate(
    reference: Runner,
    candidate: Runner,
    images: Sequence[np.ndarray],
    what: str,
    gate: CosineGate = INT8_GATE,
) -> dict[str, object]:
    """Compare a candidate vision encoder with the reference on ``images``, one image at a time (batch 1).

    Args:
        reference: FP32 vision encoder runner.
        candidate: Reduced-precision vision encoder runner.
        images: Held-out ``[H, W, 3]`` uint8 images.
        what: Names the candidate in the error.
        gate: Thresholds.

    Returns:
        Figures and thresholds, for the manifest.

    Raises:
        ParityError: Any threshold missed (or NaN outputs).

    """
    if not images:
        raise ParityError(f"{what}: no held-out images to gate on")
    per_image: list[float] = []
    descriptor: list[float] = []
    for image in images:
        feeds = {"image": image[None]}
        ref, got = reference.infer(feeds), candidate.infer(feeds)
        per_image.append(float(cosine_along_channels(ref["features"], got["features"]).mean()))
        descriptor.append(float(cosine_along_channels(ref["descriptor"], got["descriptor"]).min()))
    measured = {
        "mean_feature_cosine": float(np.mean(per_image)),
        "min_image_feature_cosine": float(np.min(per_image)),
        "min_descriptor_cosine": float(np.min(descriptor)),
    }
    limits = {
        "mean_feature_cosine": gate.mean_feature,
        "min_image_feature_cosine": gate.min_image_feature,
        "min_descriptor_cosine": gate.min_descriptor,
    }
    # `not >=` so that NaN fails.
    failures = [
        f"{key} {measured[key]:.4f} < {limit}" for key, limit in limits.items() if not measured[key] >= limit
    ]
    figures: dict[str, object] = {
        "reference": "fp32",
        "images": len(images),
        **measured,
        "thresholds": limits,
    }
    if failures:
        raise ParityError(f"{what} vs FP32 on {len(images)} held-out images: " + "; ".join(failures))
    return figures
