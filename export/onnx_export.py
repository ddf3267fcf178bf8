"""PyTorch encoders -> ONNX (FP32), each artifact gated on parity with PyTorch.

A failed gate is a build error (anomalib #3726, #2303: exported scores that silently differ from the
original are what users of other tools complain about most).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from edge.inspection.model import (
    COMPARISON_FILE,
    COMPARISON_OUTPUTS,
    FEATURE_CHANNELS,
    VISION_FILE,
    VISION_OUTPUTS,
    ModelSpec,
    torch_modules,
    weights_sha256,
)

log = logging.getLogger(__name__)
OPSET = 17  # supported by TensorRT 10 and 11 parsers and by ONNX Runtime
PARITY_ATOL = 1e-3


class ParityError(RuntimeError):
    """An exported artifact does not reproduce the reference outputs."""


def _example_vision(spec: ModelSpec, batch: int = 2) -> np.ndarray:
    rng = np.random.default_rng(0)
    h, w = spec.input_size
    return rng.integers(0, 256, size=(batch, h, w, 3), dtype=np.uint8)


def _example_comparison(spec: ModelSpec, k: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    h, w = spec.feature_size

    def unit(n: int) -> np.ndarray:
        x = rng.normal(size=(n, FEATURE_CHANNELS, h, w)).astype(np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    valid = np.ones((k, 1, h, w), np.float32)
    valid[:, :, :2, :] = 0.0
    return {"query": unit(1), "templates": unit(k), "template_valid": valid}


def _export(module: nn.Module, args: tuple[torch.Tensor, ...], path: Path, inputs: list[str],
            outputs: tuple[str, ...], dynamic: dict[str, dict[int, str]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, str(path), input_names=inputs, output_names=list(outputs),
            dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
        )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    model = onnx.shape_inference.infer_shapes(model)
    onnx.save(model, str(path))


def check_parity(path: Path, module: nn.Module, feeds: dict[str, np.ndarray], outputs: tuple[str, ...],
                 atol: float = PARITY_ATOL) -> dict[str, float]:
    """Max abs difference per output between ONNX Runtime and PyTorch; raises :class:`ParityError`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(list(outputs), feeds)
    with torch.inference_mode():
        ref = module(*[torch.from_numpy(v) for v in feeds.values()])
    diffs = {}
    for name, value in zip(outputs, got, strict=True):
        diffs[name] = float(np.abs(np.asarray(value) - getattr(ref, name).numpy()).max())
    bad = {k: v for k, v in diffs.items() if not v <= atol}
    if bad:
        raise ParityError(f"{path.name}: ONNX Runtime differs from PyTorch beyond {atol}: {bad}")
    return diffs


def export_onnx(spec: ModelSpec, out_dir: Path) -> dict[str, object]:
    """Export both encoders into ``out_dir`` and gate them; returns the parity report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    vision, comparison = torch_modules(spec)
    assert isinstance(vision, nn.Module) and isinstance(comparison, nn.Module)
    report: dict[str, object] = {"model_id": spec.model_id(weights_sha256()), "opset": OPSET}
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        tmp_dir = Path(tmp)
        image = _example_vision(spec)
        _export(vision, (torch.from_numpy(image),), tmp_dir / VISION_FILE, ["image"], VISION_OUTPUTS,
                {"image": {0: "batch"}, "features": {0: "batch"}, "descriptor": {0: "batch"}})
        report["vision_parity"] = check_parity(tmp_dir / VISION_FILE, vision, {"image": image}, VISION_OUTPUTS)
        feeds = _example_comparison(spec)
        _export(comparison, tuple(torch.from_numpy(v) for v in feeds.values()), tmp_dir / COMPARISON_FILE,
                list(feeds), COMPARISON_OUTPUTS, {"templates": {0: "k"}, "template_valid": {0: "k"}})
        report["comparison_parity"] = check_parity(
            tmp_dir / COMPARISON_FILE, comparison, feeds, COMPARISON_OUTPUTS
        )
        # Atomic install: a half-written artifact set is never visible to a station.
        for name in (VISION_FILE, COMPARISON_FILE):
            os.replace(tmp_dir / name, out_dir / name)
    (out_dir / "parity.json").write_text(json.dumps(report, indent=2))
    log.info("exported ONNX encoders to %s (parity %s)", out_dir, report)
    return report


def ensure_onnx(spec: ModelSpec, out_dir: Path) -> None:
    """Export the ONNX encoders into ``out_dir`` unless a gated export is already there."""
    if all((out_dir / f).exists() for f in (VISION_FILE, COMPARISON_FILE, "parity.json")):
        return
    export_onnx(spec, out_dir)
