"""Golden banks: stored keyed by model and images, refused when they do not match, retrieval works."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.engines.encoders import Encoders
from edge.inspection.augment import LinePerturbation
from edge.inspection.bank import BankError, SkuBank, shown_label
from edge.inspection.inspector import Inspector
from edge.synthetic.parts import make_part


def test_roundtrip_keeps_everything(enrolled_inspector: Inspector, tmp_path: Path) -> None:
    bank = enrolled_inspector.banks["plate"]
    bank.save(tmp_path / "plate")
    loaded = SkuBank.load(tmp_path / "plate", model_id=enrolled_inspector.model_id)
    assert loaded.template_ids == bank.template_ids
    assert loaded.bank_id == bank.bank_id
    assert loaded.calibration == bank.calibration
    np.testing.assert_array_equal(loaded.features, bank.features)


def test_bank_for_another_model_is_refused(enrolled_inspector: Inspector, tmp_path: Path) -> None:
    enrolled_inspector.banks["plate"].save(tmp_path / "plate")
    with pytest.raises(BankError, match="built for model"):
        SkuBank.load(tmp_path / "plate", model_id="lite0-000000000000")


def test_edited_bank_is_refused(enrolled_inspector: Inspector, tmp_path: Path) -> None:
    enrolled_inspector.banks["plate"].save(tmp_path / "plate")
    meta_path = tmp_path / "plate" / "bank.json"
    meta = json.loads(meta_path.read_text())
    meta["image_hashes"][0] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(BankError, match="bank id mismatch"):
        SkuBank.load(tmp_path / "plate")


def test_missing_bank_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BankError, match="cannot read golden bank"):
        SkuBank.load(tmp_path / "nothing")


def test_retrieval_finds_the_same_view(onnx_encoders_session: Encoders) -> None:
    # Eight distinct views of a part (rotations and mirror images) in one bank, as DeepPCB crops of one board.
    base = make_part(np.random.default_rng(8)).image
    views = []
    for flip in (False, True):
        img = base[:, ::-1] if flip else base
        for rot in range(4):
            views.append((f"v{int(flip)}{rot}", np.ascontiguousarray(np.rot90(img, rot))))
    inspector = Inspector(onnx_encoders_session)
    bank = inspector.enroll("views", views, calibrate=False)
    rng = np.random.default_rng(5)
    for i, (_, image) in enumerate(views):
        shown, _ = LinePerturbation().apply(image, rng)
        prep = inspector.prepare(shown, "frame", bank)
        _, desc = inspector.encode([prep])
        ranked = bank.retrieve(desc[0], prep.thumb, k=3)
        assert len(ranked) == 3 and ranked[0][1] >= ranked[1][1] >= ranked[2][1]
        assert ranked[0][0] == i
        assert bank.retrieve(desc[0], prep.thumb, k=3, exclude=frozenset({i}))[0][0] != i


def test_memory_copies_as_the_line_shows_them_can_be_left_out_alone(onnx_encoders_session: Encoders) -> None:
    # A single golden part is calibrated against itself under line nuisance: its own line-shown copy in the
    # memory must then be left out, while leave-one-out drops both copies.
    inspector = Inspector(onnx_encoders_session)
    bank = inspector.enroll("one", [("g0", make_part(np.random.default_rng(3)).image)], calibrate=False)
    assert sorted(set(bank.memory_source.tolist())) == [shown_label(0), 0]
    size = tuple(bank.features.shape[-2:])
    _, everything = bank.packed_memory(size) or (None, np.zeros(0))
    _, captured = bank.packed_memory(size, exclude_shown=frozenset({0})) or (None, np.zeros(0))
    _, nothing = bank.packed_memory(size, exclude=frozenset({0})) or (None, np.ones(1))
    assert everything.sum() == len(bank.memory_source)
    assert captured.sum() == int((bank.memory_source == 0).sum()) > 0
    assert nothing.sum() == 0


def test_template_features_are_the_stored_features_in_float32(enrolled_inspector: Inspector) -> None:
    bank = enrolled_inspector.banks["plate"]
    order = [1, 0, 1] if len(bank) > 1 else [0, 0]
    for _ in range(2):  # converted once, then served from the cache: the same values either way
        got = bank.template_features(order)
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, bank.features[order].astype(np.float32))


def test_template_cache_stays_within_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import edge.inspection.bank as bank_module

    features = np.arange(6 * 2 * 4 * 4, dtype=np.float16).reshape(6, 2, 4, 4)
    one = features[0].astype(np.float32).nbytes
    monkeypatch.setattr(bank_module, "TEMPLATE_CACHE_BYTES", 3 * one)
    empty = np.zeros((6, 1), np.float32)
    bank = SkuBank("s", "m", [str(i) for i in range(6)], ["h"] * 6, (4, 4), features, empty, empty,
                   np.zeros((6, 4, 4), np.uint8), np.zeros((6, 4, 4), np.uint8))  # fmt: skip
    for i in range(6):
        np.testing.assert_array_equal(bank.template_features([i])[0], features[i].astype(np.float32))
    assert list(bank._features32) == [3, 4, 5]  # the least recently used went first
