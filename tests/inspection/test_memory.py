from __future__ import annotations

import numpy as np

from edge.inspection.memory import PatchMemory, greedy_coreset


def _unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)
    return out


def test_coreset_keeps_rare_patches_that_a_subsample_would_drop() -> None:
    rng = np.random.default_rng(0)
    common = _unit(np.array([1.0, 0, 0, 0]) + 0.01 * rng.normal(size=(2000, 4)))
    rare = _unit(np.eye(4)[1:] + 0.01 * rng.normal(size=(3, 4)))
    patches = np.concatenate([common, rare])
    keep = greedy_coreset(patches, 8, seed=1)
    assert len(set(keep.tolist())) == 8
    assert {2000, 2001, 2002} <= set(keep.tolist())
    # Every patch lies close to a kept one (the k-center radius shrinks as the budget grows).
    d8 = 1 - (patches @ patches[keep].T).max(1)
    d32 = 1 - (patches @ patches[greedy_coreset(patches, 32, seed=1)].T).max(1)
    assert d32.max() <= d8.max() + 1e-6 and d8.max() < 0.01


def test_coreset_budget_above_size_keeps_everything() -> None:
    x = _unit(np.random.default_rng(1).normal(size=(10, 6)))
    assert greedy_coreset(x, 50).tolist() == list(range(10))


def test_packed_memory_masks_padding_and_left_out_images() -> None:
    feats = _unit(np.random.default_rng(2).normal(size=(3, 5, 2, 2)).transpose(0, 2, 3, 1)).transpose(
        0, 3, 1, 2
    )
    memory = PatchMemory.build((feats, np.arange(3, dtype=np.int32)), budget=12)
    assert len(memory) == 12 and sorted(set(memory.source.tolist())) == [0, 1, 2]
    templates, valid = memory.packed((2, 3))
    assert templates.shape == (2, 5, 2, 3) and valid.shape == (2, 1, 2, 3)
    assert valid.sum() == 12  # 12 patches in 2 chunks of 6: no padding
    _, valid_loo = memory.packed((2, 3), frozenset({1}))
    assert valid_loo.sum() == 12 - int((memory.source == 1).sum())
    _, padded = memory.packed((2, 5))
    assert padded.shape == (2, 1, 2, 5) and padded.sum() == 12


def test_a_golden_image_shown_twice_is_left_out_with_both_copies() -> None:
    # The memory also holds each golden part as the line shows it: leave-one-out must drop both copies.
    rng = np.random.default_rng(3)
    feats = _unit(rng.normal(size=(4, 2, 2, 5))).transpose(0, 3, 1, 2)
    memory = PatchMemory.build((feats, np.array([0, 1, 0, 1], np.int32)), budget=16)
    assert sorted(set(memory.source.tolist())) == [0, 1]
    _, valid = memory.packed((2, 2), frozenset({0}))
    assert valid.sum() == 8  # only image 1's two copies remain
