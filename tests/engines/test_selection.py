from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from edge.artifacts.fingerprint import DeviceFingerprint, GpuUnavailableError
from edge.artifacts.manifest import ManifestError
from edge.artifacts.names import onnx_file
from edge.engines.onnxruntime_runner import OnnxRuntimeRunner
from edge.engines.selection import BackendUnavailableError, Probe, open_runners
from edge.model.spec import spec_model_id
from engines.artifact_set import SPEC, copy_set
from export.onnx_export import example_vision

FAKE_GPU = DeviceFingerprint(
    tensorrt="10.3.0.30", cuda_driver="12.6", compute_capability="8.7", gpu_name="Orin"
)


def _no_gpu() -> object:
    raise GpuUnavailableError("no NVIDIA driver (nvidia-smi not found)")


def test_without_gpu_falls_back_to_cpu_and_says_why(
    artifacts: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="edge.engines.selection"):
        selected = open_runners(artifacts, "fp32", model_id=spec_model_id(SPEC))
    choice = selected.choice
    assert choice.backend == "onnxruntime-cpu"
    assert [r.split(":")[0] for r in choice.reasons] == ["tensorrt", "onnxruntime-cuda"]
    assert "CUDAExecutionProvider" in choice.reasons[1]
    assert choice.as_state() == {
        "backend": "onnxruntime-cpu",
        "precision": "fp32",
        "fallback_reasons": list(choice.reasons),
    }
    assert sum("falling back" in r.message for r in caplog.records) == 2
    image = example_vision(SPEC, batch=1)
    got = selected.vision.infer({"image": image})
    want = OnnxRuntimeRunner(artifacts / onnx_file("vision")).infer({"image": image})
    np.testing.assert_array_equal(got["features"], want["features"])


def test_gpu_present_but_no_engine_for_it_names_the_fix(artifacts: Path) -> None:
    # Fault injection: the machine claims a GPU (fingerprint) but no engines were built for it.
    probe = Probe(gpu=lambda: FAKE_GPU, onnxruntime_providers=lambda: ["CPUExecutionProvider"])
    choice = open_runners(artifacts, "int8", probe=probe).choice
    assert choice.backend == "onnxruntime-cpu"
    assert choice.reasons[0] == (
        f"tensorrt: no engines for device trt10.3.0.30-cuda12.6-sm87; run `edge export engines {artifacts}`"
    )


@pytest.mark.filterwarnings("ignore:Specified provider .CUDAExecutionProvider.:UserWarning")
def test_cuda_provider_that_silently_fails_is_a_reason_not_a_crash(artifacts: Path) -> None:
    # Fault injection: the provider is advertised, but this CPU build cannot create it.
    probe = Probe(
        gpu=_no_gpu, onnxruntime_providers=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    choice = open_runners(
        artifacts, "fp32", probe=probe, preference=("onnxruntime-cuda", "onnxruntime-cpu")
    ).choice
    assert choice.backend == "onnxruntime-cpu"
    assert len(choice.reasons) == 1 and choice.reasons[0].startswith("onnxruntime-cuda: ")


def test_int8_precision_loads_the_onnxruntime_qdq_file(artifacts: Path) -> None:
    probe = Probe(gpu=_no_gpu, onnxruntime_providers=lambda: ["CPUExecutionProvider"])
    selected = open_runners(artifacts, "int8", probe=probe)
    assert isinstance(selected.vision, OnnxRuntimeRunner)
    assert selected.vision.path.name == onnx_file("vision", "int8", "onnxruntime")
    assert selected.comparison.path.name == onnx_file("comparison")  # type: ignore[attr-defined]


def test_tampered_artifact_is_an_error_not_a_fallback(artifacts: Path, tmp_path: Path) -> None:
    directory = copy_set(artifacts, tmp_path / "set")
    with (directory / onnx_file("vision")).open("ab") as fh:
        fh.write(b"x")
    with pytest.raises(ManifestError, match=r"vision_encoder.onnx: SHA-256"):
        open_runners(directory, "fp32")


def test_no_backend_left_lists_every_reason(artifacts: Path) -> None:
    probe = Probe(gpu=_no_gpu, onnxruntime_providers=lambda: ["CPUExecutionProvider"])
    with pytest.raises(
        BackendUnavailableError, match=r"tensorrt: no NVIDIA driver.*onnxruntime-cuda: this onnxruntime"
    ):
        open_runners(artifacts, "fp32", probe=probe, preference=("tensorrt", "onnxruntime-cuda"))
    with pytest.raises(ValueError, match="unknown backend"):
        open_runners(artifacts, "fp32", probe=probe, preference=("openvino",))
