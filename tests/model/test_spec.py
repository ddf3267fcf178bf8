"""The model id: what keys exported artifacts and golden banks."""

from __future__ import annotations

import pytest

from edge.model.backbone_catalog import BACKBONE_NAMES
from edge.model.spec import ModelSpec, code_sha256, graph_code_sha256

CODE = '''
"""Module doc."""
def anomaly(q, t):
    """Best match."""
    return 1 - (q * t).max()  # a comment
'''


def test_code_hash_ignores_comments_and_docstrings_but_not_code() -> None:
    base = code_sha256([("m.py", CODE)])
    reworded = CODE.replace("Best match.", "Best match over all locations.").replace("a comment", "why")
    assert code_sha256([("m.py", reworded)]) == base
    assert code_sha256([("m.py", CODE.replace("1 -", "2 -"))]) != base
    assert code_sha256([("other.py", CODE)]) != base


def test_model_id_depends_on_weights_spec_and_graph_code() -> None:
    spec = ModelSpec()
    assert spec.model_id("a" * 64) == spec.model_id("a" * 64)
    assert spec.model_id("a" * 64) != spec.model_id("b" * 64)
    assert spec.model_id("a" * 64) != ModelSpec(blur_sigma=1.0).model_id("a" * 64)
    assert len(graph_code_sha256()) == 64


def test_backbone_is_part_of_the_model_id_and_sets_the_channels() -> None:
    ids = {name: ModelSpec(backbone=name).model_id("a" * 64) for name in BACKBONE_NAMES}
    assert len(set(ids.values())) == len(BACKBONE_NAMES)
    assert all(model_id.startswith(f"{name}-") for name, model_id in ids.items())
    channels = {name: ModelSpec(backbone=name).feature_channels for name in BACKBONE_NAMES}
    assert channels == {"lite0": 152, "lite1": 152, "lite2": 168, "mobilenetv2": 128}
    query = ModelSpec(backbone="mobilenetv2").comparison_inputs()[0]
    assert query.shape == (1, 128, "fh", "fw")


def test_unknown_backbone_is_refused_by_the_spec() -> None:
    with pytest.raises(ValueError, match="unknown backbone"):
        ModelSpec(backbone="resnet50")  # type: ignore[arg-type]
