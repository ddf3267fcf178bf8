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
    sources = np.arange(len(descriptors), dtype=np.int32)
    loo = leave_one_out(descriptors, sources, [0, 1, 2])
    assert all(float(m.distance(descriptors[i])[0]) > 0 for i, m in loo.items())


def test_a_nuisance_the_model_was_fitted_with_is_normal_and_leave_one_out_drops_both_copies() -> None:
    rng = np.random.default_rng(3)
    golden = 1.0 + 0.05 * rng.normal(size=(30, 4, 4, 4))
    golden[:, 0] += np.linspace(0, 1, 30)[:, None, None]  # part-to-part variation
    # The line shows each part with a lighting change: every channel moves the same way.
    shown = golden + 0.5 * rng.uniform(0.5, 1.0, size=(30, 1, 1, 1))
    clean_only = WholePartModel.fit(pooled(golden))
    descriptors = np.concatenate([pooled(golden), pooled(shown)])
    sources = np.concatenate([np.arange(30), -(np.arange(30) + 1)]).astype(np.int32)
    with_line = WholePartModel.fit(descriptors)
    frame = pooled(
        golden[:1] + 0.05 * rng.normal(size=(1, 4, 4, 4)) + 0.4
    )  # a good part under the line's light
    assert with_line.distance(frame)[0] < 0.5 * clean_only.distance(frame)[0]
    loo = leave_one_out(descriptors, sources, [0])[0]
    alone = WholePartModel.fit(descriptors[(sources != 0) & (sources != -1)])
    np.testing.assert_allclose(loo.precision, alone.precision)
    np.testing.assert_allclose(loo.mean, alone.mean)
    assert loo.mean.shape == with_line.mean.shape and not np.allclose(loo.mean, with_line.mean)


def test_ledoit_wolf_is_well_conditioned_with_fewer_samples_than_dimensions() -> None:
    x = np.random.default_rng(1).normal(size=(5, 40))
    cov, shrink = ledoit_wolf(x - x.mean(0))
    assert 0 < shrink <= 1
    assert np.linalg.eigvalsh(cov).min() > 0
