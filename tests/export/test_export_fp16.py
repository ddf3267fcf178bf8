from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from engines.artifact_set import SPEC

from edge.artifacts.manifest import load_manifest
from edge.artifacts.names import onnx_file
from export.onnx_export import example_comparison, example_vision


def _types(path: Path) -> tuple[list[str], list[str]]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [i.type for i in session.get_inputs()], [o.type for o in session.get_outputs()]


def test_fp16_keeps_the_io_contract_and_computes_in_half(artifacts: Path) -> None:
    assert _types(artifacts / onnx_file("vision", "fp16")) == (["tensor(uint8)"], ["tensor(float)"] * 2)
    assert _types(artifacts / onnx_file("comparison", "fp16")) == (
        ["tensor(float)"] * 3,
        ["tensor(float)"] * 2,
    )
    model = onnx.load(str(artifacts / onnx_file("vision", "fp16")))
    weights = [i for i in model.graph.initializer if len(i.dims) == 4]
    assert weights and all(i.data_type == onnx.TensorProto.FLOAT16 for i in weights)


def test_fp16_matches_fp32_on_cpu_and_records_it(artifacts: Path) -> None:
    manifest = load_manifest(artifacts)
    figures = manifest.files[onnx_file("vision", "fp16")].parity["features"]
    assert isinstance(figures, dict) and figures["mean_cosine"] >= 0.999
    run32 = ort.InferenceSession(str(artifacts / onnx_file("comparison")), providers=["CPUExecutionProvider"])
    run16 = ort.InferenceSession(
        str(artifacts / onnx_file("comparison", "fp16")), providers=["CPUExecutionProvider"]
    )
    feeds = example_comparison(SPEC, k=4, seed=5)
    a32, v32 = run32.run(None, feeds)
    a16, v16 = run16.run(None, feeds)
    assert np.abs(a32 - a16).max() <= 5e-3 and np.array_equal(v32, v16)
    vision16 = ort.InferenceSession(
        str(artifacts / onnx_file("vision", "fp16")), providers=["CPUExecutionProvider"]
    )
    features, _ = vision16.run(None, {"image": example_vision(SPEC, batch=1, seed=9)})
    assert np.isfinite(features).all()
