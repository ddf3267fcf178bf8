"""``edge eval`` end to end: on a generated SKU, and (when present) on a real DeepPCB board group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.engines.encoders import Encoders
from edge.eval.datasets import DatasetError, discover
from edge.eval.runner import run_eval
from edge.inspection.inspector import Inspector
from edge.synthetic.parts import write_sku

KEYS = {
    "image_auroc",
    "image_accuracy",
    "box_precision",
    "box_recall",
    "box_f1",
    "bbox_mask_miou",
    "bbox_mask_acc",
    "retrieval_top1",
    "false_ng_rate",
    "latency_ms",
    "n_images",
}


def test_eval_on_a_generated_sku(onnx_encoders_session: Encoders, tmp_path: Path) -> None:
    root = write_sku(tmp_path / "data", n_golden=8, n_good=3, n_per_defect=2)
    metrics = run_eval(Inspector(onnx_encoders_session), root, tmp_path / "out", k=None, perturb=True)
    m = metrics["synthetic_plate"]
    assert set(m) >= KEYS
    assert set(m["bbox_mask_acc"]) == {"0.1", "0.3", "0.5"}
    assert m["retrieval_top1"] is None  # MVTec layout: no known template per image
    assert m["image_auroc"] >= 0.9
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == metrics
    assert (tmp_path / "out" / "report.png").stat().st_size > 10_000


def test_unknown_layout_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(DatasetError, match="neither an MVTec AD category"):
        discover(tmp_path)


@pytest.mark.slow
@pytest.mark.data
def test_real_deeppcb_group(onnx_encoders_session: Encoders, shared_data: Path, tmp_path: Path) -> None:
    group = shared_data / "deeppcb" / "group12000"
    if not group.is_dir():
        pytest.skip("DeepPCB group12000 not present")
    m = run_eval(Inspector(onnx_encoders_session), group, tmp_path, k=None, perturb=True)["group12000"]
    assert m["retrieval_top1"] >= 0.95
    assert m["box_f1"] >= 0.85
    assert m["false_ng_rate"] <= 0.1
