from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from engines.artifact_set import SPEC, copy_set
from onnx import numpy_helper

from edge.artifacts.manifest import ManifestError, load_manifest
from edge.artifacts.names import MANIFEST_FILE, onnx_file
from edge.engines.encoders import onnx_encoders
from edge.engines.parity import ParityError
from edge.model.backbone_catalog import BACKBONE_NAMES, BackboneName, backbone_info
from edge.model.io import COMPARISON_OUTPUTS, VISION_OUTPUTS
from edge.model.spec import spec_model_id, torch_modules
from export.ensure import ensure_artifacts
from export.onnx_export import OPSET, PARITY_ATOL, check_parity, ensure_onnx, example_vision


def _dims(model: onnx.ModelProto, name: str) -> list[int | str]:
    value = next(v for v in model.graph.input if v.name == name)
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_fp32_export_declares_named_io_dynamic_dims_and_opset(artifacts: Path) -> None:
    vision = onnx.load(str(artifacts / onnx_file("vision")))
    comparison = onnx.load(str(artifacts / onnx_file("comparison")))
    assert [o.name for o in vision.graph.output] == list(VISION_OUTPUTS)
    assert [o.name for o in comparison.graph.output] == list(COMPARISON_OUTPUTS)
    assert _dims(vision, "image") == ["batch", "height", "width", 3]
    assert _dims(comparison, "query") == [1, SPEC.feature_channels, "fh", "fw"]
    assert _dims(comparison, "templates") == ["k", SPEC.feature_channels, "fh", "fw"]
    assert _dims(comparison, "template_valid") == ["k", 1, "fh", "fw"]
    assert {op.domain: op.version for op in vision.opset_import}[""] == OPSET
    # TensorRT takes uint8 only as network IO feeding a cast: the cast must come first.
    assert vision.graph.node[0].op_type == "Cast"
    onnx.checker.check_model(vision)


def test_fp32_parity_figures_are_recorded_and_within_tolerance(artifacts: Path) -> None:
    manifest = load_manifest(artifacts)
    assert manifest.model_id == spec_model_id(SPEC)
    assert manifest.opset == OPSET
    for name in (onnx_file("vision"), onnx_file("comparison")):
        parity = manifest.files[name].parity
        assert parity["reference"] == "pytorch"
        for figures in (parity["raw_max_abs"], parity["max_abs"]):
            assert isinstance(figures, dict) and figures
            assert all(0.0 <= v <= PARITY_ATOL for v in figures.values())


def test_exported_models_run_with_other_batch_and_k(artifacts: Path) -> None:
    vision = ort.InferenceSession(str(artifacts / onnx_file("vision")), providers=["CPUExecutionProvider"])
    features, descriptor = vision.run(None, {"image": example_vision(SPEC, batch=3)})
    assert features.shape == (3, SPEC.feature_channels, 16, 16) and descriptor.shape[0] == 3
    comparison = ort.InferenceSession(
        str(artifacts / onnx_file("comparison")), providers=["CPUExecutionProvider"]
    )
    k = 5
    feeds = {
        "query": features[:1],
        "templates": np.repeat(features[1:2], k, axis=0),
        "template_valid": np.ones((k, 1, 16, 16), np.float32),
    }
    anomaly, valid = comparison.run(None, feeds)
    assert anomaly.shape == (1, 1, 16, 16) and np.all(valid == 1.0)


def test_parity_gate_rejects_a_model_with_corrupted_weights(artifacts: Path, tmp_path: Path) -> None:
    model = onnx.load(str(artifacts / onnx_file("vision")))
    conv_weights = [i for i in model.graph.initializer if len(i.dims) == 4 and i.dims[0] > 3]
    target = conv_weights[len(conv_weights) // 2]
    array = numpy_helper.to_array(target).copy()
    array[: array.shape[0] // 2] *= -1.0  # flip the sign of half the filters of one layer
    target.CopyFrom(numpy_helper.from_array(array, target.name))
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    vision, _ = torch_modules(SPEC)
    with pytest.raises(ParityError, match=r"broken.onnx vs PyTorch.*features"):
        check_parity(broken, vision, {"image": example_vision(SPEC)}, VISION_OUTPUTS)


def test_ensure_onnx_reuses_a_verified_set(artifacts: Path, tmp_path: Path) -> None:
    directory = copy_set(artifacts, tmp_path / "set")
    before = (directory / onnx_file("vision")).stat().st_mtime_ns
    ensure_onnx(SPEC, directory)
    assert (directory / onnx_file("vision")).stat().st_mtime_ns == before


def test_ensure_onnx_refuses_a_tampered_set_instead_of_replacing_it(artifacts: Path, tmp_path: Path) -> None:
    directory = copy_set(artifacts, tmp_path / "set")
    with (directory / onnx_file("comparison")).open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ManifestError, match=r"comparison_encoder.onnx: SHA-256"):
        ensure_onnx(SPEC, directory)


def test_ensure_onnx_exports_when_there_is_no_manifest(artifacts: Path, tmp_path: Path) -> None:
    directory = tmp_path / "legacy"
    directory.mkdir()
    shutil.copy(artifacts / onnx_file("vision"), directory / onnx_file("vision"))
    ensure_onnx(SPEC, directory)
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    assert set(manifest["files"]) == {onnx_file("vision"), onnx_file("comparison")}


@pytest.mark.parametrize("backbone", [b for b in BACKBONE_NAMES if b != SPEC.backbone])
def test_every_backbone_exports_with_the_same_io_contract_and_runs_in_onnx_runtime(
    backbone: BackboneName, tmp_path: Path
) -> None:
    # The default backbone is covered by the session's artifact set above; the others by this.
    spec = replace(SPEC, backbone=backbone)
    encoders = onnx_encoders(spec, ensure_artifacts(spec, tmp_path / backbone), threads=1)
    manifest = load_manifest(tmp_path / backbone)
    assert manifest.model_id == spec_model_id(spec) == encoders.model_id
    assert manifest.model_id.startswith(f"{backbone}-") and manifest.spec["backbone"] == backbone
    channels = backbone_info(backbone).feature_channels
    comparison = onnx.load(str(tmp_path / backbone / onnx_file("comparison")))
    vision = onnx.load(str(tmp_path / backbone / onnx_file("vision")))
    assert [i.name for i in vision.graph.input] == ["image"]
    assert [o.name for o in vision.graph.output] == list(VISION_OUTPUTS)
    assert [o.name for o in comparison.graph.output] == list(COMPARISON_OUTPUTS)
    assert _dims(comparison, "templates") == ["k", channels, "fh", "fw"]
    # Dynamic height/width: a 128x192 SKU runs on the graph exported at 128x128.
    out = encoders.vision.infer({"image": example_vision(spec, batch=2)[:, :, :64].repeat(3, axis=2)})
    features = out["features"]
    assert features.shape == (2, channels, 16, 24)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-4)
    assert out["descriptor"].shape == (2, 16 * backbone_info(backbone).stride16_channels)
    feeds = {
        "query": features[:1],
        "templates": features[1:],
        "template_valid": np.ones((1, 1, 16, 24), np.float32),
    }
    anomaly = encoders.comparison.infer(feeds)["anomaly"]
    assert anomaly.shape == (1, 1, 16, 24) and np.isfinite(anomaly).all()
