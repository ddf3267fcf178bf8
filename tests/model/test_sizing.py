from __future__ import annotations

import pytest

from edge.model.sizing import sku_geometry, sku_input_size


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ((512, 512), (320, 320)),
        ((500, 750), (320, 512)),  # VisA fryum: 1.5 -> 1.6 (the closer multiple of 64 in log terms)
        ((500, 1250), (320, 832)),  # a long part keeps its detail
        ((1250, 500), (832, 320)),
        ((100, 2000), (960, 320)[::-1]),  # capped at 3x the short side
    ],
)
def test_model_input_keeps_the_aspect_ratio(image: tuple[int, int], expected: tuple[int, int]) -> None:
    got = sku_input_size(image, (320, 320))
    assert got == expected
    assert got[0] % 64 == 0 and got[1] % 64 == 0


def test_golden_images_of_different_sizes_are_accepted_and_the_odd_ones_named() -> None:
    sizes = [(300, 300), (302, 298), (299, 301), (300, 600)]
    geo = sku_geometry(sizes, ["a", "b", "c", "wide"], (320, 320))
    assert geo.image_size == (300, 300) or geo.image_size == (300, 299)
    assert geo.squashed == ("wide",)
    lo, hi = geo.aspect_range
    assert lo < 298 / 302 and hi > 2.0
    assert not lo <= 3.0 <= hi
