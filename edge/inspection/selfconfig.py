"""Per-SKU self-configuration at flash time, from the golden images only.

Which comparisons take part (template comparison, whole-bank patch memory, registered pixel comparison,
whole-part score), how their maps fuse (any one may show a defect: ``max``; they must agree: ``mean``,
which on a texture whose maps each flicker in other places is what separates, measured on magnetic_tile),
how the image score aggregates the map (its maximum, the mean of its top tail, or ``either``: whichever of
the two stands out more against the golden parts) and how
the whole-part score joins it are chosen here, per SKU, by what separates the golden parts (scored
leave-one-out) from synthetic defects drawn onto them (:mod:`edge.inspection.defects`), plus any known-bad
parts the engineer supplies. Nothing here is tuned on a dataset: a product whose good parts vary in texture
picks other comparisons than a pixel-repeatable board, because its golden images say so.

The same figures make the capability report the flash prints: at the chosen threshold, the detection
rate of each kind of synthetic defect and the golden false-NG rate.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from edge.inspection.postprocess import fuse

MAPS = ("template", "memory", "pixel")
#: Fusions the self-configuration chooses from (``InspectorSettings.fusion`` can fix one).
FUSIONS = ("max", "mean")
#: Image-score aggregations, simplest first. ``either`` is the larger of the maximum and the tail mean,
#: each in units of its golden scale: a small sharp defect raises the maximum, a large faint one (a burn,
#: a deformed region) the tail, and neither has to be known in advance. The synthetic defects cannot tell
#: which the product's real defects are (their sizes span a few per cent of the image), so ``either`` is
#: kept unless they clearly favour another (:func:`choose`; measured on fryum's real defects: AUROC
#: 0.941 -> 0.953, the synthetic objective equal).
AGGREGATIONS = ("max", "tail", "either")
#: Aggregations each sample is scored with; ``either`` is made from them with the golden scales.
SAMPLE_AGGREGATIONS = ("max", "tail")
WHOLE_PART = ("off", "max", "sum")
#: Share of the valid map that the ``tail`` aggregation averages (its top 1 %).
TAIL_FRACTION = 0.01


def tail_mean(values: npt.NDArray[np.float32]) -> float:
    """Mean of the top :data:`TAIL_FRACTION` of ``values`` (at least one value)."""
    if values.size == 0:
        return 0.0
    k = max(1, round(values.size * TAIL_FRACTION))
    return float(np.partition(values, values.size - k)[values.size - k :].mean())


def aggregate(
    values: npt.NDArray[np.float32], aggregation: str, scales: Sequence[float] = (1.0, 1.0)
) -> float:
    """Image score of the valid map values: their ``max``, the ``tail`` mean, or ``either`` of them.

    Args:
        values: the fused map's valid values.
        aggregation: one of :data:`AGGREGATIONS`.
        scales: golden scales of the maximum and the tail mean (``either`` only; see :func:`either`).

    """
    if values.size == 0:
        return 0.0
    if aggregation == "max":
        return float(values.max())
    if aggregation == "tail":
        return tail_mean(values)
    return either(float(values.max()), tail_mean(values), scales)


def either(peak: float, tail: float, scales: Sequence[float]) -> float:
    """The larger of ``peak`` and ``tail``, each divided by its golden scale (1.0: a high golden value)."""
    return max(peak / max(scales[0], 1e-6), tail / max(scales[1], 1e-6))


def combine(map_score: float, part: float | None, whole_part: str) -> float:
    """Join the map score and the normalised whole-part score as ``whole_part`` says."""
    if whole_part == "off" or part is None:
        return map_score
    return max(map_score, part) if whole_part == "max" else map_score + part


@dataclass(frozen=True)
class Choice:
    """One way of scoring a part."""

    maps: tuple[str, ...]
    aggregation: str
    whole_part: str
    fusion: str = "max"
    #: Golden scales of the maximum and the tail mean (``either`` only), set by :func:`choose`.
    scales: tuple[float, float] = (1.0, 1.0)

    @property
    def label(self) -> str:
        """Human-readable name for the flash report."""
        whole = "" if self.whole_part == "off" else f" + whole-part ({self.whole_part})"
        fused = f" ({self.fusion})" if len(self.maps) > 1 else ""
        aggregation = "max or tail" if self.aggregation == "either" else self.aggregation
        return f"{'+'.join(self.maps)}{fused}, {aggregation}{whole}"


@dataclass
class SampleScores:
    """Aggregated scores of one sample (golden or defect) for every map subset."""

    by_subset: dict[tuple[tuple[str, ...], str], dict[str, float]]  # (subset, fusion) -> aggregation -> score
    whole_part: float | None  # normalised whole-part score
    kind: str  # "golden" or the defect kind
    defective: bool


def subset_scores(
    maps: dict[str, npt.NDArray[np.float32]], valid: npt.NDArray[np.bool_], fusions: Sequence[str]
) -> dict[tuple[tuple[str, ...], str], dict[str, float]]:
    """Every aggregation of the fused normalised maps, per subset with a feature comparison and fusion.

    A single map needs no fusion: it is listed under the first of ``fusions``.
    """
    out: dict[tuple[tuple[str, ...], str], dict[str, float]] = {}
    names = [m for m in MAPS if m in maps]
    for r in range(1, len(names) + 1):
        for subset in itertools.combinations(names, r):
            if not {"template", "memory"} & set(subset):
                continue
            for fusion in fusions if r > 1 else fusions[:1]:
                values = fuse([maps[name] for name in subset], fusion)[valid]
                out[(subset, fusion)] = {a: aggregate(values, a) for a in SAMPLE_AGGREGATIONS}
    return out


def combined(sample: SampleScores, choice: Choice) -> float:
    """The image score of ``sample`` under ``choice``."""
    scores = sample.by_subset[(choice.maps, choice.fusion)]
    if choice.aggregation == "either":
        value = either(scores["max"], scores["tail"], choice.scales)
    else:
        value = scores[choice.aggregation]
    return combine(value, sample.whole_part, choice.whole_part)


def auroc(negatives: Sequence[float], positives: Sequence[float]) -> float:
    """Probability that a positive scores above a negative (ties count half)."""
    if not negatives or not positives:
        return 0.5
    neg = np.asarray(negatives)[:, None]
    pos = np.asarray(positives)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (neg.size * pos.size))


@dataclass
class Evaluation:
    """How one choice does on the golden and synthetic samples."""

    choice: Choice
    threshold: float
    auroc: float
    detection: dict[str, float]  # kind -> share of defects above the threshold
    golden_false_ng: float
    objective: float
    golden_scores: list[float] = field(default_factory=list)


def evaluate(
    choice: Choice, samples: Sequence[SampleScores], margin: float, threshold: float | None = None
) -> Evaluation:
    """What ``choice`` detects at ``threshold`` (default: the highest golden score x (1 + margin))."""
    golden = [combined(s, choice) for s in samples if not s.defective]
    g = np.asarray(golden)
    if threshold is None:
        threshold = float(g.max()) * (1.0 + margin)
    kinds: dict[str, list[bool]] = {}
    positives = []
    for s in samples:
        if s.defective:
            v = combined(s, choice)
            positives.append(v)
            kinds.setdefault(s.kind, []).append(v > threshold)
    detection = {k: float(np.mean(v)) for k, v in kinds.items()}
    area = auroc(golden, positives)
    rate = float(np.mean(list(detection.values()))) if detection else 0.0
    return Evaluation(
        choice=choice,
        threshold=threshold,
        auroc=area,
        detection=detection,
        golden_false_ng=float(np.mean(g > threshold)),
        objective=0.5 * area + 0.5 * rate,
        golden_scores=[round(float(v), 4) for v in golden],
    )


def candidates(
    available_maps: Sequence[str],
    whole_part: bool,
    required: Sequence[str] = (),
    fusions: Sequence[str] = FUSIONS,
) -> list[Choice]:
    """Every choice the SKU can make (each with the ``required`` maps), simplest first."""
    names = [m for m in MAPS if m in available_maps]
    subsets = [
        s
        for r in range(1, len(names) + 1)
        for s in itertools.combinations(names, r)
        if {"template", "memory"} & set(s) and set(required) <= set(s)
    ]
    wholes = WHOLE_PART if whole_part else ("off",)
    out = [
        Choice(s, a, w, f)
        for s in subsets
        for f in (fusions if len(s) > 1 else fusions[:1])
        for a in AGGREGATIONS
        for w in wholes
    ]
    return sorted(
        out,
        key=lambda c: (
            len(c.maps) + (c.whole_part != "off"),
            AGGREGATIONS.index(c.aggregation),
            c.fusion != fusions[0],
        ),
    )


def choose(
    samples: Sequence[SampleScores],
    available_maps: Sequence[str],
    whole_part: bool,
    margin: float,
    required: Sequence[str] = (),
    fusions: Sequence[str] = FUSIONS,
    scale_quantile: float = 0.9,
) -> tuple[Evaluation, list[Evaluation]]:
    """The best choice (highest objective; the simplest on a tie) and every evaluation, best first.

    Likewise the whole-part score (joined by ``max``) is kept unless leaving it out is better by more than
    one synthetic defect's worth: the synthetic defects are local, so they cannot show what it sees
    (measured on fryum's real defects, `memory, max or tail`: AUROC 0.954 -> 0.961 clean, 0.952 -> 0.960
    under line nuisance, the synthetic objective equal).

    Between aggregations of the same maps, ``either`` is kept unless the other is better by more than one
    synthetic defect's worth of objective (``1 / defects``: one defect more or less detected moves the
    detection half by up to that, and its rank against the golden parts the AUROC half): a smaller
    difference is sampling noise of the synthetic set (measured: fryum's choice flipped between ``max`` and
    ``either`` on 0.001 with a larger patch memory), and ``either`` sees defects of a size the synthetic set
    does not draw.

    ``scale_quantile``: the golden scales of ``either`` are this quantile of the golden samples' maxima and
    tail means (as each map is scaled, ``InspectorSettings.calib_quantile``).
    """
    golden = [s for s in samples if not s.defective]
    choices = [
        replace(c, scales=golden_scales(golden, c, scale_quantile)) if c.aggregation == "either" else c
        for c in candidates(available_maps, whole_part, required, fusions)
    ]
    evals = [evaluate(c, samples, margin) for c in choices]
    best = evals[0]
    for e in evals[1:]:
        if e.objective > best.objective + 1e-9:
            best = e
    one_defect = 1.0 / max(1, sum(s.defective for s in samples))
    # What the synthetic set cannot judge is kept when it costs less than one synthetic defect's worth:
    # ``either`` (the synthetic defects span one range of sizes) and the whole-part score joined by max
    # (every synthetic defect is local; a missing, extra or misplaced component or a deformed part is not).
    best = _unless_clearly_worse(
        best, _variant(evals, replace(best.choice, aggregation="either")), one_defect
    )
    if best.choice.whole_part == "off":  # `sum` is only ever chosen on its merits
        best = _unless_clearly_worse(
            best, _variant(evals, replace(best.choice, whole_part="max")), one_defect
        )
    ranked = sorted(evals, key=lambda e: -e.objective)
    return best, ranked


def _unless_clearly_worse(best: Evaluation, wider: Evaluation | None, tolerance: float) -> Evaluation:
    """``wider`` unless ``best`` beats it by more than ``tolerance`` of objective (or it is no candidate)."""
    if wider is not None and best.objective - wider.objective <= tolerance + 1e-9:
        return wider
    return best


def _variant(evals: Sequence[Evaluation], choice: Choice) -> Evaluation | None:
    """The evaluation of ``choice`` (its golden scales aside), if it was a candidate."""
    key = (choice.maps, choice.fusion, choice.aggregation, choice.whole_part)
    return next(
        (
            e
            for e in evals
            if (e.choice.maps, e.choice.fusion, e.choice.aggregation, e.choice.whole_part) == key
        ),
        None,
    )


def golden_scales(golden: Sequence[SampleScores], choice: Choice, quantile: float) -> tuple[float, float]:
    """Golden scales of the maximum and the tail mean of ``choice``'s maps (their ``quantile``)."""
    key = (choice.maps, choice.fusion)
    if not golden:
        return (1.0, 1.0)
    peak = float(np.quantile([s.by_subset[key]["max"] for s in golden], quantile))
    tail = float(np.quantile([s.by_subset[key]["tail"] for s in golden], quantile))
    return (max(peak, 1e-6), max(tail, 1e-6))
