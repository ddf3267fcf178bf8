"""PyTorch encoders -> ONNX (FP32): export, check, shape-infer, simplify; each artifact gated on parity.

A failed gate is a build error (anomalib #3726, #2303: exported scores that silently differ from the
original are what users of other tools complain about most). The gate runs twice: on the raw export, and on
the simplified graph that is actually shipped, so a simplifier bug cannot slip through.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from edge.artifacts.manifest import (
    Manifest,
    ManifestError,
    io_spec,
    load_manifest,
    verify_manifest,
    write_manifest,
)
from edge.artifacts.names import MANIFEST_FILE, onnx_file
from edge.engines.parity import ParityError, Tolerance, compare
from edge.model.io import COMPARISON_OUTPUTS, VISION_OUTPUTS
from edge.model.spec import ModelSpec, spec_model_id, torch_modules, weights_sha256

__all__ = ["OPSET", "PARITY_ATOL", "ParityError", "check_parity", "ensure_onnx", "export_onnx"]

log = logging.getLogger(__name__)
# Opset 17: parsed by the TensorRT 10 and 11 ONNX parsers (both cover 9..20+), by every ONNX Runtime we ship,
# and recent enough for per-channel Q/DQ (axis attribute, opset >= 13) and LayerNormalization.
OPSET = 17
PARITY_ATOL = 1e-3
# Height and width are dynamic: each SKU runs at its own input size (a multiple of 64 that follows its
# golden images' aspect ratio); one graph serves them all (no export per size to keep in step).
_DYNAMIC_VISION = {
    "image": {0: "batch", 1: "height", 2: "width"},
    "features": {0: "batch", 2: "fh", 3: "fw"},
    "descriptor": {0: "batch"},
}
_MAP = {2: "fh", 3: "fw"}
_DYNAMIC_COMPARISON = {
    "query": _MAP,
    "templates": {0: "k", **_MAP},
    "template_valid": {0: "k", **_MAP},
    "anomaly": _MAP,
    "valid": _MAP,
}


def example_vision(spec: ModelSpec, batch: int = 2, seed: int = 0) -> np.ndarray:
    """Return fixed pseudo-random uint8 images (the parity input; batch 2 exercises the dynamic batch)."""
    rng = np.random.default_rng(seed)
    h, w = spec.input_size
    image: np.ndarray = rng.integers(0, 256, size=(batch, h, w, 3), dtype=np.uint8)
    return image


def example_comparison(spec: ModelSpec, k: int = 3, seed: int = 1) -> dict[str, np.ndarray]:
    """Return fixed unit-norm features and a partly invalid template mask (comparison parity input)."""
    rng = np.random.default_rng(seed)
    h, w = spec.feature_size

    def unit(n: int) -> np.ndarray:
        x = rng.normal(size=(n, spec.feature_channels, h, w)).astype(np.float32)
        features: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        return features

    valid = np.ones((k, 1, h, w), np.float32)
    valid[:, :, :2, :] = 0.0
    return {"query": unit(1), "templates": unit(k), "template_valid": valid}


def _cast_before_transpose(model: onnx.ModelProto) -> None:
    """Rewrite ``uint8 input -> Transpose -> Cast(float)`` as ``Cast -> Transpose``.

    TensorRT accepts uint8 only as network IO feeding a cast; the two orders are numerically identical.
    """
    graph = model.graph
    inputs = {i.name for i in graph.input}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in list(graph.node):
        if node.op_type != "Transpose" or node.input[0] not in inputs:
            continue
        users = consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Cast":
            continue
        cast = users[0]
        source, middle, result = node.input[0], node.output[0], cast.output[0]
        cast.input[0], cast.output[0] = source, middle
        node.input[0], node.output[0] = middle, result
        # Keep topological order: the cast now runs first.
        graph.node.remove(cast)
        graph.node.insert(list(graph.node).index(node), cast)


def _simplify(path: Path) -> None:
    import onnxslim

    model = onnx.load(str(path))
    _cast_before_transpose(model)
    # onnxslim folds constants, fuses Pad into Conv and drops the shape arithmetic torch emits, which is also
    # what lets the INT8 quantizer put every convolution in Q/DQ form.
    slim = onnxslim.slim(model)
    assert isinstance(slim, onnx.ModelProto)
    onnx.checker.check_model(slim)
    slim = onnx.shape_inference.infer_shapes(slim, strict_mode=True)
    onnx.save(slim, str(path))


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: list[str],
    outputs: tuple[str, ...],
    dynamic: dict[str, dict[int, str]],
) -> None:
    with warnings.catch_warnings():
        # torch's TorchScript exporter warns about every traced shape expression; the gates below decide.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=list(outputs),
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.save(model, str(path))


def check_parity(
    path: Path,
    module: nn.Module,
    feeds: dict[str, np.ndarray],
    outputs: tuple[str, ...],
    atol: float = PARITY_ATOL,
) -> dict[str, float]:
    """Max abs difference per output between ONNX Runtime and PyTorch; raises :class:`ParityError`.

    Args:
        path: ONNX model to check.
        module: PyTorch reference taking the feeds positionally, returning a NamedTuple with ``outputs``.
        feeds: Inputs by name, in the module's argument order.
        outputs: Output names to compare.
        atol: Largest allowed absolute difference on any output.

    Returns:
        Max abs difference per output.

    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = dict(zip(outputs, session.run(list(outputs), feeds), strict=True))
    with torch.inference_mode():
        out = module(*[torch.from_numpy(v) for v in feeds.values()])
    ref = {name: getattr(out, name).numpy() for name in outputs}
    report = compare(ref, got, {name: Tolerance(max_abs=atol) for name in outputs}, f"{path.name} vs PyTorch")
    return {name: figures["max_abs"] for name, figures in report.items()}


