"""Which captured frames may become golden images: the checks a careful engineer makes before enrolling.

A golden bank is only as good as its frames: a blurred or clipped frame teaches the station that blur or
glare is normal, a run of copies of one part hides the part-to-part variation the threshold is calibrated on,
and one frame unlike the rest (a part missing from the fixture, a hand in the picture, a defective part)
becomes a "good" example of a defect. Every limit below is relative to the batch itself (its median), not
a constant set on some product: a matt casting and a glossy PCB differ in sharpness and brightness, but a
blurred frame of either is blurred compared with its own siblings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

#: A frame whose sharpness (variance of the Laplacian) is below this share of the batch median is blurred.
BLUR_RATIO = 0.5
#: Share of pixels at the sensor's ends (<= 1 or >= 254) above which a frame is clipped. Pixels at an end
#: count only where the batch's median frame is not there too (a black background or a white backlight is
#: the scene, not clipping).
CLIPPED_SHARE = 0.02
#: Mean absolute difference (grey levels, 64x64 zero-mean thumbnails) below which two frames show the same
#: part: sensor noise averages out in a thumbnail (a 0.1 MP frame averages 25 pixels per thumbnail pixel,
#: so temporal noise of 3 grey levels leaves about 0.7), a different part of the same product does not.
DUPLICATE_MAD = 1.0
#: Robust z-score (median absolute deviation) of the distance to the batch's median frame above which a
#: frame is unlike the rest.
OUTLIER_Z = 6.0
THUMB = 64


@dataclass
class FrameCheck:
    """What the checks found about one frame."""

    name: str
    sharpness: float
    clipped_share: float
    problems: list[str] = field(default_factory=list)

    @property
    def kept(self) -> bool:
        """Whether the frame may be enrolled."""
        return not self.problems


def _grey(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if image.ndim == 2:
        return image
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), np.uint8)


def sharpness(grey: npt.NDArray[np.uint8]) -> float:
    """Variance of the Laplacian: high for a focused, detailed frame, low for a blurred one."""
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def _thumb(grey: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    return np.asarray(cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA), np.float32)


def check_frames(frames: Sequence[tuple[str, npt.NDArray[np.uint8]]]) -> list[FrameCheck]:
    """Check a batch of candidate golden frames ``(name, RGB or grey image)``; one result per frame, in order.

    Checks, each relative to the batch: focus (sharpness below :data:`BLUR_RATIO` x the median), exposure
    clipping (more than :data:`CLIPPED_SHARE` of the pixels at the sensor's ends where the median frame is
    not), near-duplicates of an earlier kept frame (:data:`DUPLICATE_MAD`), and a frame unlike the rest
    (distance to the median frame more than :data:`OUTLIER_Z` robust deviations above the batch's).
    """
    if not frames:
        return []
    greys = [_grey(image) for _, image in frames]
    sizes = {g.shape for g in greys}
    thumbs = np.stack([_thumb(g) for g in greys])
    median_thumb = np.median(thumbs, axis=0)
    scene_ends = (median_thumb <= 1.0) | (median_thumb >= 254.0)
    sharp = np.asarray([sharpness(g) for g in greys])
    median_sharp = float(np.median(sharp))
    distances = np.abs(thumbs - median_thumb[None]).mean(axis=(1, 2))
    d_median = float(np.median(distances))
    d_mad = float(np.median(np.abs(distances - d_median))) * 1.4826 + 1e-6
    results: list[FrameCheck] = []
    kept_thumbs: list[npt.NDArray[np.float32]] = []
    kept_names: list[str] = []
    for i, ((name, _), grey) in enumerate(zip(frames, greys, strict=True)):
        ends = (grey <= 1) | (grey >= 254)
        # Clipping the scene does not explain: compared at thumbnail scale with the median frame.
        scene = cv2.resize(scene_ends.astype(np.uint8), (grey.shape[1], grey.shape[0])) > 0
        clipped = float((ends & ~scene).mean())
        check = FrameCheck(name=name, sharpness=round(float(sharp[i]), 2), clipped_share=round(clipped, 4))
        if len(sizes) > 1 and grey.shape != greys[0].shape:
            check.problems.append(
                f"size {grey.shape[1]}x{grey.shape[0]} differs from the first frame's "
                f"{greys[0].shape[1]}x{greys[0].shape[0]} (another camera setting?)"
            )
        if len(frames) >= 3 and sharp[i] < BLUR_RATIO * median_sharp:
            check.problems.append(
                f"blurred: sharpness {sharp[i]:.0f} against the batch's median {median_sharp:.0f} "
                "(focus, motion or a dirty lens)"
            )
        if clipped > CLIPPED_SHARE:
            check.problems.append(
                f"exposure clipped: {100 * clipped:.1f}% of the pixels at black or white (exposure or gain)"
            )
        if len(frames) >= 5 and (distances[i] - d_median) / d_mad > OUTLIER_Z:
            check.problems.append(
                "unlike the rest of the batch (another part, a missing part, a hand or a defect in view?)"
            )
        for other, other_name in zip(kept_thumbs, kept_names, strict=True):
            # Zero-mean thumbnails: a light that flickers by a grey level or two does not make a new part.
            here = thumbs[i] - thumbs[i].mean()
            if float(np.abs(here - (other - other.mean())).mean()) < DUPLICATE_MAD:
                check.problems.append(f"the same part as {other_name} (present a different good part)")
                break
        if check.kept:
            kept_thumbs.append(thumbs[i])
            kept_names.append(name)
        results.append(check)
    return results
