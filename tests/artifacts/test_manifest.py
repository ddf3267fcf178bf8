from __future__ import annotations

import json
from pathlib import Path

import pytest
from engines.artifact_set import copy_set

from edge.artifacts.manifest import ManifestError, load_manifest, verify_manifest
from edge.artifacts.names import MANIFEST_FILE, onnx_file
from edge.model.backbone_catalog import DEFAULT_BACKBONE


def test_manifest_records_versions_io_and_hashes(artifacts: Path) -> None:
    manifest = verify_manifest(artifacts)
    for package in ("torch", "onnx", "onnxruntime", "onnxslim"):
        assert manifest.versions[package]
    assert "tensorrt" in manifest.versions  # None here: recorded as absent, not forgotten
    vision_io = manifest.io["vision"]
    assert isinstance(vision_io, dict)
    assert vision_io["inputs"] == [
        {"name": "image", "dtype": "uint8", "shape": ["batch", "height", "width", 3]}
    ]
    assert vision_io["outputs"] == ["features", "descriptor"]
    assert {e.precision for e in manifest.files.values()} == {"fp32", "int8", "fp16"}
    assert all(len(e.sha256) == 64 and e.size > 0 for e in manifest.files.values())


def test_tampered_file_is_refused_by_name(artifacts: Path, tmp_path: Path) -> None:
    directory = copy_set(artifacts, tmp_path / "set")
    path = directory / onnx_file("vision", "int8")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match=r"vision_encoder\.int8\.onnx: SHA-256 .* does not match"):
        verify_manifest(directory)


def test_missing_listed_file_is_refused(artifacts: Path, tmp_path: Path) -> None:
    directory = copy_set(artifacts, tmp_path / "set")
    (directory / onnx_file("comparison", "fp16")).unlink()
    with pytest.raises(ManifestError, match=r"comparison_encoder\.fp16\.onnx: listed .* but missing"):
        verify_manifest(directory)


def test_other_model_id_is_refused(artifacts: Path) -> None:
    wanted = rf"artifacts are for model {DEFAULT_BACKBONE}-.*expects lite0-000000000000"
    with pytest.raises(ManifestError, match=wanted):
        verify_manifest(artifacts, expected_model_id="lite0-000000000000")


def test_unlisted_required_file_is_refused(artifacts: Path, tmp_path: Path) -> None:
    directory = copy_set(artifacts, tmp_path / "set")
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    del manifest["files"][onnx_file("vision", "int8")]
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(
        ManifestError, match=r"vision_encoder\.int8\.onnx not in manifest.json \(never gated\)"
    ):
        verify_manifest(directory, require=[onnx_file("vision", "int8")])


def test_missing_and_malformed_manifests_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no manifest.json"):
        load_manifest(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ManifestError, match="malformed manifest"):
        load_manifest(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"format": 99}))
    with pytest.raises(ManifestError, match="manifest format 99"):
        load_manifest(tmp_path)
