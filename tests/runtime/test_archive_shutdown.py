"""Stopping while the archive encodes a very large frame: clean exit, that part archived, the rest indexed."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from pathlib import Path
    from edge.capture.frame import Frame
    from edge.mqtt.payloads import VerdictPayload
    from edge.runtime.archive import ImageArchive
    from edge.runtime.parts import Part

    archive = ImageArchive(Path(sys.argv[1]))
    image = np.random.default_rng(0).integers(0, 255, (6000, 6000, 3), dtype=np.uint8)  # slow to encode
    for seq in (1, 2, 3):
        frame = Frame(image=image, seq=seq, timestamp=time.time(), source="t", pixel_format="RGB8", sku="w")
        part = Part(part_id=f"big-{seq}", seq=seq, sku="w", frame=frame)
        archive(part, VerdictPayload.uninspected(part_id=part.part_id, seq=seq, reason="test"), None)
    time.sleep(0.2)  # the writer is inside the PNG encoder of the first part
    archive.close(timeout_s=0.05)
    print("closed", flush=True)
    """
)


def test_stop_during_a_huge_encode_exits_cleanly_and_loses_no_part(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root)], cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-2000:]  # no SIGABRT from a thread killed inside OpenCV
    assert "closed" in proc.stdout
    with sqlite3.connect(root / "index.db") as db:
        rows = dict(db.execute("SELECT part_id, reason FROM parts").fetchall())
        dirs = dict(db.execute("SELECT part_id, dir FROM parts").fetchall())
    assert set(rows) == {"big-1", "big-2", "big-3"}  # every part is in the index
    assert (root / str(dirs["big-1"]) / "frame.png").is_file()  # the one being written was finished
    for cut in ("big-2", "big-3"):
        assert dirs[cut] is None and "archiving cut short at shutdown" in rows[cut]
