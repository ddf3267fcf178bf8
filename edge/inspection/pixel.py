"""Pixel-level comparison: a tolerant difference of the frame against each registered template.

Used when the golden parts show that the product is pixel-repeatable (per-SKU ``pixel_compare``): frozen
features are coarse (stride 8), and a defect a few pixels wide shows here first.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.inspection.bank import SkuBank
from edge.inspection.registration import scale_affine, warp_to_frame
from edge.inspection.settings import InspectorSettings
from edge.inspection.types import Registration
from edge.model.preprocess import PreparedImage

FloatMap = npt.NDArray[np.float32]


def pixel_map(
    cfg: InspectorSettings,
    prepared: PreparedImage,
    bank: SkuBank,
    hits: list[tuple[int, float]],
    regs: list[Registration],
    compare: bool,
) -> tuple[FloatMap, npt.NDArray[np.bool_]]:
    """Tolerant pixel difference against each registered template (best per pixel) and where it is valid.

    Without ``compare`` the map is zero and valid wherever the frame's own edge allows.
    """
    fine_h, fine_w = prepared.gray_fine.shape
    # A pixel is comparable only if its whole comparison neighbourhood (blur, edge tolerance, opening)
    # lies on template content; near the warped template's edge the comparison sees padding.
    margin = cfg.border_px + cfg.tolerance_px + cfg.min_defect_width_px // 2
    margin += math.ceil(2 * cfg.pixel_blur)
    best: npt.NDArray[Any] = np.full((fine_h, fine_w), 255, np.uint8)
    covered: npt.NDArray[Any] = np.full((fine_h, fine_w), 0 if compare else 255, np.uint8)
    if compare:
        # All in uint8 with OpenCV's saturating arithmetic: an order of magnitude faster than float.
        fine_ratio = fine_w / prepared.gray_reg.shape[1]
        frame = cv2.GaussianBlur(prepared.gray_fine, (0, 0), cfg.pixel_blur)
        size = (fine_w, fine_h)
        kernel = np.ones((2 * cfg.tolerance_px + 1,) * 2, np.uint8)
        border = np.ones((2 * margin + 1,) * 2, np.uint8)
        width = cfg.min_defect_width_px
        opening = np.ones((width, width), np.uint8) if width > 1 else None
        for (idx, _), reg in zip(hits, regs, strict=True):
            m_fine = scale_affine(reg.matrix, fine_ratio, fine_ratio)
            tmpl = cv2.GaussianBlur(bank.gray_fine[idx], (0, 0), cfg.pixel_blur)
            warped = warp_to_frame(tmpl, m_fine, size)
            ones = np.full_like(bank.gray_fine[idx], 255)
            valid = cv2.erode(warp_to_frame(ones, m_fine, size, cv2.INTER_NEAREST), border)
            if cv2.countNonZero(valid) < 16:
                continue
            # Photometric alignment: the line's lighting drifts; match the template's gain and offset.
            f_mean, f_std = cv2.meanStdDev(frame, mask=valid)
            t_mean, t_std = cv2.meanStdDev(warped, mask=valid)
            gain = float(np.clip(f_std[0, 0] / max(float(t_std[0, 0]), 1e-3), 0.5, 2.0))
            offset = float(f_mean[0, 0] - gain * t_mean[0, 0])
            warped = cv2.addWeighted(warped, gain, warped, 0.0, offset)
            diff = cv2.max(
                cv2.subtract(frame, cv2.dilate(warped, kernel)),
                cv2.subtract(cv2.erode(warped, kernel), frame),
            )
            if opening is not None:
                diff = cv2.morphologyEx(diff, cv2.MORPH_OPEN, opening)
            best = cv2.min(best, cv2.bitwise_or(diff, cv2.bitwise_not(valid)))
            covered = cv2.bitwise_or(covered, valid)
    # The same holds at the frame's own edge: there the blur and tolerance windows see padding.
    covered[:margin, :] = 0
    covered[-margin:, :] = 0
    covered[:, :margin] = 0
    covered[:, -margin:] = 0
    valid_fine = covered > 0
    if not compare:
        return np.zeros((fine_h, fine_w), np.float32), valid_fine
    best_f = np.where(valid_fine, best, 0).astype(np.float32)
    pixel = cv2.GaussianBlur(best_f, (0, 0), cfg.map_smooth) if cfg.map_smooth > 0 else best_f
    return np.asarray(pixel, np.float32), valid_fine
