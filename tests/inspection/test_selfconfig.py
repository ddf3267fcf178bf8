"""Self-configuration on hand-made maps: the choice follows what separates golden parts from defects."""

from __future__ import annotations

import numpy as np

from edge.inspection import selfconfig


def _sample(template: np.ndarray, memory: np.ndarray, defective: bool) -> selfconfig.SampleScores:
    valid = np.ones(template.shape, bool)
    maps = {"template": template, "memory": memory}
    return selfconfig.SampleScores(
        by_subset=selfconfig.subset_scores(maps, valid, selfconfig.FUSIONS),
        whole_part=None,
        kind="spot" if defective else "golden",
        defective=defective,
    )


def test_maps_that_flicker_in_different_places_are_fused_by_agreement() -> None:
    # As on a texture: each comparison has its own strong false responses on good parts, a defect shows
    # in both. Any single map or their maximum confuses the two; their mean separates them.
    rng = np.random.default_rng(0)
    samples = []
    for i in range(12):
        t, m = (rng.uniform(0.2, 0.5, (32, 32)).astype(np.float32) for _ in range(2))
        for flicker in (t, m):  # a dozen strong false responses each, in its own places
            flicker[rng.integers(0, 32, 12), rng.integers(0, 32, 12)] = 3.0
        defective = i % 2 == 1
        if defective:
            t[10:13, 10:13] = 2.0
            m[10:13, 10:13] = 2.0
        samples.append(_sample(t, m, defective))
    best, ranked = selfconfig.choose(samples, ["template", "memory"], False, 0.1)
    assert best.choice.maps == ("template", "memory") and best.choice.fusion == "mean"
    assert best.auroc == 1.0 and best.golden_false_ng == 0.0
    assert "mean" in best.choice.label
    # A station that fixes the fusion gets only that fusion.
    fixed, _ = selfconfig.choose(samples, ["template", "memory"], False, 0.1, fusions=("max",))
    assert fixed.choice.fusion == "max" and fixed.objective < best.objective
    assert len(ranked) == len(selfconfig.candidates(["template", "memory"], False))
