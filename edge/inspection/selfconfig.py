"""Per-SKU self-configuration at flash time, from the golden images only.

Which comparisons take part (template comparison, whole-bank patch memory, registered pixel comparison,
whole-part score), how their maps fuse (any one may show a defect: ``max``; they must agree: ``mean``,
which on a texture whose maps each flicker in other places is what separates, measured on magnetic_tile),
how the image score aggregates the map (its maximum or the mean of its top tail) and how
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
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.inspection.postprocess import fuse

MAPS = ("template", "memory", "pixel")
#: Fusions the self-configuration chooses from (``InspectorSettings.fusion`` can fix one).
FUSIONS = ("max", "mean")
AGGREGATIONS = ("max", "tail")
WHOLE_PART = ("off", "max", "sum")
#: Share of the valid map that the ``tail`` aggregation averages (its top 1 %).
TAIL_FRACTION = 0.01


def tail_mean(values: npt.NDArray[np.float32]) -> float:
    """Mean of the top :data:`TAIL_FRACTION` of ``values`` (at least one value)."""
    if values.size == 0:
        return 0.0
    k = max(1, round(values.size * TAIL_FRACTION))
    return float(np.partition(values, values.size - k)[values.size - k :].mean())


def aggregate(values: npt.NDArray[np.float32], aggregation: str) -> float:
    """Image score of the valid map values: their ``max`` or the ``tail`` mean."""
    if values.size == 0:
        return 0.0
    return float(values.max()) if aggregation == "max" else tail_mean(values)


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

    @property
    def label(self) -> str:
        """Human-readable name for the flash report."""
        whole = "" if self.whole_part == "off" else f" + whole-part ({self.whole_part})"
        fused = f" ({self.fusion})" if len(self.maps) > 1 else ""
        return f"{'+'.join(self.maps)}{fused}, {self.aggregation}{whole}"


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
                out[(subset, fusion)] = {a: aggregate(values, a) for a in AGGREGATIONS}
    return out


def combined(sample: SampleScores, choice: Choice) -> float:
    """The image score of ``sample`` under ``choice``."""
    scores = sample.by_subset[(choice.maps, choice.fusion)]
    return combine(scores[choice.aggregation], sample.whole_part, choice.whole_part)


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
            c.aggregation != "max",
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
) -> tuple[Evaluation, list[Evaluation]]:
    """The best choice (highest objective; the simplest on a tie) and every evaluation, best first."""
    choices = candidates(available_maps, whole_part, required, fusions)
    evals = [evaluate(c, samples, margin) for c in choices]
    best = evals[0]
    for e in evals[1:]:
        if e.objective > best.objective + 1e-9:
            best = e
    ranked = sorted(evals, key=lambda e: -e.objective)
    return best, ranked
