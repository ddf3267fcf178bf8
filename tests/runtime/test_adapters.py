"""The station config reaches the capture settings unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from edge.capture import DEFAULT_MAX_FRAME_PIXELS, GenICamSettings, ReplaySettings
from edge.config.camera import DEFAULT_MAX_FRAME_PIXELS as CONFIG_DEFAULT_MAX_FRAME_PIXELS
from edge.config.resolve import ResolvedConfig, default_allowed_roots, load_and_resolve
from edge.runtime import adapters


def resolved(tmp_path: Path, **camera: Any) -> ResolvedConfig:
    for folder, count in (("replay", 1), ("golden", 2)):
        (tmp_path / folder).mkdir()
        for i in range(count):
            cv2.imwrite(str(tmp_path / folder / f"{i}.png"), np.zeros((8, 8), np.uint8))
    (tmp_path / "artifacts").mkdir()
    config = {
        "version": 1,
        "station": {"site": "plant", "line": "l1", "id": "st1"},
        "camera": {"source": "replay", "replay": {"dir": "replay"}, **camera},
        "model": {"artifact_dir": "artifacts", "backends": ["onnxruntime-cpu"]},
        "skus": [{"id": "widget", "golden_dir": "golden"}],
        "storage": {"data_dir": "data"},
    }
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_and_resolve(path, roots=default_allowed_roots(path))


def test_one_default_frame_limit_for_config_and_capture() -> None:
    assert CONFIG_DEFAULT_MAX_FRAME_PIXELS == DEFAULT_MAX_FRAME_PIXELS
    assert DEFAULT_MAX_FRAME_PIXELS >= 9344 * 7000, "a 65 MP sensor's frames must pass by default"


def test_the_frame_limit_reaches_replay_and_camera_settings(tmp_path: Path) -> None:
    config = resolved(tmp_path, max_frame_pixels=5000)
    replay = adapters.camera_settings(config)
    assert isinstance(replay, ReplaySettings) and replay.max_frame_pixels == 5000
    camera = adapters.camera_settings(config, simulated=True)
    assert isinstance(camera, GenICamSettings) and camera.max_frame_pixels == 5000
