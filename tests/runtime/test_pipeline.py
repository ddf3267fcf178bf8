"""The hot loop against a real broker, real ONNX Runtime encoders and a replay source.

Fault injection (slow, failing, hanging inspection) wraps the real inspector; nothing else is faked.
"""

from __future__ import annotations

import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from fixtures.mqtt_subscriber import Subscriber

from edge.capture import ReplaySettings, ReplaySource, TriggerMode
from edge.inspection.inspector import Inspector
from edge.inspection.types import InspectionResult
from edge.mqtt import StationMqtt
from edge.runtime.parts import PartIds
from edge.runtime.pipeline import InspectFn, Pipeline, PipelineSettings
from edge.runtime.watchdog import WatchdogSettings
from runtime.conftest import write_parts
from runtime.support import assert_contiguous, wait_verdicts

Image = npt.NDArray[np.uint8]


def slowed(inspect: InspectFn, seconds: float) -> InspectFn:
    def slow(image: Image, sku: str) -> InspectionResult:
        time.sleep(seconds)
        return inspect(image, sku)

    return slow


def run_pipeline(
    folder: Path,
    mqtt: StationMqtt,
    inspect: InspectFn,
    *,
    rate_hz: float,
    settings: PipelineSettings | None = None,
    sku: str | None = "plate",
    trigger: TriggerMode = TriggerMode.FREE_RUN,
    loop: bool = True,
    max_frame_pixels: int | None = 1 << 26,
) -> Pipeline:
    replay = ReplaySettings(
        folder=folder, rate_hz=rate_hz, loop=loop, trigger=trigger, max_frame_pixels=max_frame_pixels
    )
    source = ReplaySource(replay)
    source.open()
    pipeline = Pipeline(source, inspect, mqtt, PartIds("st1"), settings or PipelineSettings(), sku=sku)
    pipeline.start()
    return pipeline


@pytest.fixture
def stop_later() -> Iterator[Callable[[Pipeline], Pipeline]]:
    started: list[Pipeline] = []
    yield lambda p: started.append(p) or p  # type: ignore[func-returns-value]
    for pipeline in started:
        pipeline.stop()
        pipeline.source.close()


def test_inspects_parts_in_order(
    enrolled_inspector: Inspector,
    replay_dir: Path,
    station_mqtt: StationMqtt,
    subscriber: Subscriber,
    stop_later: Callable[[Pipeline], Pipeline],
) -> None:
    stop_later(run_pipeline(replay_dir, station_mqtt, enrolled_inspector.inspect, rate_hz=2.0))
    found = wait_verdicts(subscriber, 6, timeout_s=30)
    assert_contiguous(found)
    assert {v["verdict"] for v in found} <= {"OK", "NG"}
    assert any(v["verdict"] == "NG" and v["boxes"] for v in found), "the defective parts must be found"
    assert all(v["frame_ts"] and v["latency_ms"]["station"] > 0 for v in found)
    assert subscriber.wait_for(lambda ms: sum(m.topic.endswith("/result") for m in ms) >= 6, 10)
    results = [m.json() for m in subscriber.on("test/line/st1/result")]
    assert [r["part_id"] for r in results][:6] == [v["part_id"] for v in found][:6]
    assert [r["code"] for r in results][:6] == [v["code"] for v in found][:6]


def test_overload_gives_not_inspected_never_silence(
    enrolled_inspector: Inspector,
    replay_dir: Path,
    station_mqtt: StationMqtt,
    subscriber: Subscriber,
    stop_later: Callable[[Pipeline], Pipeline],
) -> None:
    # Inspection takes >= 0.4 s, frames come every 0.05 s and at most 2 may wait: most parts cannot be
    # inspected, and each of them must still get an explicit verdict, in order.
    pipeline = stop_later(
        run_pipeline(
            replay_dir,
            station_mqtt,
            slowed(enrolled_inspector.inspect, 0.4),
            rate_hz=20.0,
            settings=PipelineSettings(queue_size=2),
        )
    )
    found = wait_verdicts(subscriber, 40, timeout_s=30)
    assert_contiguous(found)
    skipped = [v for v in found if v["verdict"] == "NOT_INSPECTED"]
    inspected = [v for v in found if v["verdict"] in ("OK", "NG")]
    assert skipped and inspected
    assert all(v["reason"].startswith("overload") and v["code"] == 2 for v in skipped)
    assert pipeline.counters.overload >= len(skipped)


