from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edge.capture import Frame, GenICamSettings, ReplaySettings, Roi, SkuSource, TriggerMode, simulated_cti


def test_simulated_producer_is_found_in_the_genicam_wheel() -> None:
    cti = simulated_cti()
    assert cti.name == "viky.cti" and cti.is_file()


def test_at_most_one_device_selector() -> None:
    with pytest.raises(ValueError, match="at most one of serial, device_id, index"):
        GenICamSettings(cti=Path("x.cti"), serial="1", index=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"index": -1}, "index"),
        ({"num_buffers": 0}, "num_buffers"),
        ({"frame_rate_hz": 0.0}, "frame_rate_hz"),
        ({"exposure_us": -5.0}, "exposure_us"),
        ({"stall_timeout_s": 0.0}, "stall_timeout_s"),
    ],
)
def test_genicam_settings_reject_nonsense(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GenICamSettings(cti=Path("x.cti"), **kwargs)  # type: ignore[arg-type]


def test_roi_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="width and height"):
        Roi(width=0, height=10)
    with pytest.raises(ValueError, match="offsets"):
        Roi(width=10, height=10, offset_x=-1)


def test_source_name_follows_the_selector() -> None:
    assert GenICamSettings(cti=Path("x.cti"), serial="7").source_name == "genicam:serial=7"
    assert GenICamSettings(cti=Path("x.cti"), index=2).source_name == "genicam:index=2"
    assert GenICamSettings(cti=Path("x.cti"), name="cam-left").source_name == "cam-left"


def test_frame_accepts_only_contiguous_rgb8() -> None:
    good = np.zeros((4, 5, 3), np.uint8)
    frame = Frame(image=good, seq=0, timestamp=0.0, source="s", pixel_format="Mono8")
    assert (frame.width, frame.height) == (5, 4)
    bad_images: list[npt.NDArray[Any]] = [
        np.zeros((4, 5), np.uint8),
        np.zeros((4, 5, 3), np.float32),
        np.zeros((4, 10, 3), np.uint8)[:, ::2],
    ]
    for bad in bad_images:
        with pytest.raises(ValueError, match=r"Frame\.image"):
            Frame(image=bad, seq=0, timestamp=0.0, source="s", pixel_format="Mono8")


def test_plain_strings_from_a_config_loader_are_coerced() -> None:
    camera = GenICamSettings(cti="producer.cti", trigger="software")  # type: ignore[arg-type]
    assert camera.cti == Path("producer.cti") and camera.trigger is TriggerMode.SOFTWARE
    replay = ReplaySettings(folder="parts", sku_source="sidecar")  # type: ignore[arg-type]
    assert replay.folder == Path("parts") and replay.sku_source is SkuSource.SIDECAR
    with pytest.raises(ValueError, match="'sometimes' is not a valid TriggerMode"):
        GenICamSettings(cti=Path("x.cti"), trigger="sometimes")  # type: ignore[arg-type]
