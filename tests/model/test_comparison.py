"""The comparison encoder: each frame location is explained by its best match anywhere in the templates."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from edge.model.comparison import ComparisonEncoder

C, H, W = 16, 6, 7


def unit(rng: np.random.Generator, n: int) -> npt.NDArray[np.float32]:
    x = rng.normal(size=(n, C, H, W)).astype(np.float32)
    unit_norm: npt.NDArray[np.float32] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return unit_norm


def anomaly(
    query: npt.NDArray[np.float32], templates: npt.NDArray[np.float32], valid: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    out = ComparisonEncoder()(torch.from_numpy(query), torch.from_numpy(templates), torch.from_numpy(valid))
    return out.anomaly[0, 0].numpy(), out.valid[0, 0].numpy()


def test_content_found_anywhere_in_any_template_is_normal_and_novel_content_is_not() -> None:
    rng = np.random.default_rng(0)
    templates = unit(rng, 2)
    # The frame is template 1 shifted by two cells (registration need not be exact) ...
    query = np.roll(templates[1:2], 2, axis=3).copy()
    # ... with one location that no template shows.
    query[0, :, 3, 4] = unit(rng, 1)[0, :, 0, 0]
    result, valid = anomaly(query, templates, np.ones((2, 1, H, W), np.float32))
    assert valid.all()
    novel = result[3, 4]
    result[3, 4] = 0.0
    assert np.abs(result).max() < 1e-5
    assert novel > 0.3


def test_invalid_template_locations_are_never_attended() -> None:
    rng = np.random.default_rng(1)
    templates = unit(rng, 2)
    query = templates[1:2].copy()
    valid = np.ones((2, 1, H, W), np.float32)
    valid[1] = 0.0  # the only template that explains the frame is masked out
    result, _ = anomaly(query, templates, valid)
    assert result.min() > 0.2


def test_no_valid_template_gives_an_empty_map_marked_invalid() -> None:
    rng = np.random.default_rng(2)
    result, valid = anomaly(unit(rng, 1), unit(rng, 3), np.zeros((3, 1, H, W), np.float32))
    assert not valid.any() and not result.any()