def test_inspection_exception_gives_error_and_the_loop_goes_on(
    enrolled_inspector: Inspector,
    replay_dir: Path,
    station_mqtt: StationMqtt,
    subscriber: Subscriber,
    stop_later: Callable[[Pipeline], Pipeline],
) -> None:
    calls = 0

    def flaky(image: Image, sku: str) -> InspectionResult:
        nonlocal calls
        calls += 1
        if calls % 3 == 2:
            raise RuntimeError("injected inference failure")
        return enrolled_inspector.inspect(image, sku)

    stop_later(
        run_pipeline(replay_dir, station_mqtt, flaky, rate_hz=4.0, settings=PipelineSettings(queue_size=16))
    )
    found = wait_verdicts(subscriber, 7, timeout_s=30)
    assert_contiguous(found)
    errors = [v for v in found if v["verdict"] == "ERROR"]
    assert len(errors) >= 2
    assert all("injected inference failure" in v["reason"] and v["code"] == 3 for v in errors)
    assert found[-1]["verdict"] in ("OK", "NG", "ERROR")
    assert [v["verdict"] in ("OK", "NG") for v in found[2:4]].count(True) >= 1, (
        "parts after an error inspected"
    )


def test_unknown_sku_gives_error(
    enrolled_inspector: Inspector,
    replay_dir: Path,
    station_mqtt: StationMqtt,
    subscriber: Subscriber,
    stop_later: Callable[[Pipeline], Pipeline],
) -> None:
    stop_later(run_pipeline(replay_dir, station_mqtt, enrolled_inspector.inspect, rate_hz=10.0, sku="nope"))
    found = wait_verdicts(subscriber, 3, timeout_s=20)
    assert all(v["verdict"] == "ERROR" and "unknown SKU 'nope'" in v["reason"] for v in found)


