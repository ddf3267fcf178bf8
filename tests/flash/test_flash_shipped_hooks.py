"""The hooks shipped in firmware_hooks/ behave as docs/firmware_hooks.md says."""

from __future__ import annotations

import subprocess
from pathlib import Path

from edge.flash.flash import FlashOptions, flash
from edge.flash.hooks import HookContext, run_hooks
from flash.flash_helpers import standin_builder

SHIPPED = Path(__file__).resolve().parents[2] / "firmware_hooks"


def test_shipped_health_check_passes_on_a_good_station_and_fails_in_safe_mode(
    bundle: Path, root: Path
) -> None:
    context = HookContext(station_root=str(root))
    report = run_hooks("health-check", SHIPPED, context)
    assert not report.ok and "safe mode: no config has been flashed" in report.failure()
    result = flash(bundle, FlashOptions(root=root, hooks_dir=SHIPPED, bank_builder=standin_builder()))
    assert result.ok, result.reason  # pre-flash disk-space and health-check hooks ran for real
    report = run_hooks("health-check", SHIPPED, context)
    assert report.ok and "healthy: slot a" in report.results[0].output


def test_health_check_runs_standalone_like_rauc_would(bundle: Path, root: Path) -> None:
    assert flash(bundle, FlashOptions(root=root, bank_builder=standin_builder())).ok
    hook = SHIPPED / "health-check.d" / "10-station"
    import sys

    env = {"EDGE_STATION_ROOT": str(root), "EDGE_PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}
    assert subprocess.run([hook], env=env, check=False).returncode == 0
    (root / "run").mkdir(exist_ok=True)
    (root / "run" / "station.pid").write_text("999999")  # a station that registered and died
    proc = subprocess.run([hook], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "names no running process" in proc.stdout


def test_disk_space_hook(root: Path, tmp_path: Path) -> None:
    root.mkdir()
    hook = SHIPPED / "pre-flash.d" / "10-disk-space"
    base = {"EDGE_STATION_ROOT": str(root), "PATH": "/usr/bin:/bin"}
    assert subprocess.run([hook], env={**base, "EDGE_MIN_FREE_MB": "1"}, check=False).returncode == 0
    proc = subprocess.run(
        [hook], env={**base, "EDGE_MIN_FREE_MB": "999999999"}, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1 and "need 999999999 MB" in proc.stdout


def test_post_update_hooks(tmp_path: Path, artifacts: Path) -> None:
    # A station with nothing flashed yet: the model refresh has nothing to do and says so; then a verified
    # artifact set on a station without a GPU: no engine to rebuild, and the hook says why.
    empty = tmp_path / "station"
    empty.mkdir()
    context = HookContext(artifact_dir=str(artifacts), station_root=str(empty))
    report = run_hooks("post-update", SHIPPED, context)
    assert report.ok, [r.output for r in report.results]
    assert [r.name for r in report.results] == ["05-refresh-model", "10-rebuild-engines"]
    assert "unchanged: nothing to refresh" in report.results[0].output
    # An artifact folder that does not verify is a failed update, never "fine".
    (tmp_path / "broken").mkdir()
    context = HookContext(artifact_dir=str(tmp_path / "broken"), station_root=str(empty))
    report = run_hooks("post-update", SHIPPED, context)
    assert not report.ok and "no manifest.json" in report.results[-1].output
