from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.engines.artifacts import engine_file, onnx_file
from edge.engines.base import EngineInputError
from edge.engines.onnxruntime_runner import OnnxRuntimeRunner
from edge.engines.parity import cosine_along_channels
from edge.engines.selection import open_runners
from edge.engines.tensorrt_runner import parity_feeds
from engines.artifact_set import SPEC
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