def test_bad_image_file_gives_error(
    enrolled_inspector: Inspector,
    tmp_path: Path,
    station_mqtt: StationMqtt,
    subscriber: Subscriber,
    stop_later: Callable[[Pipeline], Pipeline],
) -> None:
    folder = tmp_path / "mixed"
    write_parts(folder, 3, defect_every=0)
    (folder / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # replaces a good part
    stop_later(
        run_pipeline(
            folder,
            station_mqtt,
            enrolled_inspector.inspect,
            rate_hz=4.0,
            settings=PipelineSettings(queue_size=8),
        )
    )
    found = wait_verdicts(subscriber, 6, timeout_s=30)
    assert_contiguous(found)
    assert [v["verdict"] for v in found[:3]] == ["OK", "ERROR", "OK"]
    assert "001.png" in found[1]["reason"]
    assert found[4]["verdict"] == "ERROR", "the bad file fails again on the next loop, the rest goes on"


def test_frames_above_the_pixel_limit_get_one_error_verdict_each(
    enrolled_inspector: Inspector,
    tmp_path: Path,
    station_mqtt: StationMqtt,
    subscriber: Subscriber,
    stop_later: Callable[[Pipeline], Pipeline],
) -> None:
    folder = tmp_path / "mixed"
    write_parts(folder, 3, defect_every=0)  # 256 x 256 = 65,536 pixels each
    big = np.full((300, 300, 3), 128, np.uint8)  # 90,000 pixels: a valid image, only too large
    assert cv2.imwrite(str(folder / "000b.png"), big)
    # A 57-byte PNG whose header claims 40000 x 40000 pixels.
    header = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    ihdr = b"IHDR" + header
    (folder / "001b.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    )
    pipeline = stop_later(
        run_pipeline(
            folder,
            station_mqtt,
            enrolled_inspector.inspect,
            rate_hz=4.0,
            loop=False,
            max_frame_pixels=70_000,
            settings=PipelineSettings(queue_size=8),
        )
    )
    found = wait_verdicts(subscriber, 5, timeout_s=30)
    assert pipeline.ended.wait(10)
    time.sleep(0.5)  # a second verdict for a part would arrive by now
    found = wait_verdicts(subscriber, 5, timeout_s=1)
    assert len(found) == 5 and len(list(subscriber.on("test/line/st1/verdict"))) == 5
    assert_contiguous(found)
    assert [v["verdict"] for v in found] == ["OK", "ERROR", "OK", "ERROR", "OK"]
    assert "000b.png" in found[1]["reason"] and "300x300 = 90,000 pixels" in found[1]["reason"]
    assert "001b.png" in found[3]["reason"] and "40000x40000 = 1,600,000,000 pixels" in found[3]["reason"]
    assert all("above the limit of 70,000" in v["reason"] for v in (found[1], found[3]))


def test_the_replay_follows_its_folder_and_what_cannot_be_served_gets_a_verdict(
    enrolled_inspector: Inspector,
    tmp_path: Path,
    station_mqtt: StationMqtt,
    subscriber: Subscriber,
    stop_later: Callable[[Pipeline], Pipeline],
) -> None:
    folder = tmp_path / "watched"
    write_parts(folder, 2, defect_every=0)
    (folder / "000a.png").symlink_to(folder / "deleted.png")
    (folder / "000b.png").mkdir()
    pipeline = stop_later(
        run_pipeline(
            folder,
            station_mqtt,
            enrolled_inspector.inspect,
            rate_hz=2.0,
            loop=False,
            settings=PipelineSettings(queue_size=8),
        )
    )
    # Added after the folder was scanned, atomically (a name without an image suffix, then renamed).
    staging = tmp_path / "staging"
    write_parts(staging, 1, seed=9, defect_every=0)
    (staging / "000.png").rename(folder / "002.png.part")
    (folder / "002.png.part").rename(folder / "002.png")
    found = wait_verdicts(subscriber, 5, timeout_s=30)
    assert pipeline.ended.wait(10)
    assert_contiguous(found)
    assert [v["verdict"] for v in found] == ["OK", "ERROR", "ERROR", "OK", "OK"]
    assert "000a.png" in found[1]["reason"] and "dangling symbolic link" in found[1]["reason"]
    assert "000b.png" in found[2]["reason"] and "a directory, not an image file" in found[2]["reason"]
    assert len(list(subscriber.on("test/line/st1/verdict"))) == 5, "each served once (loop off)"


def test_hung_inference_is_detected_and_the_worker_replaced(
    enrolled_inspector: Inspector,
    replay_dir: Path,
    station_mqtt: StationMqtt,
    subscriber: Subscriber,
    stop_later: Callable[[Pipeline], Pipeline],
) -> None:
    release = threading.Event()
    calls = 0

    def hangs_once(image: Image, sku: str) -> InspectionResult:
        nonlocal calls
        calls += 1
        if calls == 2:
            release.wait(30)  # a native call that does not come back (until the test ends)
        return enrolled_inspector.inspect(image, sku)

    pipeline = stop_later(
        run_pipeline(
            replay_dir,
            station_mqtt,
            hangs_once,
            rate_hz=4.0,
            settings=PipelineSettings(
                queue_size=16, watchdog=WatchdogSettings(hang_timeout_s=1.0, check_interval_s=0.1)
            ),
        )
    )
    try:
        found = wait_verdicts(subscriber, 6, timeout_s=30)
    finally:
        release.set()
    assert_contiguous(found)
    assert found[1]["verdict"] == "ERROR" and "hung" in found[1]["reason"]
    assert {v["verdict"] for v in found[2:6]} <= {"OK", "NG"}
    assert pipeline.workers.restarts == 1
    time.sleep(0.3)  # the abandoned call returns now; its late result must not become a second verdict
    assert pipeline.publisher.duplicates == 0


def test_software_trigger_without_frame_gives_not_inspected(
    enrolled_inspector: Inspector,
    replay_dir: Path,
    station_mqtt: StationMqtt,
    subscriber: Subscriber,
    stop_later: Callable[[Pipeline], Pipeline],
) -> None:
    pipeline = stop_later(
        run_pipeline(
            replay_dir,
            station_mqtt,
            enrolled_inspector.inspect,
            rate_hz=4.0,
            trigger=TriggerMode.SOFTWARE,
            settings=PipelineSettings(trigger=TriggerMode.SOFTWARE, trigger_timeout_s=0.5),
        )
    )
    part = pipeline.trigger("PLC-1")
    assert part.part_id == "PLC-1"
    found = wait_verdicts(subscriber, 1, timeout_s=20)
    assert found[0]["part_id"] == "PLC-1" and found[0]["verdict"] in ("OK", "NG")
    assert pipeline.counters.frames_untriggered == 0
