"""Register a golden template to the frame: gated phase correlation, then ECC (Euclidean), coarse to fine.

Real lines never place parts pixel-perfectly. Phase correlation alone locks onto wrong peaks on blank or
periodic content, so its answer is *gated* (weak peak or implausible shift -> start from identity) and only
seeds ECC, which refines translation and rotation to sub-pixel accuracy. Any ECC failure falls back to the
best earlier estimate, never to an exception: a part must always get a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.inspection.types import Registration

Gray = npt.NDArray[np.uint8]
Affine = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RegistrationSettings:
    """Tuning of the registration; defaults suit a part that may move a few percent of the field of view.

    Attributes:
        max_shift_frac: largest plausible translation, as a fraction of the image's longer side.
        max_angle_deg: largest plausible rotation.
        min_peak: phase-correlation response below which its shift is not trusted.
        ecc_iterations: iterations per coarse pyramid level.
        ecc_fine_iterations: iterations at full resolution (ECC arrives there already close).
        ecc_eps: convergence threshold of ECC.
        levels: pyramid levels (each halves the size); the coarsest absorbs large shifts cheaply.
        finest_level: the finest pyramid level ECC runs on (1 = half size): half a registration-image pixel
            of residual is absorbed by the pixel comparison's edge tolerance, at a third of the cost.
        trust_ecc: ECC's own correlation above which its answer is taken without a second opinion.

    """

    max_shift_frac: float = 0.1
    max_angle_deg: float = 5.0
    min_peak: float = 0.05
    ecc_iterations: int = 40
    ecc_fine_iterations: int = 20
    ecc_eps: float = 1e-4
    levels: int = 3
    finest_level: int = 1
    trust_ecc: float = 0.5


def identity() -> Affine:
    """The 2x3 identity transform."""
    return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _scaling(scale: float | tuple[float, float]) -> npt.NDArray[np.float64]:
    sx, sy = (scale, scale) if isinstance(scale, float | int) else scale
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


def scale_affine(
    matrix: Affine, scale_in: float | tuple[float, float], scale_out: float | tuple[float, float]
) -> Affine:
    """Re-express a 2x3 map for images resized by the given factors (pixel-centre convention).

    ``matrix`` maps points of image A to points of image B. For A resized by ``scale_in`` and B by
    ``scale_out`` (a factor, or ``(sx, sy)``), returns the map between the resized images, using
    ``x' = (x + 0.5) * s - 0.5``.
    """
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    out: Affine = (_scaling(scale_out) @ full @ np.linalg.inv(_scaling(scale_in)))[:2]
    return out


def _phase_shift(
    frame: npt.NDArray[np.float32], template: npt.NDArray[np.float32]
) -> tuple[float, float, float]:
    window = cv2.createHanningWindow(frame.shape[::-1], cv2.CV_32F)
    (dx, dy), peak = cv2.phaseCorrelate(frame, template, window)
    return float(dx), float(dy), float(peak)


def _correlation(frame: Gray, template: Gray, matrix: Affine) -> float:
    h, w = frame.shape
    warped = cv2.warpAffine(
        template,
        matrix,
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    mask = (
        cv2.warpAffine(
            np.full_like(template, 255),
            matrix,
            (w, h),
            flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
            borderValue=0,
        )
        > 0
    )
    a = frame[mask].astype(np.float64)
    b = warped[mask].astype(np.float64)
    if a.size < 16:
        return -1.0
    a -= a.mean()
    b -= b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def _plausible(matrix: Affine, max_shift: float, max_angle_deg: float) -> bool:
    angle = np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))
    return bool(
        np.isfinite(matrix).all()
        and np.hypot(matrix[0, 2], matrix[1, 2]) <= max_shift
        and abs(angle) <= max_angle_deg
    )


def register(frame: Gray, template: Gray, settings: RegistrationSettings | None = None) -> Registration:
    """Estimate the frame->template map (translation + rotation) of two same-size grayscale images.

    Args:
        frame: the inspected image (uint8, HxW).
        template: the golden image (uint8, same size).
        settings: tuning; defaults when None.

    Returns:
        The registration; ``matrix`` warps the template onto the frame with ``WARP_INVERSE_MAP``.

    """
    cfg = settings or RegistrationSettings()
    if frame.shape != template.shape:
        raise ValueError(f"frame {frame.shape} and template {template.shape} must have the same size")
    h, w = frame.shape
    max_shift = cfg.max_shift_frac * max(h, w)

    # Everything runs on a pyramid: the coarsest level seeds, the finest used level decides.
    pyramid: dict[int, tuple[npt.NDArray[Any], npt.NDArray[Any]]] = {0: (frame, template)}
    for level in range(1, cfg.levels):
        scale = 0.5**level
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        pyramid[level] = (
            cv2.resize(frame, size, interpolation=cv2.INTER_AREA),
            cv2.resize(template, size, interpolation=cv2.INTER_AREA),
        )
    # Phase correlation on a smoothed copy of the coarsest level: a gated seed for ECC.
    top = cfg.levels - 1
    top_scale = 0.5**top
    f32 = cv2.GaussianBlur(pyramid[top][0], (0, 0), 1.0).astype(np.float32)
    t32 = cv2.GaussianBlur(pyramid[top][1], (0, 0), 1.0).astype(np.float32)
    dx, dy, peak = _phase_shift(f32, t32)
    dx, dy = dx / top_scale, dy / top_scale
    seed = identity()
    method = "identity"
    if peak >= cfg.min_peak and np.hypot(dx, dy) <= max_shift:
        # phaseCorrelate(frame, template) returns where the template content sits relative to the frame.
        seed[0, 2], seed[1, 2] = dx, dy
        method = "phase"

    matrix, ecc_quality = seed, None
    for level in range(cfg.levels - 1, cfg.finest_level - 1, -1):
        scale = 0.5**level
        fl, tl = pyramid[level]
        start = scale_affine(matrix, scale, scale)
        # The coarse levels do the travelling; the full-resolution level only polishes.
        iterations = cfg.ecc_iterations if level > cfg.finest_level else cfg.ecc_fine_iterations
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, cfg.ecc_eps)
        try:
            # inputMask=None is accepted at run time; the stubs only declare it for the 6-argument form.
            cc, refined = cv2.findTransformECC(  # type: ignore[call-overload]
                fl, tl, start.astype(np.float32), cv2.MOTION_EUCLIDEAN, criteria, None, 5
            )
        except cv2.error:
            break  # ECC diverged or images too flat: keep the best earlier estimate.
        candidate = scale_affine(refined.astype(np.float64), 1.0 / scale, 1.0 / scale)
        if not _plausible(candidate, max_shift, cfg.max_angle_deg):
            break
        matrix = candidate
        if level == cfg.finest_level:
            ecc_quality = float(cc)
    if ecc_quality is not None and ecc_quality >= cfg.trust_ecc:
        return Registration(matrix=matrix, quality=ecc_quality, method="ecc")
    # ECC failed or converged somewhere doubtful: keep whichever estimate explains the frame best.
    candidates: list[tuple[Affine, str]] = [(seed, method)]
    if method == "phase":
        candidates.append((identity(), "identity"))
    if ecc_quality is not None:
        candidates.append((matrix, "ecc"))
    best_matrix, best_method, best_q = identity(), "identity", -2.0
    for cand, name in candidates:
        q = _correlation(frame, template, cand)
        if q > best_q + 1e-6:
            best_matrix, best_method, best_q = cand, name, q
    return Registration(matrix=best_matrix, quality=best_q, method=best_method)


def warp_to_frame(
    template: npt.NDArray[Any],
    matrix: Affine,
    size: tuple[int, int],
    interpolation: int = cv2.INTER_LINEAR,
) -> npt.NDArray[Any]:
    """Warp a template (any channel count <= 4) onto the frame grid of ``size`` = (width, height)."""
    out: npt.NDArray[Any] = cv2.warpAffine(
        template,
        matrix,
        size,
        flags=interpolation | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return out


def valid_mask(
    template_shape: tuple[int, int], matrix: Affine, size: tuple[int, int]
) -> npt.NDArray[np.bool_]:
    """Frame pixels that the warped template actually covers."""
    ones = np.full(template_shape, 255, np.uint8)
    return warp_to_frame(ones, matrix, size, cv2.INTER_NEAREST) > 0
