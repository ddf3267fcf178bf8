from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from engines.artifact_set import SPEC, copy_set
from onnx import numpy_helper

from edge.artifacts.manifest import load_manifest
from edge.artifacts.names import MANIFEST_FILE, onnx_file
from edge.engines.onnxruntime_runner import OnnxRuntimeRunner
from edge.engines.parity import ParityError
from export.calibration import CalibrationError, load_calibration, set_hash, synthetic_calibration
from export.gates import INT8_GATE, CosineGate, feature_cosine_gate
from export.pipeline import export_int8
from export.quantize import float_prefix

BOTTLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "mvtec" / "bottle" / "train" / "good"


def _qdq(model: onnx.ModelProto) -> tuple[list[onnx.NodeProto], dict[str, np.ndarray]]:
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return [n for n in model.graph.node if n.op_type == "QuantizeLinear"], consts


def test_int8_files_are_qdq_with_the_flavour_each_runtime_needs(artifacts: Path) -> None:
    ort_model = onnx.load(str(artifacts / onnx_file("vision", "int8", "onnxruntime")))
    trt_model = onnx.load(str(artifacts / onnx_file("vision", "int8", "tensorrt")))
    ort_q, ort_consts = _qdq(ort_model)
    trt_q, trt_consts = _qdq(trt_model)
    assert len(ort_q) > 20 and len(trt_q) > 20
    # ONNX Runtime flavour: uint8 activations (U8S8 fast path).
    assert {ort_consts[n.input[2]].dtype for n in ort_q} == {np.dtype(np.uint8)}
    # TensorRT flavour: symmetric int8, every zero point 0 (TensorRT rejects anything else).
    assert {trt_consts[n.input[2]].dtype for n in trt_q} == {np.dtype(np.int8)}
    assert all(not trt_consts[n.input[2]].any() for n in trt_q)
    # Per-channel weights: some DequantizeLinear carries a vector of scales.
    dq_scales = [ort_consts[n.input[1]] for n in ort_model.graph.node if n.op_type == "DequantizeLinear"]
    assert any(s.ndim == 1 and s.size > 1 for s in dq_scales)


def test_tensorrt_flavour_dequantizes_only_int8_weights_and_activations(artifacts: Path) -> None:
    # TensorRT's Dequantize layer takes INT8/FP8/INT4 input only: an INT32 bias DequantizeLinear does not
    # parse (onnx/onnx-tensorrt#850). Every DequantizeLinear must read an int8 weight or an int8 activation.
    model = onnx.load(str(artifacts / onnx_file("vision", "int8", "tensorrt")))
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    dequantized: dict[str, int] = {"weight": 0, "activation": 0}
    for node in (n for n in model.graph.node if n.op_type == "DequantizeLinear"):
        source = node.input[0]
        if source in consts:
            assert consts[source].dtype == np.int8, f"{node.name}: dequantizes {consts[source].dtype}"
            dequantized["weight"] += 1
        else:
            quantize = producers[source]
            assert quantize.op_type == "QuantizeLinear", f"{node.name}: input from {quantize.op_type}"
            assert consts[quantize.input[2]].dtype == np.int8
            dequantized["activation"] += 1
        assert consts[node.input[2]].dtype == np.int8 and not consts[node.input[2]].any()
    assert dequantized["weight"] > 20 and dequantized["activation"] > 20
    # The biases stayed float initializers feeding the convolutions directly.
    biases = [consts[n.input[2]] for n in model.graph.node if n.op_type == "Conv" and len(n.input) > 2]
    assert biases and all(b.dtype == np.float32 for b in biases)
    # And the graph still runs in ONNX Runtime within the INT8 gate against FP32 (raises on a miss).
    figures = feature_cosine_gate(
        OnnxRuntimeRunner(artifacts / onnx_file("vision")),
        OnnxRuntimeRunner(artifacts / onnx_file("vision", "int8", "tensorrt")),
        synthetic_calibration(SPEC.input_size).held_out,
        "tensorrt flavour",
    )
    assert float(figures["mean_feature_cosine"]) >= INT8_GATE.mean_feature  # type: ignore[arg-type]


def test_preprocessing_stem_and_first_block_stay_float(artifacts: Path) -> None:
    fp32 = onnx.load(str(artifacts / onnx_file("vision")))
    kept = set(float_prefix(fp32))
    convs = [n.name for n in fp32.graph.node if n.op_type == "Conv"]
    # Two blur taps, the stem, the first block's depthwise and pointwise convolutions.
    assert [c for c in convs if c in kept] == convs[:5]
    int8 = onnx.load(str(artifacts / onnx_file("vision", "int8")))
    quantized_inputs = {n.output[0] for n in int8.graph.node if n.op_type == "DequantizeLinear"}
    first_convs = [n for n in int8.graph.node if n.op_type == "Conv"][:5]
    assert all(i not in quantized_inputs for n in first_convs for i in n.input)


def test_int8_gate_figures_and_calibration_hash_are_in_the_manifest(artifacts: Path) -> None:
    manifest = load_manifest(artifacts)
    assert manifest.calibration is not None
    calibration_hash = manifest.calibration["sha256"]
    for target in ("onnxruntime", "tensorrt"):
        entry = manifest.files[onnx_file("vision", "int8", target)]
        assert entry.target == target
        parity = entry.parity
        assert parity["calibration_sha256"] == calibration_hash
        assert float(parity["mean_feature_cosine"]) >= INT8_GATE.mean_feature  # type: ignore[arg-type]
        assert float(parity["min_descriptor_cosine"]) >= INT8_GATE.min_descriptor  # type: ignore[arg-type]


