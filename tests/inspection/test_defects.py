from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from edge.inspection.defects import KINDS, defect_set, draw_defect


def _golden() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.full((120, 160, 3), 120, np.float32) + rng.normal(0, 12, size=(120, 160, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_changes_the_image_where_its_mask_says(kind: str) -> None:
    image = _golden()
    d = draw_defect(image, kind, np.random.default_rng(3))
    assert d.kind == kind and d.image.shape == image.shape and d.mask.shape == image.shape[:2]
    diff = np.abs(d.image.astype(int) - image.astype(int)).max(axis=2)
    assert d.mask.any()
    assert diff[d.mask].mean() > 4  # visible on the defect
    far = ~binary_dilation(d.mask, iterations=8)  # well away from the defect (soft edges excluded)
    assert diff[far].max() == 0  # nothing drawn elsewhere
    border = np.zeros_like(d.mask)
    border[:3], border[-3:], border[:, :3], border[:, -3:] = True, True, True, True
    if kind != "cut_paste":
        assert not (d.mask & border).any()


def test_defects_are_seeded() -> None:
    images = [_golden(), _golden()[::-1].copy()]
    a = defect_set(images, 2, seed=5)
    b = defect_set(images, 2, seed=5)
    c = defect_set(images, 2, seed=6)
    assert [k for _, k in [(i, d.kind) for i, d in a]] == [k for k in KINDS for _ in range(2)]
    assert all(np.array_equal(x.image, y.image) for (_, x), (_, y) in zip(a, b, strict=True))
    assert not all(np.array_equal(x.image, y.image) for (_, x), (_, y) in zip(a, c, strict=True))
