from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.capture import (
    BadFrame,
    CaptureConfigError,
    CaptureError,
    CaptureTimeout,
    DeviceUnavailableError,
    EndOfStreamError,
    Frame,
    FrameSource,
    ReplaySettings,
    ReplaySource,
    SkuSource,
    TriggerMode,
    open_source,
)


def write_image(path: Path, value: int, size: tuple[int, int] = (12, 16)) -> None:
    """A small PNG whose red channel is ``value`` (green 0, blue 255) so order and channels are checkable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.zeros((*size, 3), np.uint8)
    rgb[:, :, 0] = value
    rgb[:, :, 2] = 255
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def red(frame: Frame) -> int:
    return int(frame.image[0, 0, 0])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for i in range(3):
        write_image(tmp_path / f"part_{i:02d}.png", 10 * (i + 1))
    return tmp_path


def test_replays_in_sorted_order_as_rgb_and_loops(folder: Path) -> None:
    with ReplaySource(ReplaySettings(folder=folder, rate_hz=None)) as source:
        frames = [source.read(1.0) for _ in range(7)]
    assert [red(f) for f in frames] == [10, 20, 30, 10, 20, 30, 10]
    assert [f.seq for f in frames] == list(range(7))
    assert frames[3].meta["cycle"] == 1 and frames[3].meta["path"].endswith("part_00.png")
    first = frames[0]
    assert first.image.shape == (12, 16, 3) and first.image[0, 0].tolist() == [10, 0, 255]
    assert first.pixel_format == "RGB8" and first.source == f"replay:{folder.name}"
    assert source.stats.frames == 7


def test_without_loop_the_stream_ends_explicitly(folder: Path) -> None:
    with ReplaySource(ReplaySettings(folder=folder, rate_hz=None, loop=False)) as source:
        assert [red(source.read(1.0)) for _ in range(3)] == [10, 20, 30]
        with pytest.raises(EndOfStreamError, match="all 3 image"):
            source.read(1.0)


def test_rate_paces_frames(folder: Path) -> None:
    rate = 20.0
    with ReplaySource(ReplaySettings(folder=folder, rate_hz=rate)) as source:
        source.read(1.0)
        start = time.monotonic()
        for _ in range(4):
            source.read(1.0)
        elapsed = time.monotonic() - start
    # A lower bound only (4 periods, minus slack for the moment the clock was read): pacing must wait;
    # how much slower a loaded machine is does not matter. Without pacing this takes a few milliseconds.
    assert elapsed >= 3 / rate


def test_frame_not_due_within_timeout_raises_capture_timeout(folder: Path) -> None:
    with ReplaySource(ReplaySettings(folder=folder, rate_hz=1.0)) as source:
        source.read(1.0)
        with pytest.raises(CaptureTimeout, match="next image due"):
            source.read(0.05)
        assert source.stats.timeouts == 1


def test_bad_file_is_reported_counted_and_skipped(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = folder / "part_01b.png"  # sorts between part_01 and part_02
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    empty = folder / "part_03.jpg"
    empty.write_bytes(b"")
    with ReplaySource(ReplaySettings(folder=folder, rate_hz=None, loop=False)) as source:
        assert red(source.read(1.0)) == 10
        assert red(source.read(1.0)) == 20
        with caplog.at_level(logging.ERROR), pytest.raises(BadFrame) as info:
            source.read(1.0)
        assert info.value.path == bad and info.value.seq == 2
        assert info.value.reason == "not a decodable image (PNG without IHDR chunk)"
        assert str(bad) in caplog.text
        assert red(source.read(1.0)) == 30  # the next read moves on
        with pytest.raises(BadFrame, match="empty file"):
            source.read(1.0)
        assert source.stats.bad_frames == 2 and source.stats.frames == 3


def test_file_removed_after_scan_is_a_bad_frame(folder: Path) -> None:
    with ReplaySource(ReplaySettings(folder=folder, rate_hz=None)) as source:
        (folder / "part_00.png").unlink()
        with pytest.raises(BadFrame, match="file vanished before it was read"):
            source.read(1.0)


def test_sku_from_subfolder(tmp_path: Path) -> None:
    write_image(tmp_path / "sku-a" / "1.png", 1)
    write_image(tmp_path / "sku-b" / "1.png", 2)
    write_image(tmp_path / "loose.png", 3)
    settings = ReplaySettings(folder=tmp_path, rate_hz=None, sku_source=SkuSource.SUBFOLDER)
    with ReplaySource(settings) as source:
        got = [(red(f), f.sku) for f in (source.read(1.0) for _ in range(3))]
    assert got == [(3, None), (1, "sku-a"), (2, "sku-b")]


def test_sku_and_metadata_from_sidecar(folder: Path) -> None:
    (folder / "part_00.json").write_text(json.dumps({"sku": "gear-12", "expected": "NG"}))
    (folder / "part_01.json").write_text("{broken")
    settings = ReplaySettings(folder=folder, rate_hz=None, sku_source=SkuSource.SIDECAR)
    with ReplaySource(settings) as source:
        first = source.read(1.0)
        assert first.sku == "gear-12" and first.meta["sidecar"]["expected"] == "NG"
        with pytest.raises(BadFrame, match=r"sidecar part_01\.json"):
            source.read(1.0)
        assert source.read(1.0).sku is None


def test_software_trigger_releases_one_image_per_trigger(folder: Path) -> None:
    settings = ReplaySettings(folder=folder, trigger=TriggerMode.SOFTWARE)
    with ReplaySource(settings) as source:
        with pytest.raises(CaptureTimeout, match="no trigger"):
            source.read(0.05)
        timer = threading.Timer(0.05, source.trigger)
        timer.start()
        assert red(source.read(5.0)) == 10
        timer.join()
        source.trigger()
        source.trigger()
        assert [red(source.read(1.0)) for _ in range(2)] == [20, 30]


def test_trigger_in_free_run_is_an_error(folder: Path) -> None:
    with ReplaySource(ReplaySettings(folder=folder)) as source, pytest.raises(CaptureError, match="free_run"):
        source.trigger()


def test_close_wakes_a_waiting_read(folder: Path) -> None:
    source = ReplaySource(ReplaySettings(folder=folder, trigger=TriggerMode.SOFTWARE))
    source.open()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            source.read(30.0)
        except CaptureError as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.05)
    source.close()
    thread.join(5.0)
    assert not thread.is_alive()
    assert len(errors) == 1 and "closed" in str(errors[0])


def test_missing_or_empty_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureConfigError, match="does not exist"):
        ReplaySource(ReplaySettings(folder=tmp_path / "nope")).open()
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(CaptureConfigError, match="no images"):
        ReplaySource(ReplaySettings(folder=tmp_path)).open()


def test_open_source_builds_a_frame_source(folder: Path) -> None:
    with open_source(ReplaySettings(folder=folder, rate_hz=None, name="demo")) as source:
        assert isinstance(source, FrameSource)
        assert source.read(1.0).source == "demo"


def test_settings_reject_nonsense(folder: Path) -> None:
    with pytest.raises(ValueError, match="rate_hz"):
        ReplaySettings(folder=folder, rate_hz=0)
    with pytest.raises(ValueError, match="hardware trigger"):
        ReplaySettings(folder=folder, trigger=TriggerMode.HARDWARE)


def test_image_whose_header_opencv_refuses_is_a_bad_frame(folder: Path) -> None:
    # 68 bytes whose PNG header claims 50000x50000 pixels: cv2.imdecode raises instead of returning None.
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)
    bomb = folder / "part_01b.png"
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )
    # Without a station limit of its own, OpenCV's limit refuses it (with the limit: see the test below).
    settings = ReplaySettings(folder=folder, rate_hz=None, loop=False, max_frame_pixels=None)
    with ReplaySource(settings) as source:
        source.read(1.0)
        source.read(1.0)
        with pytest.raises(BadFrame, match=r"not a decodable image \(OpenCV: .*CV_IO_MAX_IMAGE_PIXELS"):
            source.read(1.0)
        assert red(source.read(1.0)) == 30  # the next read moves on
        assert source.stats.bad_frames == 1


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (its data is one byte)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0"))


def test_frame_above_the_pixel_limit_is_refused_before_decoding(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_image(folder / "part_01b.png", 99, size=(100, 200))  # 20,000 pixels; the others are 12x16 = 192
    decoded: list[int] = []
    imdecode = cv2.imdecode

    def counting_imdecode(buf: np.ndarray, flags: int) -> np.ndarray | None:
        decoded.append(buf.size)
        return imdecode(buf, flags)

    monkeypatch.setattr(cv2, "imdecode", counting_imdecode)
    settings = ReplaySettings(folder=folder, rate_hz=None, loop=False, max_frame_pixels=192)
    with ReplaySource(settings) as source:
        assert [red(source.read(1.0)) for _ in range(2)] == [10, 20]  # exactly at the limit: served
        with pytest.raises(BadFrame) as info:
            source.read(1.0)
        assert info.value.reason.startswith(
            "frame too large: header announces 200x100 = 20,000 pixels, above the limit of 192"
        )
        assert len(decoded) == 2, "the refused frame was never decoded"
        assert red(source.read(1.0)) == 30
        assert source.stats.bad_frames == 1


def test_the_default_limit_refuses_a_bomb_header_with_its_size(folder: Path) -> None:
    (folder / "part_01b.png").write_bytes(bomb_png(50000, 50000))
    with ReplaySource(ReplaySettings(folder=folder, rate_hz=None, loop=False)) as source:
        source.read(1.0)
        source.read(1.0)
        too_large = r"50000x50000 = 2,500,000,000 pixels, above the limit of 67,108,864"
        with pytest.raises(BadFrame, match=too_large):
            source.read(1.0)


def test_a_failure_of_any_kind_while_decoding_is_a_bad_frame(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def out_of_memory(buf: np.ndarray, flags: int) -> np.ndarray:
        raise MemoryError("cannot allocate 432000000 bytes")

    monkeypatch.setattr(cv2, "imdecode", out_of_memory)
    with ReplaySource(ReplaySettings(folder=folder, rate_hz=None)) as source:
        with pytest.raises(BadFrame, match="MemoryError: cannot allocate") as info:
            source.read(1.0)
        assert info.value.seq == 0 and source.stats.bad_frames == 1


def test_files_added_while_running_are_served_once_each_without_loop(folder: Path) -> None:
    with ReplaySource(ReplaySettings(folder=folder, rate_hz=None, loop=False)) as source:
        assert red(source.read(1.0)) == 10
        write_image(folder / "part_00b.png", 15)  # sorts before what is still waiting: served after it
        write_image(folder / "part_09.png", 90)
        assert [red(source.read(1.0)) for _ in range(4)] == [20, 30, 15, 90]
        write_image(folder / "part_00.png", 11)  # rewritten after it was served: not served again
        write_image(folder / "sub" / "part_10.png", 100)
        assert red(source.read(1.0)) == 100
        with pytest.raises(EndOfStreamError, match="all 6 image"):
            source.read(1.0)
        assert source.stats.frames == 6


def test_a_looping_source_serves_new_files_within_the_cycle_then_lists_all(folder: Path) -> None:
    with ReplaySource(ReplaySettings(folder=folder, rate_hz=None, loop=True)) as source:
        assert red(source.read(1.0)) == 10
        write_image(folder / "part_05.png", 50)
        (folder / "part_01.png").unlink()  # listed in this cycle: its turn is a bad frame; not listed after
        with pytest.raises(BadFrame, match="vanished"):
            source.read(1.0)
        frames = [source.read(1.0) for _ in range(4)]
        assert [red(f) for f in frames] == [30, 50, 10, 30]
        assert [f.meta["cycle"] for f in frames] == [0, 0, 1, 1]


def test_entries_that_look_like_frames_but_cannot_be_served_get_a_bad_frame(folder: Path) -> None:
    (folder / "part_00a.png").symlink_to(folder / "gone.png")
    (folder / "part_00b.png").mkdir()
    os.mkfifo(folder / "part_00c.png")  # reading it would block for ever
    (folder / "part_00d.png").symlink_to("part_00d.png")  # a loop
    (folder / "part_00e.png.part").write_bytes(b"still being copied")  # no image suffix: not a frame
    with ReplaySource(ReplaySettings(folder=folder, rate_hz=None, loop=False)) as source:
        assert red(source.read(1.0)) == 10
        reasons = []
        for _ in range(4):
            with pytest.raises(BadFrame) as info:
                source.read(1.0)
            reasons.append(info.value.reason)
        assert reasons[0].startswith("dangling symbolic link")
        assert reasons[1] == "a directory, not an image file"
        assert reasons[2].startswith("not a regular file")
        assert reasons[3].startswith("cannot read file: Too many levels of symbolic links")
        assert [red(source.read(1.0)) for _ in range(2)] == [20, 30]
        with pytest.raises(EndOfStreamError):
            source.read(1.0)
        assert source.stats.bad_frames == 4


def test_a_folder_that_disappears_is_an_unavailable_device_until_it_is_back(tmp_path: Path) -> None:
    folder = tmp_path / "replay"
    write_image(folder / "a.png", 10)
    with ReplaySource(ReplaySettings(folder=folder, rate_hz=None, loop=True)) as source:
        assert red(source.read(1.0)) == 10
        shutil.move(folder, tmp_path / "away")
        with pytest.raises(DeviceUnavailableError, match="is gone"):
            source.read(0.05)
        shutil.move(tmp_path / "away", folder)
        assert red(source.read(1.0)) == 10


def test_a_looping_source_whose_folder_empties_waits_instead_of_spinning(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", 10)
    with ReplaySource(ReplaySettings(folder=tmp_path, rate_hz=None, loop=True)) as source:
        source.read(1.0)
        (tmp_path / "a.png").unlink()
        start = time.monotonic()
        with pytest.raises(CaptureTimeout, match="no images"):
            source.read(0.2)
        assert time.monotonic() - start >= 0.15
        write_image(tmp_path / "b.png", 20)
        assert red(source.read(1.0)) == 20
