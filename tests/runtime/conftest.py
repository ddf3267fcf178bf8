"""Fixtures for the runtime tests: a replay folder of synthetic parts, a started station MQTT link, a
subscriber (the PLC/HMI end), all against a real Mosquitto and real ONNX Runtime encoders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures.mosquitto import MosquittoBroker
from fixtures.mqtt_subscriber import Subscriber
from fixtures.station_link import STATION_ROOT

from edge.synthetic.parts import make_part

ROOT = STATION_ROOT


def write_parts(folder: Path, count: int, seed: int = 5, defect_every: int = 3) -> list[Path]:
    """Write ``count`` synthetic parts (every ``defect_every``-th defective) as PNG files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        defect = "spot" if defect_every and i % defect_every == defect_every - 1 else None
        part = make_part(rng, 256, defect)
        path = folder / f"{i:03d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(part.image, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


@pytest.fixture
def replay_dir(tmp_path: Path) -> Path:
    """Six synthetic parts, two of them defective."""
    folder = tmp_path / "replay"
    write_parts(folder, 6)
    return folder


@pytest.fixture
def subscriber(mosquitto: MosquittoBroker) -> Iterator[Subscriber]:
    """The PLC/HMI end: records everything under the station's topic root."""
    sub = Subscriber(mosquitto.host, mosquitto.port, [f"{ROOT}/#"])
    sub.wait_subscribed()
    yield sub
    sub.close()
