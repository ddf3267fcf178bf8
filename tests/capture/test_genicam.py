"""The real harvesters path against a GenTL producer (viky.cti by default; see conftest.py)."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from edge.capture import (
    CaptureConfigError,
    CaptureError,
    CaptureTimeout,
    DeviceLostError,
    DeviceUnavailableError,
    FrameSource,
    GenICamSettings,
    GenICamSource,
    OversizedFrameError,
    ReconnectPolicy,
    Roi,
    TriggerMode,
    UnsupportedPixelFormat,
    open_source,
)
from edge.capture.genicam_device import Producer

pytestmark = pytest.mark.camera

CameraFactory = Callable[..., GenICamSettings]  # the conftest fixture `camera_settings`
SourceFactory = Callable[..., GenICamSource]

READ_S = 5.0  # generous: frames arrive in ~50 ms, but the machine is shared


@pytest.fixture
def source_of(camera_settings: CameraFactory) -> Iterator[SourceFactory]:
    """Open sources from settings overrides and close them after the test."""
    opened: list[GenICamSource] = []

    def make(**overrides: object) -> GenICamSource:
        source = GenICamSource(camera_settings(**overrides))
        source.open()
        opened.append(source)
        return source

    yield make
    for source in opened:
        source.close()


def test_mono8_frames_are_acquired_and_converted(source_of: SourceFactory) -> None:
    source = source_of(pixel_format="Mono8")
    frames = [source.read(READ_S) for _ in range(3)]
    for frame in frames:
        assert frame.pixel_format == "Mono8" and frame.image.dtype == np.uint8 and frame.image.ndim == 3
        assert (frame.image[:, :, 0] == frame.image[:, :, 1]).all()
        assert (frame.image[:, :, 0] == frame.image[:, :, 2]).all()
        assert frame.image.flags.c_contiguous and frame.image.flags.owndata
    assert [f.seq for f in frames] == [0, 1, 2]
    assert frames[0].timestamp <= frames[1].timestamp <= frames[2].timestamp <= time.time()
    assert source.stats.frames == 3


def test_rgba8_frames_are_acquired_and_converted(source_of: SourceFactory, viky_only: None) -> None:
    frame = source_of(pixel_format="RGBa8").read(READ_S)
    assert frame.pixel_format == "RGBa8" and frame.image.shape == (400, 400, 3)
    # viky serial 0 draws a red ball on white: red dominates, alpha is gone.
    mean = frame.image.reshape(-1, 3).mean(axis=0)
    assert mean[0] > mean[1] and mean[0] > mean[2]
    assert frame.meta["device_frame_id"] is not None


def test_buffer_above_the_pixel_limit_is_refused_before_conversion(source_of: SourceFactory) -> None:
    source = source_of(roi=Roi(width=320, height=240), max_frame_pixels=320 * 240 - 1)
    too_large = r"frame 320x240 \(76800 pixels\) is above max_frame_pixels"
    with pytest.raises(OversizedFrameError, match=too_large):
        source.read(READ_S)
    assert source.stats.bad_frames == 1
    assert source.connected, "one oversized buffer is that frame's problem, not a lost device"


def test_frame_survives_the_buffer_being_reused(source_of: SourceFactory) -> None:
    source = source_of(num_buffers=2)
    first = source.read(READ_S)
    snapshot = first.image.copy()
    for _ in range(4):  # every buffer is refilled at least once
        source.read(READ_S)
    np.testing.assert_array_equal(first.image, snapshot)


def test_roi_is_applied_on_the_device(source_of: SourceFactory) -> None:
    source = source_of(roi=Roi(width=320, height=240))
    assert source.read(READ_S).image.shape == (240, 320, 3)
    assert source.setup is not None and source.setup.software_crop is None


def test_roi_offsets_are_emulated_by_cropping(
    camera_settings: CameraFactory, viky_only: None, caplog: pytest.LogCaptureFixture
) -> None:
    roi = Roi(width=200, height=100, offset_x=40, offset_y=20)
    with caplog.at_level(logging.WARNING), GenICamSource(camera_settings(roi=roi)) as source:
        frame = source.read(READ_S)
    assert frame.image.shape == (100, 200, 3)
    assert [r.levelname for r in caplog.records if "cropped in software" in r.getMessage()] == ["WARNING"]


def test_roi_outside_the_sensor_is_a_config_error_naming_the_feature(camera_settings: CameraFactory) -> None:
    with pytest.raises(CaptureConfigError, match=r"Width=100000 outside the device range"):
        GenICamSource(camera_settings(roi=Roi(width=100000, height=100))).open()


def test_pixel_format_not_offered_by_the_device(camera_settings: CameraFactory, viky_only: None) -> None:
    with pytest.raises(CaptureConfigError, match=r"PixelFormat='RGB8' not offered by the device"):
        GenICamSource(camera_settings(pixel_format="RGB8")).open()


def test_pixel_format_without_converter_is_rejected_before_opening(camera_settings: CameraFactory) -> None:
    with pytest.raises(UnsupportedPixelFormat, match="'Mono12Packed'"):
        GenICamSource(camera_settings(pixel_format="Mono12Packed")).open()


def test_unknown_serial_lists_the_devices(camera_settings: CameraFactory, viky_only: None) -> None:
    with pytest.raises(CaptureConfigError, match=r"(?s)cannot open device.*serial='0'.*serial='2'"):
        GenICamSource(camera_settings(serial="no-such-camera")).open()


def test_device_by_id_and_by_index(camera_settings: CameraFactory, viky_only: None) -> None:
    with GenICamSource(camera_settings(serial=None, device_id="VikyTL_DEV_green")) as source:
        assert source.read(READ_S).image.shape[2] == 3
    with GenICamSource(camera_settings(serial=None, index=2)) as source:
        mean = source.read(READ_S).image.reshape(-1, 3).mean(axis=0)
        assert mean[2] > mean[0]  # index 2 is the blue ball


def test_no_selector_with_several_devices_is_refused(camera_settings: CameraFactory, viky_only: None) -> None:
    with pytest.raises(CaptureConfigError, match="lists 3 device"):
        GenICamSource(camera_settings(serial=None)).open()


def test_missing_producer_is_a_config_error(camera_settings: CameraFactory, tmp_path: Path) -> None:
    with pytest.raises(CaptureConfigError, match="does not exist"):
        GenICamSource(camera_settings(cti=tmp_path / "missing.cti")).open()


def test_software_trigger_is_emulated_on_viky(
    source_of: SourceFactory, viky_only: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        source = source_of(trigger=TriggerMode.SOFTWARE, frame_rate_hz=50.0, num_buffers=2)
    assert source.setup is not None and source.setup.trigger_emulated
    assert sum("software trigger" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(CaptureTimeout, match="no trigger"):
        source.read(0.05)
    time.sleep(0.3)  # ~15 frames produced, the 2 buffers hold stale frames 1-2
    source.trigger()
    frame = source.read(READ_S)
    assert frame.meta["device_frame_id"] > 2, "a frame captured before the trigger was returned"
    with pytest.raises(CaptureTimeout):  # one trigger, one frame
        source.read(0.05)


def test_hardware_trigger_falls_back_to_free_run_on_viky(
    source_of: SourceFactory, viky_only: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        source = source_of(trigger=TriggerMode.HARDWARE, trigger_line="Line1")
    assert any("hardware trigger on Line1" in r.getMessage() for r in caplog.records)
    assert source.read(READ_S).image.size > 0
    with pytest.raises(CaptureError, match="needs trigger mode 'software'"):
        source.trigger()


def test_emulation_can_be_forbidden(camera_settings: CameraFactory, viky_only: None) -> None:
    settings = camera_settings(trigger=TriggerMode.SOFTWARE, allow_emulation=False)
    with pytest.raises(CaptureConfigError, match=r"software trigger \(Software\) not offered"):
        GenICamSource(settings).open()


def test_fetch_timeout_raises_capture_timeout(source_of: SourceFactory, viky_only: None) -> None:
    source = source_of(frame_rate_hz=2.0, num_buffers=1)
    source.read(READ_S)
    with pytest.raises(CaptureTimeout, match=r"no frame within 0\.05 s"):
        source.read(0.05)
    assert source.stats.timeouts == 1


def test_frames_missed_by_a_slow_reader_are_counted_as_drops(
    source_of: SourceFactory, viky_only: None
) -> None:
    source = source_of(frame_rate_hz=50.0, num_buffers=2)
    source.read(READ_S)
    time.sleep(0.4)  # ~20 frames produced, 2 buffers
    for _ in range(4):
        source.read(READ_S)
    assert source.stats.drops > 0


def test_acquisition_restarts_after_the_acquirer_is_destroyed(source_of: SourceFactory) -> None:
    source = source_of()
    before = source.read(READ_S)
    assert source.acquirer is not None
    source.acquirer.destroy()  # simulated loss: the device is closed under the source
    after = source.read(READ_S)
    assert after.seq == before.seq + 1
    assert source.stats.reconnects == 1 and source.connected


def test_acquisition_restarts_after_the_device_handle_is_closed(source_of: SourceFactory) -> None:
    source = source_of()
    source.read(READ_S)
    assert source.acquirer is not None
    source.acquirer.device.module.close()
    source.read(READ_S)
    assert source.stats.reconnects == 1


def test_a_free_running_device_that_goes_silent_is_reconnected(
    source_of: SourceFactory, viky_only: None
) -> None:
    source = source_of(frame_rate_hz=2.0, stall_timeout_s=0.15)
    source.read(READ_S)
    with pytest.raises(CaptureTimeout):
        source.read(0.25)  # the next frame is ~0.5 s away: longer than the stall limit
    assert not source.connected
    source.read(READ_S)
    assert source.stats.reconnects == 1


class FlakyProducer(Producer):
    """Fault injection: the next ``failures`` device re-enumerations fail, as while a camera reboots."""

    def __init__(self, cti: Path) -> None:
        super().__init__(cti)
        self.failures = 0
        self.refreshes = 0

    def refresh(self) -> None:
        self.refreshes += 1
        if self.failures > 0:
            self.failures -= 1
            raise CaptureConfigError("injected: device not enumerated")
        super().refresh()


def test_reconnect_backs_off_while_the_device_is_away(camera_settings: CameraFactory) -> None:
    settings = camera_settings(reconnect=ReconnectPolicy(initial_delay_s=0.05, max_delay_s=0.1))
    producer = FlakyProducer(settings.cti)
    with GenICamSource(settings, producer=producer) as source:
        source.read(READ_S)
        assert source.acquirer is not None
        producer.failures = 1000
        source.acquirer.destroy()
        with pytest.raises(DeviceUnavailableError, match="reconnecting"):
            source.read(0.3)
        assert not source.connected and source.stats.reconnects == 0
        # Attempts are spaced by the backoff (0, 0.05, 0.1, 0.1, ...), not a busy loop.
        assert 2 <= producer.refreshes <= 6
        producer.failures = 0
        source.read(READ_S)
        assert source.connected and source.stats.reconnects == 1


def test_reconnect_gives_up_after_max_attempts(camera_settings: CameraFactory) -> None:
    policy = ReconnectPolicy(initial_delay_s=0.01, max_delay_s=0.01, max_attempts=2)
    producer = FlakyProducer(camera_settings().cti)
    with GenICamSource(camera_settings(reconnect=policy), producer=producer) as source:
        source.read(READ_S)
        assert source.acquirer is not None
        producer.failures = 1000
        source.acquirer.destroy()
        with pytest.raises(DeviceLostError, match="2 reconnection attempts failed"):
            source.read(READ_S)


def test_interface_lifecycle_and_sigint_untouched(camera_settings: CameraFactory) -> None:
    handler = signal.getsignal(signal.SIGINT)
    source = open_source(camera_settings())
    assert isinstance(source, FrameSource)
    assert signal.getsignal(signal.SIGINT) is handler  # harvesters would install its own
    source.read(READ_S)
    source.close()
    source.close()  # idempotent
    with pytest.raises(CaptureError, match="closed source"):
        source.read(0.1)


def _square_side(image: np.ndarray) -> int:
    """Side of viky's square: the rows where the frame is not white."""
    rows = np.nonzero((image[:, :, 0] < 128).any(axis=1))[0]
    return int(rows.max() - rows.min() + 1) if len(rows) else 0


def test_further_features_are_written_to_the_device(source_of: SourceFactory, viky_only: None) -> None:
    # viky's own feature: the side of the square it draws (20 px by default).
    frame = source_of(pixel_format="Mono8", features=(("BouncingBallSize", 34),)).read(READ_S)
    assert _square_side(frame.image) == 34


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ((("NoSuchFeature", 1),), r"features.NoSuchFeature: the device has no feature NoSuchFeature"),
        ((("BouncingBallSize", 41),), r"features.BouncingBallSize=41 outside the device range \[1, 40\]"),
        ((("BouncingBallSize", "big"),), r"features.BouncingBallSize='big': expected an integer"),
        ((("BouncingBallSize", True),), r"features.BouncingBallSize=True: expected an integer"),
        ((("ChunkEnable", 1),), r"features.ChunkEnable=1: expected true or false"),
        ((("ChunkSelector", "Nope"),), r"features.ChunkSelector='Nope' not offered by the device"),
    ],
)
def test_a_further_feature_the_device_refuses_names_feature_and_value(
    camera_settings: CameraFactory, viky_only: None, features: tuple[tuple[str, object], ...], message: str
) -> None:
    with pytest.raises(CaptureConfigError, match=message):
        GenICamSource(camera_settings(features=features)).open()
