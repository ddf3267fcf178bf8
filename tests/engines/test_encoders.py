"""Loading the encoders never builds them: a missing or foreign artifact set names the command that does."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.artifacts.manifest import Manifest, ManifestError, write_manifest
from edge.engines.encoders import ArtifactsMissingError, configured_encoders, export_command, onnx_encoders
from edge.model.spec import ModelSpec, spec_model_id
from engines.artifact_set import SPEC, copy_set


def test_an_empty_folder_is_refused_with_the_export_command_and_left_empty(tmp_path: Path) -> None:
    with pytest.raises(ArtifactsMissingError, match=r"run `edge export onnx --out .*` first") as caught:
        configured_encoders((320, 320), tmp_path, "fp32", ["onnxruntime-cpu"])
    assert caught.value.command == f"edge export onnx --out {tmp_path}"
    assert isinstance(caught.value, FileNotFoundError)  # an expected start failure: plain words on `state`
    assert list(tmp_path.iterdir()) == []


def test_another_models_set_is_refused_as_stale_with_the_command(tmp_path: Path) -> None:
    (tmp_path / "vision_encoder.onnx").write_bytes(b"old")
    write_manifest(
        tmp_path, Manifest(model_id="lite0-000000000000", spec={}, weights_sha256="", opset=17, io={})
    )
    with pytest.raises(ArtifactsMissingError, match="holds model lite0-000000000000") as caught:
        onnx_encoders(ModelSpec(), tmp_path)
    assert isinstance(caught.value, ManifestError)
    assert spec_model_id(ModelSpec()) in str(caught.value)


def test_the_command_names_every_option_that_differs_from_the_defaults() -> None:
    spec = ModelSpec(input_size=(256, 384), backbone="lite1")
    assert export_command(spec, Path("/a"), "int8") == (
        "edge export int8 --out /a --input-size 256 384 --backbone lite1 --calib <golden images>"
    )
    assert export_command(ModelSpec(), Path("/a"), "fp16") == "edge export fp16 --out /a"


def test_a_verified_set_loads(artifacts: Path, tmp_path: Path) -> None:
    encoders = onnx_encoders(SPEC, copy_set(artifacts, tmp_path / "set"), threads=1)
    assert encoders.model_id == spec_model_id(SPEC)
    assert encoders.backend == "onnxruntime-cpu"
