"""The demo station's workspace: generated once, its artifact folder kept only for the running model."""

from __future__ import annotations

import shutil
from pathlib import Path

from edge.artifacts.manifest import Manifest, write_manifest
from edge.config.resolve import default_allowed_roots, load_and_resolve
from edge.model.spec import ModelSpec, spec_model_id
from edge.synthetic.workspace import TEMPLATE, prepare_demo


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


def test_the_demo_template_resolves_as_a_bundle_with_what_the_demo_generates(tmp_path: Path) -> None:
    # `edge demo` generates station_configs/demo-data/ next to demo.yaml; the same layout in a copy here.
    prepare_demo(tmp_path / "demo-data")
    config = tmp_path / "demo.yaml"
    shutil.copy(TEMPLATE, config)
    resolved = load_and_resolve(config, roots=default_allowed_roots(config))
    assert resolved.golden_images["widget"], "the template's golden folder is the demo's"
    assert resolved.validation_images["widget"]
    assert resolved.paths["camera.replay.dir"] == (tmp_path / "demo-data" / "replay").resolve()
