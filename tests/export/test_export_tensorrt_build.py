from __future__ import annotations

import inspect
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from engines.artifact_set import SPEC, copy_set
from engines.fake_tensorrt import FakeGpu
from packaging.version import Version

from edge.artifacts.engines import BUILD_RECORD, engine_dir, engines_stale
from edge.artifacts.fingerprint import DeviceFingerprint, cuda_driver_version_string, gpu_unavailable_reason
from edge.artifacts.manifest import load_manifest
from edge.artifacts.names import engine_file, onnx_file
from edge.config.skus import SkuSection
from edge.engines.tensorrt_runner import TensorRtRunner
from edge.inspection.inspector import Inspector
from edge.inspection.settings import InspectorSettings
from edge.model.backbone_catalog import file_sha256
from edge.model.sizing import sku_input_size
from export import tensorrt_build
from export.tensorrt_build import (
    TIMING_CACHE,
    EngineBuildError,
    build_engine,
    build_engines,
    dynamic_ranges,
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


def test_profile_ranges_follow_the_config_schema_and_the_inspector(
    artifacts: Path, fake_gpu: FakeGpu
) -> None:
    # One source of truth: the largest top_k the schema accepts, the patch memory packed as templates
    # (a separate call of the same graph), and the batch the inspector encodes golden images in.
    schema_top_k = SkuSection.model_json_schema()["properties"]["top_k"]["maximum"]
    enroll_batch = inspect.signature(Inspector.encode).parameters["batch"].default
    ranges = dynamic_ranges((128, 128))
    assert ranges["k"][2] == max(schema_top_k, InspectorSettings().memory_chunks) == 32
    assert ranges["batch"][2] == enroll_batch == 8
    assert dynamic_ranges((128, 128), memory_chunks=40)["k"][2] == 40  # a bigger memory widens k
    # What the builder hands TensorRT, and what the runner then accepts and refuses.
    engines = artifacts.parent / f"{artifacts.name}-profile-engines"
    engines.mkdir(exist_ok=True)
    for encoder in ("vision", "comparison"):
        build_engine(
            artifacts / onnx_file(encoder), engines / f"{encoder}.engine", engines / TIMING_CACHE, ranges
        )
    profiles = {str(b["source"]): b["profile"] for b in fake_gpu.builds}
    assert profiles[onnx_file("vision")]["image"][2][0] == enroll_batch  # type: ignore[index]
    assert profiles[onnx_file("comparison")]["templates"][2][0] == schema_top_k  # type: ignore[index]
    vision = TensorRtRunner(engines / "vision.engine")
    vision.infer({"image": np.zeros((enroll_batch, 128, 128, 3), np.float32)})  # fake engines are float32
    comparison = TensorRtRunner(engines / "comparison.engine")

    def templates(k: int) -> dict[str, np.ndarray]:
        return {
            "query": np.zeros((1, SPEC.feature_channels, 16, 16), np.float32),
            "templates": np.zeros((k, SPEC.feature_channels, 16, 16), np.float32),
            "template_valid": np.ones((k, 1, 16, 16), np.float32),
        }

    assert comparison.infer(templates(schema_top_k))["templates_plus_one"].shape[0] == schema_top_k
    with pytest.raises(ValueError, match="exceeds the engine profile"):
        comparison.infer(templates(schema_top_k + 1))


def test_a_corrupt_timing_cache_is_replaced_and_files_are_world_readable(
    artifacts: Path, tmp_path: Path, fake_gpu: FakeGpu
) -> None:
    cache = tmp_path / TIMING_CACHE
    cache.write_bytes(b"half a timing cache from a power cut")
    engine = tmp_path / "vision.engine"
    build_engine(artifacts / onnx_file("vision"), engine, cache, dynamic_ranges((128, 128)))
    assert cache.read_bytes().startswith(b"FAKECACHE")  # a fresh cache replaced the corrupt one
    build_engine(artifacts / onnx_file("vision"), engine, cache, dynamic_ranges((128, 128)))  # and reads back
    for path in (engine, cache):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name
    assert fake_gpu.loggers == 1


def test_each_engine_file_is_built_once_and_build_json_matches_the_files(
    artifacts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = copy_set(artifacts, tmp_path / "set")
    built: list[tuple[str, str]] = []

    def fake_build(onnx_path: Path, engine_path: Path, *args: object) -> None:
        built.append((onnx_path.name, engine_path.name))
        engine_path.write_bytes(os.urandom(64))  # TensorRT builds are not byte-identical

    monkeypatch.setattr(tensorrt_build, "build_engine", fake_build)
    monkeypatch.setattr(tensorrt_build, "open_tensorrt", lambda *args: (None, {"checked": 1.0}))
    monkeypatch.setattr(tensorrt_build, "device_fingerprint", lambda: GPU)
    engines = engine_dir(directory, GPU)
    manifest = load_manifest(directory)

    def check_records() -> None:
        record = json.loads((engines / BUILD_RECORD).read_text())
        for precision, entries in record["precisions"].items():
            assert not engines_stale(directory, precision, GPU, manifest).stale, precision
            for encoder, entry in entries.items():
                assert entry["engine_sha256"] == file_sha256(engines / engine_file(encoder, precision))

    build_engines(directory, ["fp32", "int8", "fp16"], progress=False)
    assert len(built) == len(set(built)) == 5  # the FP32 comparison engine serves fp32 and int8, built once
    check_records()
    assert stat.S_IMODE((engines / BUILD_RECORD).stat().st_mode) == 0o644
    # Rebuilding INT8 alone rebuilds the shared comparison engine: FP32's record follows it.
    built.clear()
    build_engines(directory, ["int8"], progress=False)
    assert sorted(built) == sorted(
        [
            (onnx_file("vision", "int8", "tensorrt"), engine_file("vision", "int8")),
            (onnx_file("comparison"), engine_file("comparison", "int8")),
        ]
    )
    check_records()
    # --if-stale rebuilds only what changed, and reuses the shared engine that is still up to date.
    (engines / engine_file("vision", "int8")).write_bytes(b"tampered")
    built.clear()
    build_engines(directory, ["fp32", "int8"], if_stale=True, progress=False)
    assert built == [(onnx_file("vision", "int8", "tensorrt"), engine_file("vision", "int8"))]
    check_records()
