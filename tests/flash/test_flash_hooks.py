from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from edge.flash.hooks import HookContext, discover, run_hooks

AddHook = Callable[[str, str, str], Path]
CTX = HookContext(
    station_id="st1",
    config_path="/x/station.yaml",
    slot="b",
    artifact_dir="/x/artifacts",
    reason="flash 1 by tester",
    station_root="/x",
)


def test_hooks_run_in_name_order_with_the_documented_environment(hooks: AddHook, tmp_path: Path) -> None:
    log = tmp_path / "order.log"
    for name in ("20-second", "10-first", "30-third"):
        folder = hooks("pre-flash", name, f'echo "{name} $EDGE_EVENT $EDGE_STATION_ID $EDGE_SLOT" >> {log}\n')
    report = run_hooks("pre-flash", folder, CTX)
    assert report.ok
    assert log.read_text().splitlines() == [
        "10-first pre-flash st1 b",
        "20-second pre-flash st1 b",
        "30-third pre-flash st1 b",
    ]
    env_hook = hooks("post-flash", "10-env", "env\n")
    out = run_hooks("post-flash", env_hook, CTX).results[0].output
    for line in (
        "EDGE_STATION_ID=st1",
        "EDGE_CONFIG_PATH=/x/station.yaml",
        "EDGE_SLOT=b",
        "EDGE_ARTIFACT_DIR=/x/artifacts",
        "EDGE_REASON=flash 1 by tester",
        "EDGE_EVENT=post-flash",
        "EDGE_STATION_ROOT=/x",
    ):
        assert line in out.splitlines()


def test_hooks_do_not_inherit_secrets_from_the_environment(hooks: AddHook, monkeypatch: object) -> None:
    import os

    os.environ["EDGE_MQTT_PASSWORD"] = "leaky-value"
    try:
        folder = hooks("post-flash", "10-env", "env\n")
        output = run_hooks("post-flash", folder, CTX).results[0].output
    finally:
        del os.environ["EDGE_MQTT_PASSWORD"]
    assert "leaky-value" not in output


def test_failure_stops_the_remaining_hooks_and_says_why(hooks: AddHook, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hooks("pre-flash", "10-ok", "echo fine\n")
    hooks("pre-flash", "20-fail", "echo 'disk too small' >&2\nexit 3\n")
    folder = hooks("pre-flash", "30-never", f"touch {marker}\n")
    report = run_hooks("pre-flash", folder, CTX)
    assert not report.ok
    assert [r.name for r in report.results] == ["10-ok", "20-fail"]
    assert report.failure() == "20-fail: exit 3 (disk too small)"
    assert not marker.exists()


def test_timeout_kills_the_whole_process_group(hooks: AddHook, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    # The hook starts a background child, waits until it runs, then hangs.
    script = (
        f"sh -c 'echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; exec sleep 30' >/dev/null 2>&1 &\n"
    )
    script += f"while [ ! -s {pidfile} ]; do sleep 0.01; done\nexec sleep 30\n"
    folder = hooks("health-check", "10-hang", script)
    report = run_hooks("health-check", folder, CTX, timeout_s=2.0)
    result = report.results[0]
    assert result.timed_out and not report.ok
    assert "timed out" in report.failure()
    assert pidfile.exists(), "the hook timed out before its child started: the test proved nothing"
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the hook's child survived the timeout"


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for an init that does not reap counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_non_executables_and_leftovers_are_skipped(hooks: AddHook) -> None:
    folder = hooks("pre-flash", "10-a", "exit 0\n")
    hooks("pre-flash", "20-b~", "exit 1\n")
    hooks("pre-flash", "30-c.disabled", "exit 1\n")
    off = hooks("pre-flash", "40-d", "exit 1\n") / "pre-flash.d" / "40-d"
    off.chmod(0o644)
    assert [p.name for p in discover(folder, "pre-flash")] == ["10-a"]
    assert run_hooks("pre-flash", folder, CTX).ok


def test_secret_values_are_redacted_from_output(hooks: AddHook) -> None:
    folder = hooks("post-flash", "10-leak", "echo password is hunter2hunter2\n")
    report = run_hooks("post-flash", folder, CTX, secrets=["hunter2hunter2"])
    assert "hunter2" not in report.results[0].output
    assert "***" in report.results[0].output


def test_missing_event_folder_runs_nothing(tmp_path: Path) -> None:
    assert run_hooks("post-update", tmp_path, CTX).results == []
    assert run_hooks("post-update", None, CTX).ok
