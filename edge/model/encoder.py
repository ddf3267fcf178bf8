"""Vision encoder: uint8 image in, L2-normalised stride-8 feature map and a global descriptor out.

Preprocessing lives inside the module so that the exported graph is the whole contract: the runtime hands it
the camera image (resized to the input size) and nothing else can drift between PyTorch, ONNX and TensorRT.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from edge.model.backbone import DEFAULT_BACKBONE, Backbone, BackboneName, load_pretrained

DESCRIPTOR_GRID = 4


class EncoderOutput(NamedTuple):
    """Outputs of :class:`VisionEncoder`; the field names are the ONNX output names."""

    features: torch.Tensor  # [B, C, H/8, W/8], unit L2 norm along C
    descriptor: torch.Tensor  # [B, D], unit L2 norm


def gaussian_kernel1d(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian taps covering +-3 sigma."""
    radius = max(1, math.ceil(3.0 * sigma))
    xs = torch.arange(-radius, radius + 1, dtype=torch.float32)
    taps = torch.exp(-0.5 * (xs / sigma) ** 2)
    return taps / taps.sum()


class VisionEncoder(nn.Module):
    """ImageNet backbone trunk -> fused stride-8 features, locally aggregated and L2-normalised.

    Input: ``image`` uint8 ``[B, H, W, 3]`` RGB, ``H`` and ``W`` multiples of 64 (``input_size`` is the
    reference size the graph is exported and calibrated at; each SKU runs at its own size).
    The stride-8 and stride-16 (upsampled) maps (EfficientNet-Lite0: 40 + 112 channels; the counts of every
    backbone in :data:`edge.model.backbone_catalog.BACKBONES`) are each L2-normalised before being
    concatenated, so neither scale dominates the similarity; a 3x3 average then aggregates each location's
    neighbourhood (PatchCore-style) which makes features tolerant to sub-cell shifts and sensor noise.
    The descriptor is a 4x4 grid-pooled stride-16 map: spatial layout matters for telling apart views of one
    product (a global average finds the right DeepPCB template only 74 % of the time, a 4x4 grid 98 %).
    """

    def __init__(
        self,
        input_size: tuple[int, int] = (320, 320),
        blur_sigma: float = 0.0,
        backbone: Backbone | BackboneName = DEFAULT_BACKBONE,
    ) -> None:
        """Build the encoder.

        Args:
            input_size: Reference (height, width), multiples of 64.
            blur_sigma: Gaussian pre-smoothing in input pixels (0 = none).
            backbone: A backbone name (its ImageNet weights are loaded) or a built backbone (tests).

        """
        super().__init__()
        if any(side <= 0 or side % (16 * DESCRIPTOR_GRID) for side in input_size):
            raise ValueError(f"input_size sides must be positive multiples of 64, got {input_size}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        trunk = backbone if isinstance(backbone, Backbone) else load_pretrained(backbone)
        trunk.truncate()
        self.backbone = trunk
        self.blur_sigma = float(blur_sigma)
        taps = gaussian_kernel1d(blur_sigma) if blur_sigma > 0 else torch.ones(1)
        self.register_buffer("blur_taps", taps, persistent=False)
        # Each backbone is normalised as its weights were trained (Lite: one scalar pair; torchvision's
        # MobileNetV2: ImageNet mean/std per RGB channel); inside the graph, so no runtime can get it wrong.
        info = trunk.info
        self.register_buffer("mean", torch.tensor(info.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("inv_std", 1.0 / torch.tensor(info.std).view(1, 3, 1, 1), persistent=False)
        self._channels = info.feature_channels

    @property
    def channels(self) -> int:
        """Channels of the fused feature map."""
        return self._channels

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        taps: torch.Tensor = self.blur_taps  # type: ignore[assignment]
        if taps.numel() == 1:
            return x
        r = taps.numel() // 2
        kx = taps.view(1, 1, 1, -1).repeat(3, 1, 1, 1)
        ky = taps.view(1, 1, -1, 1).repeat(3, 1, 1, 1)
        x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), kx, groups=3)
        return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), ky, groups=3)

    def forward(self, image: torch.Tensor) -> EncoderOutput:
        """Encode a batch of uint8 HWC RGB images."""
        x = image.permute(0, 3, 1, 2).float()
        mean: torch.Tensor = self.mean  # type: ignore[assignment]
        inv_std: torch.Tensor = self.inv_std  # type: ignore[assignment]
        x = (self._blur(x) - mean) * inv_std
        feats = self.backbone.features(x)
        s8 = F.normalize(feats.stride8, dim=1)
        s16 = F.normalize(feats.stride16, dim=1)
        up = F.interpolate(s16, size=s8.shape[-2:], mode="bilinear", align_corners=False)
        fused = torch.cat([s8, up], dim=1)
        fused = F.avg_pool2d(fused, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        fused = F.normalize(fused, dim=1)
        # The grid pool must not bake the map size into the graph (each SKU runs at its own input size, one
        # ONNX graph with dynamic height/width serves them all): resample the stride-16 map to a fixed 32x32
        # (Resize with constant sizes), then average 8x8 cells into the 4x4 grid.
        side = DESCRIPTOR_GRID * 8
        grid = F.interpolate(feats.stride16, size=(side, side), mode="bilinear", align_corners=False)
        grid = F.normalize(F.avg_pool2d(grid, kernel_size=8, stride=8), dim=1)
        descriptor = F.normalize(grid.flatten(1), dim=1)
        return EncoderOutput(features=fused, descriptor=descriptor)
