"""The model spec and the model id: what keys exported artifacts and golden banks.

The id hashes the weights, the spec and the code of the modules that define the graphs
(:data:`GRAPH_MODULES`), so a change to what the encoders compute never meets artifacts or banks built by the
old code. Kept free of torch (the modules are imported only by :func:`torch_modules`): every command names a
model, few of them need a deep-learning framework.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.model.backbone_catalog import DEFAULT_BACKBONE, BackboneName, backbone_info, verified_weights_sha256
from edge.model.io import TensorSpec

if TYPE_CHECKING:
    from edge.model.comparison import ComparisonEncoder
    from edge.model.encoder import VisionEncoder

FEATURE_STRIDE = 8

#: Modules whose code defines the exported graphs (beside this one, in ``edge/model/``).
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
            (:data:`edge.model.backbone_catalog.BACKBONES`); it sets the feature channels, the
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
        images' aspect ratio (:func:`edge.model.sizing.sku_input_size`); ``input_size`` is the
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


@functools.cache
def weights_sha256(backbone: BackboneName) -> str:
    """SHA-256 of a backbone's ImageNet weights file, checked against the pinned one (cached per process).

    The backbone is a required argument: a default would silently key a Lite2 model with Lite0's weights.
    """
    return verified_weights_sha256(backbone)


def spec_model_id(spec: ModelSpec) -> str:
    """Model id of ``spec`` with the weights of its own backbone."""
    return spec.model_id(weights_sha256(spec.backbone))


def torch_modules(spec: ModelSpec) -> tuple[VisionEncoder, ComparisonEncoder]:
    """Build the PyTorch reference modules (vision, comparison), in eval mode."""
    # Imported here, not at the top: torch is needed only by the export and the reference path, and
    # this module is imported by every command (the direction of the dependency is the same either way).
    from edge.model.comparison import ComparisonEncoder
    from edge.model.encoder import VisionEncoder

    vision = VisionEncoder(
        input_size=spec.input_size, blur_sigma=spec.blur_sigma, backbone=spec.backbone
    ).eval()
    return vision, ComparisonEncoder().eval()


def default_artifact_dir(spec: ModelSpec) -> Path:
    """Per-user cache of exported artifacts, keyed by model id (``EDGE_ARTIFACT_CACHE``: another root)."""
    root = Path(os.environ.get("EDGE_ARTIFACT_CACHE", Path.home() / ".cache" / "edge-inspection" / "models"))
    return root / spec_model_id(spec)
