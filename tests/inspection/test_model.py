"""The model id: what keys exported artifacts and golden banks."""

from __future__ import annotations

from edge.inspection.model import ModelSpec, code_sha256, graph_code_sha256

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
