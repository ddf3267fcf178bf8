"""Registration recovers a known shift and rotation; feature warping follows the same map."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from edge.inspection.registration import register, scale_affine, warp_to_frame
from edge.synthetic.parts import make_part


def _gray() -> np.ndarray:
    part = make_part(np.random.default_rng(3), size=320).image
    return cv2.cvtColor(part, cv2.COLOR_RGB2GRAY)


@pytest.mark.parametrize(("dx", "dy", "angle"), [(0.0, 0.0, 0.0), (6.5, -3.25, 0.0), (-9.0, 4.0, 1.4)])
def test_recovers_shift_and_rotation(dx: float, dy: float, angle: float) -> None:
    template = _gray()
    truth: npt.NDArray[np.float64] = np.array(
        cv2.getRotationMatrix2D((160, 160), angle, 1.0), dtype=np.float64
    )
    truth[0, 2] += dx
    truth[1, 2] += dy
    frame = np.asarray(warp_to_frame(template, truth, (320, 320)), dtype=np.uint8)
    reg = register(frame, template)
    assert reg.method in {"ecc", "phase", "identity"}
    assert np.abs(reg.matrix[:, 2] - truth[:, 2]).max() < 0.3
    assert abs(reg.angle_deg - np.degrees(np.arctan2(truth[1, 0], truth[0, 0]))) < 0.1
    assert reg.quality > 0.95


def test_size_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="same size"):
        register(np.zeros((64, 64), np.uint8), np.zeros((64, 80), np.uint8))


def test_scale_affine_roundtrip() -> None:
    m = np.array([[0.99, -0.02, 3.0], [0.02, 0.99, -1.5]])
    back = scale_affine(scale_affine(m, 0.5, 0.5), 2.0, 2.0)
    np.testing.assert_allclose(back, m, atol=1e-9)


def test_side_by_side_registration_equals_one_by_one() -> None:
    from edge.inspection.compare import register_all
    from edge.inspection.settings import InspectorSettings

    frame = _gray()
    h, w = frame.shape
    templates = [
        warp_to_frame(
            frame, np.asarray(cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), np.float64), (w, h)
        )
        for angle in (-2.0, 0.0, 1.5, 3.0)
    ]
    cfg = InspectorSettings()
    together = register_all(frame, templates, cfg)
    alone = [register(frame, t, cfg.registration) for t in templates]
    assert [r.method for r in together] == [r.method for r in alone]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_array_equal(a.matrix, b.matrix)
        assert a.quality == b.quality
