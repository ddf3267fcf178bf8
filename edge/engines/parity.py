"""Numeric comparison of two engines' outputs, shared by the export gates and the load-time engine checks.

Outputs that are L2-normalised along the channel axis (features, descriptors) are compared by cosine
similarity, which is what the comparison encoder and retrieval consume; everything else by max abs difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from edge.engines.base import Array


class ParityError(RuntimeError):
    """An artifact or engine does not reproduce its reference outputs within tolerance."""


@dataclass(frozen=True)
class Tolerance:
    """Acceptance of one output against its reference.

    Attributes:
        max_abs: Largest allowed absolute difference (None: not checked).
        min_cosine: Smallest allowed cosine similarity along axis 1 at any location (None: not checked).
        mean_cosine: Smallest allowed mean cosine similarity along axis 1 (None: not checked).

    """

    max_abs: float | None = None
    min_cosine: float | None = None
    mean_cosine: float | None = None


def cosine_along_channels(ref: Array, got: Array) -> Array:
    """Cosine similarity along axis 1 at every other index (``[B, C, ...] -> [B, ...]``)."""
    a = np.asarray(ref, dtype=np.float64)
    b = np.asarray(got, dtype=np.float64)
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.asarray(num / np.maximum(den, 1e-12))


def compare(
    ref: Mapping[str, Array], got: Mapping[str, Array], tolerances: Mapping[str, Tolerance], what: str
) -> dict[str, dict[str, float]]:
    """Measure ``got`` against ``ref`` and raise :class:`ParityError` naming every output out of tolerance.

    Args:
        ref: Reference outputs by name.
        got: Outputs under test by name.
        tolerances: Acceptance per output name; outputs without one are only checked for shape.
        what: Names the artifact in the error (e.g. ``vision_encoder.int8.onnx vs fp32``).

    Returns:
        Measured figures per output (``max_abs``, ``min_cosine``, ``mean_cosine``), for the manifest.

    """
    report: dict[str, dict[str, float]] = {}
    failures: list[str] = []
    for name, want in ref.items():
        if name not in got:
            failures.append(f"{name}: missing")
            continue
        have = got[name]
        if have.shape != want.shape:
            failures.append(f"{name}: shape {have.shape}, expected {want.shape}")
            continue
        diff = np.abs(np.asarray(have, np.float64) - np.asarray(want, np.float64))
        figures = {"max_abs": float(diff.max()) if diff.size else 0.0}
        if want.ndim >= 2 and want.shape[1] > 1:  # a 1-channel map has no direction to compare
            cos = cosine_along_channels(want, have)
            figures["min_cosine"] = float(cos.min())
            figures["mean_cosine"] = float(cos.mean())
        report[name] = figures
        tol = tolerances.get(name)
        if tol is None:
            continue
        # `not x <= limit` so that a NaN fails the gate instead of slipping through.
        if tol.max_abs is not None and not figures["max_abs"] <= tol.max_abs:
            failures.append(f"{name}: max abs diff {figures['max_abs']:.3g} > {tol.max_abs}")
        if tol.mean_cosine is not None and not figures.get("mean_cosine", np.nan) >= tol.mean_cosine:
            failures.append(
                f"{name}: mean cosine {figures.get('mean_cosine', np.nan):.4f} < {tol.mean_cosine}"
            )
        if tol.min_cosine is not None and not figures.get("min_cosine", np.nan) >= tol.min_cosine:
            failures.append(f"{name}: min cosine {figures.get('min_cosine', np.nan):.4f} < {tol.min_cosine}")
    if failures:
        raise ParityError(f"{what}: " + "; ".join(failures))
    return report
