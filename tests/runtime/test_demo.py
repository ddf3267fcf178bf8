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


def test_demo_workspace_drops_another_models_artifacts_and_keeps_its_own(tmp_path: Path) -> None:
    from edge.demo import prepare_demo
    from edge.inspection.model import ModelSpec, spec_model_id
    from export.manifest import Manifest, write_manifest

    artifacts = tmp_path / "demo" / "artifacts"

    def exported(model_id: str) -> None:
        artifacts.mkdir(parents=True, exist_ok=True)
        (artifacts / "vision_encoder.onnx").write_bytes(model_id.encode())
        write_manifest(artifacts, Manifest(model_id=model_id, spec={}, weights_sha256="", opset=17, io={}))

    exported("lite0-000000000000")  # made by an older version of the model code
    prepare_demo(tmp_path / "demo")
    assert not (artifacts / "vision_encoder.onnx").exists(), "stale export of another model kept"
    assert artifacts.is_dir()

    current = spec_model_id(ModelSpec())
    exported(current)
    prepare_demo(tmp_path / "demo")
    assert (artifacts / "vision_encoder.onnx").read_bytes() == current.encode()
