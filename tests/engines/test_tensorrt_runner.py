from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from edge.artifacts.names import engine_file, onnx_file
from edge.engines.onnxruntime_runner import OnnxRuntimeRunner
from edge.engines.parity import cosine_along_channels
from edge.engines.selection import open_runners
from edge.engines.tensorrt_runner import MAX_CONTEXTS, TensorRtRunner, parity_feeds, tensorrt_logger
from edge.model.io import EngineInputError
from engines.artifact_set import SPEC
from engines.fake_tensorrt import HANG, FakeGpu, engine_bytes
from export.onnx_export import example_vision


def test_parity_feeds_follow_the_encoders_contracts(artifacts: Path) -> None:
    comparison = OnnxRuntimeRunner(artifacts / onnx_file("comparison"))
    feeds = parity_feeds(comparison.inputs, dynamic=3)
    assert (
        feeds["templates"].shape == (3, SPEC.feature_channels, 16, 16)
        and feeds["templates"].dtype == np.float32
    )
    np.testing.assert_allclose(np.linalg.norm(feeds["query"], axis=1), 1.0, rtol=1e-5)
    assert set(np.unique(feeds["template_valid"])) <= {0.0, 1.0}
    vision = OnnxRuntimeRunner(artifacts / onnx_file("vision"))
    assert parity_feeds(vision.inputs)["image"].dtype == np.uint8
    comparison.infer(feeds)  # the feeds are valid inputs


def test_engine_file_names() -> None:
    assert engine_file("vision", "int8") == "vision_encoder.int8.engine"
    assert engine_file("comparison", "int8") == "comparison_encoder.fp32.engine"


def _fake_engine(tmp_path: Path) -> Path:
    path = tmp_path / "fake.engine"
    # "x": dynamic batch 1..8 of 4 values; "scale": no dynamic dimension (no profile entry to ask).
    path.write_bytes(engine_bytes({"x": ((1, 4), (1, 4), (8, 4)), "scale": ((1,), (1,), (1,))}))
    return path


def test_runner_sizes_static_inputs_from_the_engine_and_shares_one_logger(
    fake_gpu: FakeGpu, tmp_path: Path
) -> None:
    first = TensorRtRunner(_fake_engine(tmp_path))
    second = TensorRtRunner(_fake_engine(tmp_path))
    assert fake_gpu.loggers == 1 and tensorrt_logger() is tensorrt_logger()
    assert fake_gpu.profile_queries == ["x", "x"]  # never asked for the static input's profile
    assert {s.name: s.shape for s in first.inputs} == {"x": (-1, 4), "scale": (1,)}
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = second.infer({"x": x, "scale": np.ones(1, np.float32)})
    np.testing.assert_array_equal(out["x_plus_one"], x + 1)
    np.testing.assert_array_equal(out["scale_plus_one"], [2.0])
    with pytest.raises(ValueError, match=r"exceeds the engine profile's maximum \(8, 4\)"):
        first.infer({"x": np.zeros((9, 4), np.float32), "scale": np.ones(1, np.float32)})


def test_concurrent_calls_never_share_an_execution_context_or_its_buffers(
    fake_gpu: FakeGpu, tmp_path: Path
) -> None:
    runner = TensorRtRunner(_fake_engine(tmp_path))
    wrong: list[str] = []
    start = threading.Barrier(6)

    def work(seed: int) -> None:
        start.wait()
        for i in range(15):
            x = np.full((1 + (seed + i) % 8, 4), seed * 100 + i, np.float32)
            out = runner.infer({"x": x, "scale": np.full(1, seed, np.float32)})
            if out["x_plus_one"].shape != x.shape or not np.array_equal(out["x_plus_one"], x + 1):
                wrong.append(f"worker {seed} call {i}")

    threads = [threading.Thread(target=work, args=(s,), name=f"w{s}") for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert fake_gpu.executions == 90
    assert fake_gpu.overlaps == [], "an execution context was used by two threads at once"
    assert wrong == [], "a call got another call's results (shared staging buffers)"
    assert 1 < runner.contexts <= MAX_CONTEXTS


def test_a_hung_call_does_not_block_the_replacement_worker(fake_gpu: FakeGpu, tmp_path: Path) -> None:
    runner = TensorRtRunner(_fake_engine(tmp_path))
    scale = np.ones(1, np.float32)
    hung = threading.Thread(
        target=runner.infer, args=({"x": np.full((1, 4), HANG, np.float32), "scale": scale},), daemon=True
    )
    hung.start()
    while fake_gpu.executions == 0:  # the hung call holds its context inside execute_async_v3
        threading.Event().wait(0.001)
    out = runner.infer({"x": np.zeros((2, 4), np.float32), "scale": scale})  # the watchdog's new worker
    np.testing.assert_array_equal(out["x_plus_one"], np.ones((2, 4)))
    assert runner.contexts == 2 and hung.is_alive()
    fake_gpu.release.set()
    hung.join(10)
    assert fake_gpu.overlaps == []


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_tensorrt_engines_build_pass_parity_and_are_chosen(
    artifacts: Path, tmp_path: Path, precision: str
) -> None:
    import shutil

    from export.tensorrt_build import build_engines

    directory = tmp_path / "set"
    shutil.copytree(artifacts, directory)
    report = build_engines(directory, [precision], progress=False)  # type: ignore[list-item]
    assert precision in report["precisions"]  # type: ignore[operator]
    selected = open_runners(directory, precision)  # type: ignore[arg-type]
    assert selected.choice.backend == "tensorrt" and selected.choice.reasons == ()
    reference = OnnxRuntimeRunner(directory / onnx_file("vision", precision, "tensorrt"))  # type: ignore[arg-type]
    for batch in (1, 3):  # dynamic batch within the profile, buffers reused across shapes
        image = example_vision(SPEC, batch=batch, seed=batch)
        got, want = selected.vision.infer({"image": image}), reference.infer({"image": image})
        assert cosine_along_channels(want["features"], got["features"]).mean() > 0.98
    with pytest.raises(EngineInputError):
        selected.vision.infer({"image": image.astype(np.float32)})
    again = build_engines(directory, [precision], if_stale=True, progress=False)  # type: ignore[list-item]
    assert again["precisions"] == {precision: "up to date"}
