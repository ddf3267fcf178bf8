from __future__ import annotations

import numpy as np

from edge.inspection.whole_part import WholePartModel, leave_one_out, ledoit_wolf, pooled


def test_a_part_with_a_region_unlike_the_golden_parts_is_far_even_if_each_patch_is_normal() -> None:
    rng = np.random.default_rng(0)
    # Golden parts: channel 0 high on the left half, channel 1 on the right (a layout).
    golden = np.zeros((30, 2, 4, 4))
    golden[:, 0, :, :2] = 1.0
    golden[:, 1, :, 2:] = 1.0
    golden += 0.05 * rng.normal(size=golden.shape)
    model = WholePartModel.fit(pooled(golden))
    good = golden[:1] + 0.05 * rng.normal(size=golden[:1].shape)
    swapped = good[:, ::-1].copy()  # the same patches, the layout mirrored: a misplaced component
    assert model.distance(pooled(swapped))[0] > 5 * model.distance(pooled(good))[0]
    descriptors = pooled(golden)
    loo = [float(m.distance(descriptors[i])[0]) for i, m in leave_one_out(descriptors, [0, 1, 2]).items()]
    assert all(v > 0 for v in loo)


def test_ledoit_wolf_is_well_conditioned_with_fewer_samples_than_dimensions() -> None:
    x = np.random.default_rng(1).normal(size=(5, 40))
    cov, shrink = ledoit_wolf(x - x.mean(0))
    assert 0 < shrink <= 1
    assert np.linalg.eigvalsh(cov).min() > 0
