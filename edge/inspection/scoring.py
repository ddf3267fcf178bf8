"""Score: each map scaled by how high it goes on golden parts, the SKU's chosen maps fused, and summed up."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from edge.inspection import selfconfig
from edge.inspection.bank import Calibration
from edge.inspection.compare import RawMaps
from edge.inspection.postprocess import fuse

FloatMap = npt.NDArray[np.float32]


def normalised(raw: RawMaps, calib: Calibration, names: Sequence[str]) -> dict[str, FloatMap]:
    """The comparison maps in ``names``, each divided by its golden scale (1.0 = a high normal value)."""
    out: dict[str, FloatMap] = {}
    for name in names:
        if name == "template":
            out[name] = raw.feature / np.float32(max(calib.feature_scale, 1e-6))
        elif name == "pixel":
            out[name] = raw.pixel / np.float32(max(calib.pixel_scale, 1e-6))
        elif name == "memory" and raw.memory is not None:
            out[name] = raw.memory / np.float32(max(calib.memory_scale, 1e-6))
    return out


def fused(raw: RawMaps, calib: Calibration) -> FloatMap:
    """The SKU's chosen maps, normalised and fused as its self-configuration chose."""
    return fuse(list(normalised(raw, calib, calib.maps).values()), calib.fusion)


def part_score(raw: RawMaps, calib: Calibration) -> float | None:
    """The whole-part distance in units of its golden scale (None when it is not computed)."""
    return None if raw.part is None else raw.part / max(calib.part_scale, 1e-6)


def fusions(fusion: str) -> tuple[str, ...]:
    """The fusions a SKU may choose from when the station setting is ``fusion`` (``auto``: any)."""
    return selfconfig.FUSIONS if fusion == "auto" else (fusion,)


def sample_scores(
    raw: RawMaps,
    calib: Calibration,
    available: Sequence[str],
    kind: str,
    defective: bool,
    choices: Sequence[str],
) -> selfconfig.SampleScores:
    """Scores of one calibration sample under every subset and fusion of the ``available`` maps."""
    maps = normalised(raw, calib, available)
    return selfconfig.SampleScores(
        by_subset=selfconfig.subset_scores(maps, raw.valid, tuple(choices)),
        whole_part=part_score(raw, calib),
        kind=kind,
        defective=defective,
    )
