"""Enrollment checks: each bad kind of frame is dropped for its own reason, good different parts are kept."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from edge.enroll.checks import check_frames


def _part(seed: int, size: int = 320) -> npt.NDArray[np.uint8]:
    """A textured good part: the same design, each part a little different (position, texture, light)."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 90, np.uint8)
    c = size // 2
    cv2.circle(
        image, (c + int(rng.integers(-6, 7)), c + int(rng.integers(-6, 7))), size // 3, (170, 160, 150), -1
    )
    noise = rng.normal(0, 12, (size, size, 1))
    image = np.clip(image.astype(np.float32) + noise + rng.normal(0, 4), 0, 255).astype(np.uint8)
    for _ in range(6):
        x, y = (int(v) for v in rng.integers(size // 4, 3 * size // 4, 2))
        cv2.line(image, (x, y), (x + 20, y + 8), (60, 60, 60), 2)
    return image


def _batch() -> list[tuple[str, npt.NDArray[np.uint8]]]:
    return [(f"good{i}", _part(i)) for i in range(8)]


def test_different_good_parts_are_all_kept() -> None:
    assert [c.kept for c in check_frames(_batch())] == [True] * 8


def test_a_blurred_frame_is_dropped_as_blurred() -> None:
    frames = [*_batch(), ("blurred", np.asarray(cv2.GaussianBlur(_part(20), (0, 0), 3), np.uint8))]
    result = check_frames(frames)[-1]
    assert not result.kept and "blurred" in result.problems[0]


def test_a_clipped_frame_is_dropped_but_a_dark_background_is_not_clipping() -> None:
    glare = _part(21)
    glare[40:200, 40:280] = 255
    result = check_frames([*_batch(), ("glare", glare)])
    assert not result[-1].kept and any("clipped" in p for p in result[-1].problems)
    dark = [(n, np.where(np.arange(320)[None, :, None] < 60, 0, im).astype(np.uint8)) for n, im in _batch()]
    assert all(c.kept for c in check_frames(dark))  # every frame has it: the scene, not clipping


def test_the_same_part_twice_is_a_duplicate() -> None:
    frames = _batch()
    # The same part, next frame: new sensor noise and the light one grey level brighter.
    noise = np.random.default_rng(99).normal(1.0, 3.0, frames[2][1].shape)
    again = np.clip(frames[2][1] + noise, 0, 255).astype(np.uint8)
    result = check_frames([*frames, ("again", again)])[-1]
    assert not result.kept and "the same part as good2" in result.problems[0]


def test_a_frame_unlike_the_rest_is_dropped() -> None:
    empty = np.full((320, 320, 3), 90, np.uint8)  # the fixture without a part
    result = check_frames([*_batch(), ("empty", empty)])[-1]
    assert not result.kept and any("unlike the rest" in p for p in result.problems)
