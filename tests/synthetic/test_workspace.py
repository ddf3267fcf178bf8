"""The demo station's workspace: generated once, its artifact folder kept only for the running model."""

from __future__ import annotations

from pathlib import Path

from edge.artifacts.manifest import Manifest, write_manifest
from edge.model.spec import ModelSpec, spec_model_id
from edge.synthetic.workspace import prepare_demo


def test_demo_workspace_drops_another_models_artifacts_and_keeps_its_own(tmp_path: Path) -> None:
    artifacts = tmp_path / "demo" / "artifacts"

    def exported(model_id: str) -> None:
        artifacts.mkdir(parents=True, exist_ok=True)
        (artifacts / "vision_encoder.onnx").write_bytes(model_id.encode())
        write_manifest(artifacts, Manifest(model_id=model_id, spec={}, weights_sha256="", opset=17, io={}))

    exported("lite0-000000000000")  # made by an older version of the model code
    prepare_demo(tmp_path / "demo")
    assert not (artifacts / "vision_encoder.onnx").exists(), "stale export of another model kept"
    assert artifacts.is_dir()

    current = spec_model_id(ModelSpec())
    exported(current)
    prepare_demo(tmp_path / "demo")
    assert (artifacts / "vision_encoder.onnx").read_bytes() == current.encode()