def _corrupt_weight_scales(source: Path, destination: Path) -> None:
    model = onnx.load(str(source))
    rng = np.random.default_rng(0)
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        scale = next(i for i in model.graph.initializer if i.name == node.input[1])
        values = numpy_helper.to_array(scale)
        if values.ndim == 1 and values.size > 1:  # per-channel: a weight scale
            scale.CopyFrom(
                numpy_helper.from_array(
                    values * rng.uniform(0.2, 5.0, values.shape).astype(values.dtype), scale.name
                )
            )
    onnx.save(model, str(destination))


def test_a_qdq_model_with_corrupted_scales_fails_the_cosine_gate(artifacts: Path, tmp_path: Path) -> None:
    held_out = synthetic_calibration(SPEC.input_size).held_out
    reference = OnnxRuntimeRunner(artifacts / onnx_file("vision"))
    good = OnnxRuntimeRunner(artifacts / onnx_file("vision", "int8"))
    figures = feature_cosine_gate(reference, good, held_out, "good")
    assert float(figures["mean_feature_cosine"]) >= INT8_GATE.mean_feature  # type: ignore[arg-type]
    broken_path = tmp_path / "broken.int8.onnx"
    _corrupt_weight_scales(artifacts / onnx_file("vision", "int8"), broken_path)
    with pytest.raises(
        ParityError, match=r"broken.int8.onnx vs FP32 on 3 held-out images: mean_feature_cosine"
    ):
        feature_cosine_gate(reference, OnnxRuntimeRunner(broken_path), held_out, broken_path.name)


def test_a_failed_gate_installs_nothing(artifacts: Path, tmp_path: Path) -> None:
    directory = copy_set(artifacts, tmp_path / "set")
    manifest_before = (directory / MANIFEST_FILE).read_bytes()
    int8_before = (directory / onnx_file("vision", "int8")).read_bytes()
    impossible = CosineGate(mean_feature=1.01)
    with pytest.raises(ParityError, match=r"mean_feature_cosine .* < 1.01"):
        export_int8(SPEC, directory, synthetic_calibration(SPEC.input_size, seed=7), impossible)
    assert (directory / MANIFEST_FILE).read_bytes() == manifest_before
    assert (directory / onnx_file("vision", "int8")).read_bytes() == int8_before
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]


def test_calibration_hash_ignores_order_and_names_but_not_content(tmp_path: Path) -> None:
    assert set_hash(["b", "a"]) == set_hash(["a", "b"]) != set_hash(["a", "c"])
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(5)]
    for i, im in enumerate(images):
        cv2.imwrite(str(tmp_path / f"{i}.png"), im)
    first = load_calibration(tmp_path, (64, 64))
    assert (len(first.calibrate), len(first.held_out)) == (4, 1)
    for i in range(5):
        (tmp_path / f"{i}.png").rename(tmp_path / f"renamed_{4 - i}.png")
    assert load_calibration(tmp_path, (64, 64)).sha256 == first.sha256
    cv2.imwrite(str(tmp_path / "renamed_0.png"), images[0] // 2)
    assert load_calibration(tmp_path, (64, 64)).sha256 != first.sha256


def test_calibration_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="does not exist"):
        load_calibration(tmp_path / "nope", (64, 64))
    with pytest.raises(CalibrationError, match="0 images found, need at least 4"):
        load_calibration(tmp_path, (64, 64))
    for i in range(4):
        (tmp_path / f"{i}.png").write_bytes(b"not an image")
    with pytest.raises(CalibrationError, match=r"0\.png: not a readable image"):
        load_calibration(tmp_path, (64, 64))


@pytest.mark.data
def test_int8_on_real_golden_images_passes_the_gate(artifacts: Path, tmp_path: Path) -> None:
    if not BOTTLE.is_dir():
        pytest.skip(f"MVTec bottle images not present at {BOTTLE}")
    directory = copy_set(artifacts, tmp_path / "set")
    calibration = load_calibration(BOTTLE, SPEC.input_size, max_images=20)
    report = export_int8(SPEC, directory, calibration)
    figures = report[onnx_file("vision", "int8")]
    assert isinstance(figures, dict)
    assert figures["images"] == 4
    assert float(figures["mean_feature_cosine"]) >= INT8_GATE.mean_feature
    manifest = load_manifest(directory)
    assert manifest.calibration is not None and manifest.calibration["source"] == str(BOTTLE)


def test_fallback_keeps_the_fewest_extra_convolutions_in_float_and_leaves_that_model() -> None:
    from export.pipeline import MAX_EXTRA_FLOAT_CONVS, _fewest_float_convs

    for needed in (1, 3, 5, 16):
        tried: list[int] = []

        def attempt(n: int, needed: int = needed, tried: list[int] = tried) -> dict[str, object]:
            tried.append(n)
            if n < needed:
                raise ParityError(f"mean_feature_cosine too low with {n}")
            return {"mean_feature_cosine": 0.99, "n": n}

        figures = _fewest_float_convs(attempt)
        assert figures["extra_float_convs"] == needed and figures["n"] == needed
        assert tried[-1] == needed, "the file left behind must be the model the figures describe"
    with pytest.raises(ParityError, match=rf"with 0 \(and with up to {MAX_EXTRA_FLOAT_CONVS} more"):
        _fewest_float_convs(
            lambda n: (_ for _ in ()).throw(ParityError(f"mean_feature_cosine too low with {n}"))
        )


def test_fallback_float_convolutions_follow_the_first_block(artifacts: Path) -> None:
    fp32 = onnx.load(str(artifacts / onnx_file("vision")))
    convs = [n.name for n in fp32.graph.node if n.op_type == "Conv"]
    base, more = set(float_prefix(fp32)), set(float_prefix(fp32, 3))
    assert more - base == set(convs[5:8])
