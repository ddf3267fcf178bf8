"""``edge run``'s exit when a stop had to leave a thread inside a native call."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from edge.runtime.cli import leave

REPO = Path(__file__).resolve().parents[2]


def test_nothing_left_running_returns_the_code() -> None:
    assert leave(3, []) == 3


def test_an_archive_still_encoding_at_exit_does_not_take_the_process_down(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import logging, sys, time
        from pathlib import Path
        import numpy as np
        from edge.capture.frame import Frame
        from edge.inspection.types import Verdict
        from edge.mqtt.payloads import VerdictPayload
        from edge.runtime.archive import ImageArchive
        from edge.runtime.cli import leave
        from edge.capture.part import Part

        logging.basicConfig(level=logging.INFO)
        archive = ImageArchive(Path({str(tmp_path / "archive")!r}))
        image = np.random.default_rng(0).integers(0, 256, (6000, 6000, 3), dtype=np.uint8)
        frame = Frame(image, seq=1, timestamp=time.time(), source="t", pixel_format="RGB8")
        part = Part(part_id="st1-000000001", seq=1, sku="plate", frame=frame)
        verdict = VerdictPayload(
            part_id=part.part_id, seq=1, sku="plate", verdict=Verdict.NG, score=2.0, threshold=1.0
        )
        archive(part, verdict, None)
        time.sleep(0.5)  # the writer is inside cv2.imencode now (a PNG of noise this size takes seconds)
        assert archive.close(timeout_s=0.1) is False
        print("closed", flush=True)
        sys.exit(leave(7, ["archive writer"] if archive.is_writing() else []))
        """
    )
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 7, done.stderr[-3000:]
    assert time.monotonic() - start < 30
    assert "closed" in done.stdout
    assert "archive writer still inside a native call at exit: leaving without finalization" in done.stderr
