"""Self-configuration on hand-made maps: the choice follows what separates golden parts from defects."""

from __future__ import annotations

import numpy as np

from edge.inspection import selfconfig


def _sample(
    template: np.ndarray, memory: np.ndarray, defective: bool, kind: str = "spot"
) -> selfconfig.SampleScores:
    valid = np.ones(template.shape, bool)
    maps = {"template": template, "memory": memory}
    return selfconfig.SampleScores(
        by_subset=selfconfig.subset_scores(maps, valid, selfconfig.FUSIONS),
        whole_part=None,
        kind=kind if defective else "golden",
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


def test_either_sees_small_sharp_and_large_faint_defects_where_max_or_tail_sees_one_kind() -> None:
    # Golden parts: a noisy background with one strong speck each (as on a texture). Defects: a small
    # sharp spot (the maximum sees it, the 1 % tail does not) or a large faint region (the tail sees it,
    # the maximum does not). Only the larger of the two, each against its golden scale, sees both.
    rng = np.random.default_rng(1)
    samples = []
    for i in range(30):
        m = rng.uniform(0.0, 0.4, (128, 128)).astype(np.float32)
        m[rng.integers(0, 128), rng.integers(0, 128)] = 1.0
        kind = ("golden", "spot", "region")[i % 3]
        if kind == "spot":
            m[20, 20] = 3.0
        elif kind == "region":
            m[10:40, 10:40] = 0.9
        samples.append(_sample(m, m, kind != "golden", kind))
    best, ranked = selfconfig.choose(samples, ["memory"], False, 0.1)
    assert best.choice.aggregation == "either" and best.golden_false_ng == 0.0
    assert best.detection == {"spot": 1.0, "region": 1.0}
    by_aggregation = {e.choice.aggregation: e for e in ranked if e.choice.maps == ("memory",)}
    assert by_aggregation["max"].detection["region"] == 0.0
    assert by_aggregation["tail"].detection["spot"] == 0.0
    # The inspection scores a frame exactly as the self-configuration scored its samples.
    spot = next(s for s in samples if s.kind == "spot")
    values = np.full(100, 0.2, np.float32)
    values[0] = 3.0
    peak, tail = spot.by_subset[(("memory",), "max")]["max"], selfconfig.tail_mean(values)
    scales = best.choice.scales
    assert selfconfig.aggregate(values, "either", scales) == max(3.0 / scales[0], tail / scales[1])
    assert selfconfig.combined(spot, best.choice) == max(
        peak / scales[0], spot.by_subset[(("memory",), "max")]["tail"] / scales[1]
    )


def _scores(peak: float, tail: float, defective: bool) -> selfconfig.SampleScores:
    return selfconfig.SampleScores(
        by_subset={(("memory",), "max"): {"max": peak, "tail": tail}},
        whole_part=None,
        kind="spot" if defective else "golden",
        defective=defective,
    )


def test_either_is_kept_unless_the_synthetic_defects_clearly_favour_another_aggregation() -> None:
    # One golden part with an unusually high tail lifts the threshold of `either` a little: of ten spots it
    # misses the faintest, which the maximum catches (the maximum is better by less than one defect's worth).
    golden = [_scores(1.0, 1.0, False) for _ in range(9)] + [_scores(1.0, 1.15, False)]
    spots = [_scores(2.0, 1.0, True) for _ in range(9)] + [_scores(1.12, 1.0, True)]
    best, ranked = selfconfig.choose(golden + spots, ["memory"], False, 0.1)
    by_aggregation = {e.choice.aggregation: e for e in ranked}
    assert by_aggregation["max"].objective > by_aggregation["either"].objective
    assert by_aggregation["max"].objective - by_aggregation["either"].objective < 1 / len(spots)
    assert best.choice.aggregation == "either"
    # A golden part with a far higher tail: `either` would miss every spot; the maximum is chosen.
    golden[-1] = _scores(1.0, 3.0, False)
    best, ranked = selfconfig.choose(golden + spots, ["memory"], False, 0.1)
    assert best.choice.aggregation == "max" and best.detection == {"spot": 1.0}
    assert {e.choice.aggregation: e for e in ranked}["either"].detection == {"spot": 0.0}


def _with_part(peak: float, part: float, defective: bool) -> selfconfig.SampleScores:
    sample = _scores(peak, peak, defective)
    sample.whole_part = part
    return sample


def test_the_whole_part_score_is_kept_unless_the_synthetic_defects_clearly_pay_for_leaving_it_out() -> None:
    # Golden parts' whole-part scores stay below their map scores: joining it by max costs no defect.
    golden = [_with_part(1.0, 0.8, False) for _ in range(10)]
    spots = [_with_part(2.0, 0.9, True) for _ in range(10)]
    best, _ = selfconfig.choose(golden + spots, ["memory"], True, 0.1)
    assert best.choice.whole_part == "max"
    # One golden part far off as a whole: with the whole-part score every spot would pass; left out.
    golden[-1] = _with_part(1.0, 5.0, False)
    best, ranked = selfconfig.choose(golden + spots, ["memory"], True, 0.1)
    assert best.choice.whole_part == "off" and best.detection == {"spot": 1.0}
    with_part = [e for e in ranked if e.choice.whole_part == "max" and e.choice.aggregation == "either"]
    assert with_part[0].detection == {"spot": 0.0}
