"""``edge run --simulated-camera`` without a config: enroll from the simulator, then inspect its frames."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.mosquitto import mosquitto_binary

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.camera
def test_simulator_station_enrolls_then_inspects(tmp_path: Path) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed: run `bash scripts/install-system-deps.sh`")
    workdir = tmp_path / "sim"
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli", "run", "--simulated-camera", "--simulator-dir", str(workdir),
         "--duration", "12", "--no-metrics"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-3000:]
    # Enrolled from the simulator, with the checks of `edge enroll` and their summary.
    golden = sorted((workdir / "golden").glob("*.png"))
    assert len(golden) >= 2
    assert "of 16 frames kept" in out and f"wrote {len(golden)} golden image(s)" in out
    # The config it wrote is a plain GenICam config on the simulator's producer.
    config = (workdir / "station.yaml").read_text()
    assert "source: genicam" in config and "viky.cti" in config
    # Then the station inspected the simulator's frames and the verdicts came back from the broker.
    rows = [line for line in out.splitlines() if line.strip().startswith("sim1-")]
    assert len(rows) >= 10, out
    # 5 parts/s is well within what the station sustains; a loaded CI machine may still miss the odd one.
    inspected = [row for row in rows if " OK " in row or " NG " in row]
    assert len(inspected) >= 0.9 * len(rows), "parts were not inspected"
    assert sum(" OK " in row for row in rows) >= len(rows) // 2, "the enrolled poses must pass"
    assert "parts received from the broker" in out and "state: offline" in out