def _export_one(
    module: nn.Module,
    feeds: dict[str, np.ndarray],
    outputs: tuple[str, ...],
    dynamic: dict[str, dict[int, str]],
    path: Path,
) -> dict[str, object]:
    _export(module, tuple(torch.from_numpy(v) for v in feeds.values()), path, list(feeds), outputs, dynamic)
    raw = check_parity(path, module, feeds, outputs)
    _simplify(path)
    simplified = check_parity(path, module, feeds, outputs)
    return {"reference": "pytorch", "atol": PARITY_ATOL, "raw_max_abs": raw, "max_abs": simplified}


def export_onnx(spec: ModelSpec, out_dir: Path) -> dict[str, object]:
    """Export both FP32 encoders into ``out_dir``, gate them, and write a fresh ``manifest.json``.

    Args:
        spec: Model settings (input size, blur, backbone).
        out_dir: Artifact directory (created). Files appear atomically, only after their gates passed.

    Returns:
        The parity report (model id, opset, per-encoder figures).

    Raises:
        ParityError: ONNX Runtime does not reproduce PyTorch within :data:`PARITY_ATOL`.

    """
    out_dir.mkdir(parents=True, exist_ok=True)
    vision, comparison = torch_modules(spec)
    weights = weights_sha256(spec.backbone)
    model_id = spec.model_id(weights)
    manifest = Manifest(
        model_id=model_id,
        spec={k: list(v) if isinstance(v, tuple) else v for k, v in asdict(spec).items()},
        weights_sha256=weights,
        opset=OPSET,
        io={
            "vision": io_spec(spec.vision_inputs(), VISION_OUTPUTS),
            "comparison": io_spec(spec.comparison_inputs(), COMPARISON_OUTPUTS),
        },
    )
    vision_name, comparison_name = onnx_file("vision"), onnx_file("comparison")
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as tmp:
        tmp_dir = Path(tmp)
        vision_parity = _export_one(
            vision, {"image": example_vision(spec)}, VISION_OUTPUTS, _DYNAMIC_VISION, tmp_dir / vision_name
        )
        comparison_parity = _export_one(
            comparison,
            example_comparison(spec),
            COMPARISON_OUTPUTS,
            _DYNAMIC_COMPARISON,
            tmp_dir / comparison_name,
        )
        manifest.add_file(tmp_dir, vision_name, encoder="vision", precision="fp32", parity=vision_parity)
        manifest.add_file(
            tmp_dir, comparison_name, encoder="comparison", precision="fp32", parity=comparison_parity
        )
        # The old manifest goes first: between the two renames the set is "unverified", never "wrong".
        (out_dir / MANIFEST_FILE).unlink(missing_ok=True)
        for name in (vision_name, comparison_name):
            (tmp_dir / name).replace(out_dir / name)
    write_manifest(out_dir, manifest)
    report: dict[str, object] = {
        "model_id": model_id,
        "opset": OPSET,
        "vision_parity": vision_parity["max_abs"],
        "comparison_parity": comparison_parity["max_abs"],
    }
    log.info("exported ONNX encoders to %s (parity %s)", out_dir, report)
    return report


def ensure_onnx(spec: ModelSpec, out_dir: Path) -> None:
    """Make sure ``out_dir`` holds verified FP32 encoders for ``spec``; export them when absent.

    A directory without a manifest (never exported, or an older export) is (re-)exported. A directory whose
    manifest exists but does not match, a tampered file or another model id, is refused: silently replacing
    artifacts someone installed would hide the problem.

    Raises:
        ManifestError: The artifacts present do not match their manifest or ``spec``.

    """
    required = (onnx_file("vision"), onnx_file("comparison"))
    try:
        load_manifest(out_dir)
    except ManifestError:
        if (out_dir / MANIFEST_FILE).exists():
            raise
        export_onnx(spec, out_dir)
        return
    verify_manifest(out_dir, spec_model_id(spec), require=required)
