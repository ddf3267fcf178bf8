"""The two exportable encoders, their IO contract, and how the runtime gets runners for them."""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge.engines.artifacts import Precision
from edge.engines.base import Runner, TensorSpec
from edge.inspection.backbone_catalog import DEFAULT_BACKBONE, BackboneName, backbone_info

VISION_FILE = "vision_encoder.onnx"
COMPARISON_FILE = "comparison_encoder.onnx"
FEATURE_STRIDE = 8


#: Modules whose code defines the exported graphs.
GRAPH_MODULES = ("backbone_catalog.py", "backbone.py", "encoder.py", "comparison.py")


def code_sha256(sources: Iterable[tuple[str, str]]) -> str:
    """Hash of Python sources ``(name, text)`` by their syntax tree: comments and docstrings left out."""
    digest = hashlib.sha256()
    for name, text in sources:
        tree = ast.parse(text)
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (
                isinstance(body, list)
                and body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                body[0] = ast.Pass()
        digest.update(name.encode() + b"\0" + ast.dump(tree).encode() + b"\0")
    return digest.hexdigest()


@functools.cache
def graph_code_sha256() -> str:
    """Hash of the code that defines the encoders' graphs (:data:`GRAPH_MODULES`).

    Part of the model id: a change to what the encoders compute must never meet artifacts or golden banks
    made by the old code under the same id (they would be reused silently), while an edit to comments or
    documentation must not invalidate a station's banks.
    """
    here = Path(__file__).parent
    return code_sha256((name, (here / name).read_text(encoding="utf-8")) for name in GRAPH_MODULES)


@dataclass(frozen=True)
class ModelSpec:
    """Everything that changes the encoders' outputs; its hash (with the weights) keys artifacts and banks.

    Attributes:
        input_size: (height, width) of the vision encoder input, multiples of 64.
        blur_sigma: Gaussian pre-smoothing inside the encoder (input pixels); frozen features are fragile to
            sensor noise and blur, smoothing both frame and template before encoding evens that out
            (measured: bottle image AUROC under line nuisance 0.93 at sigma 1, 0.998 at sigma 2, clean 1.0).
        backbone: ImageNet backbone of the vision encoder
            (:data:`edge.inspection.backbone_catalog.BACKBONES`); it sets the feature channels, the
            preprocessing and the weights, so it is part of the model id.

    """

    input_size: tuple[int, int] = (320, 320)
    blur_sigma: float = 2.0
    backbone: BackboneName = DEFAULT_BACKBONE

    def __post_init__(self) -> None:
        """Refuse an unknown backbone here, not deep inside an export."""
        backbone_info(self.backbone)

    @property
    def feature_channels(self) -> int:
        """Channels of the fused feature map (the comparison encoder's and the golden banks' ``C``)."""
        return backbone_info(self.backbone).feature_channels

    @property
    def feature_size(self) -> tuple[int, int]:
        """(h, w) of the stride-8 feature map."""
        return (self.input_size[0] // FEATURE_STRIDE, self.input_size[1] // FEATURE_STRIDE)

    def model_id(self, weights_sha256: str) -> str:
        """Short stable id of (weights, spec, graph code): names artifacts and keys golden banks."""
        blob = json.dumps(
            {"weights": weights_sha256, "graph": graph_code_sha256(), **asdict(self)}, sort_keys=True
        ).encode()
        # The backbone leads the id so that an operator can tell models apart in folder names and on `state`.
        return f"{self.backbone}-" + hashlib.sha256(blob).hexdigest()[:12]

    def vision_inputs(self) -> tuple[TensorSpec, ...]:
        """IO contract of the vision encoder (batch, height and width are dynamic).

        Height and width are multiples of 64: each SKU runs at the input size that follows its golden
        images' aspect ratio (:func:`edge.inspection.sizing.sku_input_size`); ``input_size`` is the
        reference at which the graph is exported, calibrated and optimised.
        """
        return (TensorSpec("image", np.dtype(np.uint8), ("batch", "height", "width", 3)),)

    def comparison_inputs(self) -> tuple[TensorSpec, ...]:
        """IO contract of the comparison encoder (templates and feature-map size are dynamic)."""
        f32 = np.dtype(np.float32)
        return (
            TensorSpec("query", f32, (1, self.feature_channels, "fh", "fw")),
            TensorSpec("templates", f32, ("k", self.feature_channels, "fh", "fw")),
            TensorSpec("template_valid", f32, ("k", 1, "fh", "fw")),
        )


VISION_OUTPUTS = ("features", "descriptor")
COMPARISON_OUTPUTS = ("anomaly", "valid")


@dataclass
class Encoders:
    """Runners for both encoders plus the id of the model they implement."""

    spec: ModelSpec
    vision: Runner
    comparison: Runner
    model_id: str
    #: precision of the artifacts and why preferred backends were skipped (for the ``state`` topic).
    state: dict[str, object] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        """Backend of the vision encoder (the one that dominates latency)."""
        return self.vision.backend


@functools.cache
def weights_sha256(backbone: BackboneName) -> str:
    """SHA-256 of a backbone's ImageNet weights file, checked against the pinned one (cached per process).

    The backbone is a required argument: a default would silently key a Lite2 model with Lite0's weights.
    """
    from edge.inspection.backbone_catalog import verified_weights_sha256

    return verified_weights_sha256(backbone)


def spec_model_id(spec: ModelSpec) -> str:
    """Model id of ``spec`` with the weights of its own backbone."""
    return spec.model_id(weights_sha256(spec.backbone))


def torch_modules(spec: ModelSpec) -> tuple[object, object]:
    """Build the PyTorch reference modules (vision, comparison)."""
    from edge.inspection.comparison import ComparisonEncoder
    from edge.inspection.encoder import VisionEncoder

    vision = VisionEncoder(
        input_size=spec.input_size, blur_sigma=spec.blur_sigma, backbone=spec.backbone
    ).eval()
    comparison = ComparisonEncoder().eval()
    return vision, comparison


def torch_encoders(spec: ModelSpec) -> Encoders:
    """Encoders running in PyTorch (the reference path)."""
    from torch import nn

    from edge.engines.torch_runner import TorchRunner

    vision, comparison = torch_modules(spec)
    assert isinstance(vision, nn.Module) and isinstance(comparison, nn.Module)
    return Encoders(
        spec=spec,
        vision=TorchRunner(vision, spec.vision_inputs(), VISION_OUTPUTS),
        comparison=TorchRunner(comparison, spec.comparison_inputs(), COMPARISON_OUTPUTS),
        model_id=spec_model_id(spec),
    )


def default_artifact_dir(spec: ModelSpec) -> Path:
    """Per-user cache of exported artifacts, keyed by model id."""
    import os

    root = Path(os.environ.get("EDGE_ARTIFACT_CACHE", Path.home() / ".cache" / "edge-inspection" / "models"))
    return root / spec_model_id(spec)


def onnx_encoders(
    spec: ModelSpec,
    artifact_dir: Path | None = None,
    threads: int | None = None,
    precision: Precision = "fp32",
    calibration_dir: Path | None = None,
    preference: tuple[str, ...] | None = None,
) -> Encoders:
    """Encoders on the best available exported backend (TensorRT -> ONNX Runtime CUDA -> CPU).

    Exports (with parity gates) into ``artifact_dir`` when the artifacts are missing. INT8 needs golden
    images to calibrate on (``calibration_dir``); without them the generated synthetic SKU is used.
    """
    from edge.engines.selection import BACKEND_ORDER, open_runners
    from export.onnx_export import ensure_onnx

    directory = artifact_dir or default_artifact_dir(spec)
    model_id = spec_model_id(spec)
    ensure_onnx(spec, directory)
    if precision != "fp32":
        _ensure_precision(spec, directory, precision, calibration_dir)
    selected = open_runners(
        directory,
        precision,
        model_id,
        preference or BACKEND_ORDER,
        threads=threads,
    )
    return Encoders(
        spec=spec,
        vision=selected.vision,
        comparison=selected.comparison,
        model_id=model_id,
        state=selected.choice.as_state(),
    )


def _ensure_precision(
    spec: ModelSpec, directory: Path, precision: Precision, calibration_dir: Path | None
) -> None:
    from edge.engines.artifacts import onnx_file
    from export.calibration import load_calibration, synthetic_calibration
    from export.pipeline import export_fp16, export_int8

    if (directory / onnx_file("vision", precision)).exists():
        return
    if precision == "int8":
        calib = (
            load_calibration(calibration_dir, spec.input_size)
            if calibration_dir is not None
            else synthetic_calibration(spec.input_size)
        )
        export_int8(spec, directory, calib)
    elif precision == "fp16":
        export_fp16(spec, directory)
    else:
        raise ValueError(f"unknown precision '{precision}' (expected fp32, int8 or fp16)")


def load_encoders(
    spec: ModelSpec,
    backend: str = "onnxruntime",
    artifact_dir: Path | None = None,
    precision: Precision = "fp32",
    calibration_dir: Path | None = None,
) -> Encoders:
    """Encoders for a backend name: ``onnxruntime`` (default: best exported backend) or ``torch``."""
    if backend == "torch":
        if precision != "fp32":
            raise ValueError("the PyTorch reference runs in fp32 only")
        return torch_encoders(spec)
    if backend == "onnxruntime":
        return onnx_encoders(spec, artifact_dir, precision=precision, calibration_dir=calibration_dir)
    raise ValueError(f"unknown backend '{backend}' (expected 'onnxruntime' or 'torch')")


def configured_encoders(
    input_size: tuple[int, int],
    artifact_dir: Path,
    precision: Precision,
    backends: Sequence[str],
    backbone: BackboneName = DEFAULT_BACKBONE,
) -> Encoders:
    """Encoders as a station config asks for them: its precision and its backend preference.

    The FP32 encoders are exported when the folder has none (a fresh station); a reduced precision is never
    produced behind the engineer's back (INT8 must be calibrated on the product's golden images): when its
    file is missing this says which command makes it.

    Raises:
        FileNotFoundError: The configured precision was not exported into ``artifact_dir``.

    """
    from edge.engines.artifacts import onnx_file

    if precision != "fp32" and not (artifact_dir / onnx_file("vision", precision)).is_file():
        calib = " --calib <golden images>" if precision == "int8" else ""
        option = f" --backbone {backbone}" if backbone != DEFAULT_BACKBONE else ""
        raise FileNotFoundError(
            f"model.precision is {precision} but {artifact_dir} has no {precision} encoders: "
            f"run `edge export {precision} --out {artifact_dir}{option}{calib}` first"
        )
    return onnx_encoders(
        ModelSpec(input_size=(int(input_size[0]), int(input_size[1])), backbone=backbone),
        artifact_dir,
        precision=precision,
        preference=tuple(backends),
    )
