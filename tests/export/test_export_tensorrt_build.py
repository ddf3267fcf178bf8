from __future__ import annotations

import json
from pathlib import Path

import pytest
from engines.artifact_set import SPEC, copy_set
from packaging.version import Version

from edge.engines.artifacts import engine_file, onnx_file
from edge.inspection.backbone import file_sha256
from edge.inspection.sizing import sku_input_size
from export.fingerprint import DeviceFingerprint, cuda_driver_version_string, gpu_unavailable_reason
from export.manifest import load_manifest
from export.tensorrt_build import (
    BUILD_RECORD,
    EngineBuildError,
    dynamic_ranges,
    engine_dir,
    engines_stale,
    network_flags,
    profile_shapes,
)

GPU = DeviceFingerprint(tensorrt="10.3.0.30", cuda_driver="12.6", compute_capability="8.7", gpu_name="Orin")


def test_fingerprint_key_changes_with_each_component() -> None:
    assert GPU.key() == "trt10.3.0.30-cuda12.6-sm87"
    assert cuda_driver_version_string(12060) == "12.6" and cuda_driver_version_string(11040) == "11.4"
    others = [
        DeviceFingerprint("10.4.0.26", "12.6", "8.7"),
        DeviceFingerprint("10.3.0.30", "12.8", "8.7"),
        DeviceFingerprint("10.3.0.30", "12.6", "8.9"),
    ]
    assert len({GPU.key(), *(o.key() for o in others)}) == 4
    assert "gpu_name" in json.loads(GPU.to_json())


def test_network_flags_by_version_without_string_comparison() -> None:
    # 11+: strongly typed always; the flag is deprecated, so none is passed (no tensorrt import needed).
    assert network_flags(Version("11.0.0")) == 0
    assert network_flags(Version("11.10.1")) == 0
    with pytest.raises(EngineBuildError, match=r"TensorRT 9.2 is not supported"):
        network_flags(Version("9.2"))


def test_profiles_cover_the_declared_dynamic_dims(artifacts: Path) -> None:
    vision = profile_shapes(artifacts / onnx_file("vision"))
    assert vision == {"image": ((1, 64, 64, 3), (1, 320, 320, 3), (8, 960, 960, 3))}
    # Every input the runtime can choose for a SKU lies inside the profile (one source of truth).
    ranges = dynamic_ranges((320, 320))
    for golden in ((100, 2000), (2000, 100), (500, 750), (512, 512)):
        h, w = sku_input_size(golden, (320, 320))
        assert (
            ranges["height"][0] <= h <= ranges["height"][2] and ranges["width"][0] <= w <= ranges["width"][2]
        )
        assert ranges["fh"][2] >= h // 8 and ranges["fw"][2] >= w // 8
    sides = {"fh": (8, 16, 32), "fw": (8, 16, 32)}
    comparison = profile_shapes(artifacts / onnx_file("comparison"), {"k": (1, 2, 6), **sides})
    c = SPEC.feature_channels
    assert comparison["query"] == ((1, c, 8, 8), (1, c, 16, 16), (1, c, 32, 32))
    assert comparison["templates"] == ((1, c, 8, 8), (2, c, 16, 16), (6, c, 32, 32))
    with pytest.raises(EngineBuildError, match="dynamic dim 'fh' has no range"):
        profile_shapes(artifacts / onnx_file("comparison"), {"batch": (1, 1, 4)})


def _record_engines(directory: Path, fingerprint: DeviceFingerprint) -> Path:
    """Write engine files and a build record as a successful build would (the bytes are not an engine)."""
    manifest = load_manifest(directory)
    engines = engine_dir(directory, fingerprint)
    engines.mkdir(parents=True)
    entries = {}
    for encoder in ("vision", "comparison"):
        path = engines / engine_file(encoder, "fp16")
        path.write_bytes(f"engine {encoder}".encode())
        source = onnx_file(encoder, "fp16", "tensorrt")
        entries[encoder] = {
            "source_sha256": manifest.files[source].sha256,
            "engine_sha256": file_sha256(path),
        }
    (engines / BUILD_RECORD).write_text(json.dumps({"precisions": {"fp16": entries}}))
    return engines


def test_staleness_follows_device_key_sources_and_engine_bytes(artifacts: Path, tmp_path: Path) -> None:
    directory = copy_set(artifacts, tmp_path / "set")
    manifest = load_manifest(directory)
    assert (
        engines_stale(directory, "fp16", GPU, manifest).reason
        == "no engines for device trt10.3.0.30-cuda12.6-sm87"
    )
    engines = _record_engines(directory, GPU)
    assert not engines_stale(directory, "fp16", GPU, manifest).stale
    assert engines_stale(directory, "int8", GPU, manifest).stale  # never built
    upgraded = DeviceFingerprint("10.7.0.23", "12.6", "8.7")  # firmware update brought a new TensorRT
    assert engines_stale(directory, "fp16", upgraded, manifest).stale
    (engines / engine_file("vision", "fp16")).write_bytes(b"corrupted")
    status = engines_stale(directory, "fp16", GPU, manifest)
    assert status.stale and status.reason == "vision_encoder.fp16.engine missing or modified"


def test_gpu_probe_gives_a_reason_here() -> None:
    reason = gpu_unavailable_reason()
    if reason is None:
        pytest.skip("this machine has a GPU with TensorRT")
    assert "nvidia-smi" in reason or "TensorRT" in reason or "pycuda" in reason
