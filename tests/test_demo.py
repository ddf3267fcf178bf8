"""``edge demo`` end to end: synthetic SKU, local broker, station, verdicts read back from the broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.mosquitto import mosquitto_binary

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed: run `bash scripts/install-system-deps.sh`")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "demo",
            "--workdir",
            str(tmp_path / "demo"),
            "--parts",
            "8",
            "--duration",
            "120",
            "--fps",
            "3",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-3000:]
    rows = [line for line in out.splitlines() if line.strip().startswith("station1-")]
    assert len(rows) >= 8
    assert any(" NG " in row for row in rows) and any(" OK " in row for row in rows)
    assert "parts received from the broker" in out and "frame -> subscriber latency" in out
    assert "replayed file" in out and "known to be" in out  # the legend before the first verdict
    # Each verdict names its replayed file and what the demo knows it to be, and is marked right or wrong.
    assert all(".png" in row and (" good " in row or "_" in row) for row in rows)
    assert any(" yes " in row for row in rows)
    assert "right " in out and " of " in out and "defective passed" in out
    assert "state: offline" in out
