"""The flash state machine through its public API (bank step replaced by a fault-injection stand-in)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.flash.active import ActiveConfig, SafeMode, load_active_config
from edge.flash.flash import FlashOptions, flash
from edge.flash.journal import Journal
from edge.flash.lock import station_lock
from edge.flash.rollback import rollback
from flash.flash_helpers import standin_builder, variant

AddHook = Callable[[str, str, str], Path]


def options(root: Path, hooks_dir: Path | None = None, **kw: Any) -> FlashOptions:
    kw.setdefault("bank_builder", standin_builder())
    return FlashOptions(root=root, hooks_dir=hooks_dir, by="tester", **kw)


def active(root: Path) -> ActiveConfig:
    state = load_active_config(root)
    assert isinstance(state, ActiveConfig), state
    return state


def journal(root: Path) -> list[dict[str, Any]]:
    return Journal(root / "journal.jsonl").records()


def test_first_flash_commits_into_slot_a_and_journals(bundle: Path, root: Path) -> None:
    result = flash(bundle, options(root))
    assert result.ok and result.result == "committed", result.reason
    state = active(root)
    assert state.slot == "a"
    assert state.config_hash == result.config_hash
    assert (state.banks_dir / "widget" / "bank.json").is_file()
    assert state.resolved.paths["camera.replay.dir"] == (bundle.parent / "replay").resolve()
    start, end = journal(root)
    assert (start["phase"], end["phase"]) == ("start", "end")
    assert end["by"] == "tester" and end["result"] == "committed" and end["config_hash"] == result.config_hash
    assert end["steps"][-1] == "commit"
    request = json.loads((root / "run" / "reload-request.json").read_text())
    assert request["config_hash"] == result.config_hash and request["slot"] == "a"


def test_second_flash_uses_the_other_slot(bundle: Path, root: Path) -> None:
    assert flash(bundle, options(root)).ok
    other = variant(bundle, "v2.yaml", skus=[{"id": "widget", "golden_dir": "golden/widget", "top_k": 2}])
    result = flash(other, options(root))
    assert result.ok and (result.slot, result.previous_slot) == ("b", "a")
    assert active(root).config.skus[0].top_k == 2


def test_invalid_config_aborts_and_leaves_the_active_config(bundle: Path, root: Path) -> None:
    assert flash(bundle, options(root)).ok
    before = active(root).config_hash
    bad = variant(bundle, "bad.yaml", camera={"source": "webcam"})
    result = flash(bad, options(root))
    assert result.result == "aborted"
    assert "validate" in result.reason and "camera.source" in result.reason
    assert active(root).config_hash == before
    assert not any(p.name.startswith(".staging") for p in (root / "slots").iterdir())


def test_path_traversal_is_rejected_at_resolve(bundle: Path, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (bundle.parent / "golden" / "link").symlink_to(outside)
    evil = variant(bundle, "evil.yaml", skus=[{"id": "widget", "golden_dir": "golden/link"}])
    result = flash(evil, options(root))
    assert result.result == "aborted" and "outside the allowed roots" in result.reason
    assert isinstance(load_active_config(root), SafeMode)


def test_self_test_failure_aborts(bundle: Path, root: Path) -> None:
    result = flash(bundle, options(root, bank_builder=standin_builder("golden img001 scores 3.2 > 1.1")))
    assert result.result == "aborted"
    assert "build banks: SKU widget: golden img001" in result.reason
    assert isinstance(load_active_config(root), SafeMode)


def test_dry_run_installs_nothing_and_runs_no_hooks(
    bundle: Path, root: Path, hooks: AddHook, tmp_path: Path
) -> None:
    marker = tmp_path / "hook-ran"
    folder = hooks("pre-flash", "10-mark", f"touch {marker}\n")
    calls: list[str] = []
    result = flash(bundle, options(root, folder, dry_run=True, bank_builder=standin_builder(calls=calls)))
    assert result.result == "dry_run" and result.ok
    assert calls == ["widget"]
    assert not marker.exists()
    assert not root.exists()  # nothing written on the station: no journal, lock, staging or bank cache
    assert isinstance(load_active_config(root), SafeMode)


def test_dry_run_on_a_flashed_station_leaves_every_file_as_it_was(bundle: Path, root: Path) -> None:
    assert flash(bundle, options(root)).ok
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}
    links = {p: p.readlink() for p in root.rglob("*") if p.is_symlink()}
    result = flash(variant(bundle, "v2.yaml", mqtt={"port": 1884}), options(root, dry_run=True))
    assert result.result == "dry_run", result.reason
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}
    assert after == before
    assert {p: p.readlink() for p in root.rglob("*") if p.is_symlink()} == links


def test_pre_flash_hook_failure_aborts(bundle: Path, root: Path, hooks: AddHook) -> None:
    assert flash(bundle, options(root)).ok
    folder = hooks("pre-flash", "10-no", "echo 'line is running, not now'\nexit 1\n")
    other = variant(bundle, "v2.yaml", mqtt={"port": 1884})
    result = flash(other, options(root, folder))
    assert result.result == "aborted"
    assert "pre-flash hook: 10-no: exit 1 (line is running, not now)" in result.reason
    assert active(root).slot == "a" and active(root).config.mqtt.port == 1883
    end = journal(root)[-1]
    assert end["hooks"][0]["hooks"][0]["output"].strip() == "line is running, not now"


@pytest.mark.parametrize("event", ["post-flash", "health-check"])
def test_post_flash_or_health_failure_rolls_back(
    bundle: Path, root: Path, hooks: AddHook, event: str
) -> None:
    assert flash(bundle, options(root)).ok
    folder = hooks(event, "10-bad", "echo unhealthy: $EDGE_SLOT\nexit 2\n")
    other = variant(bundle, "v2.yaml", mqtt={"port": 1884})
    result = flash(other, options(root, folder))
    assert result.result == "rolled_back"
    assert f"{event} hook: 10-bad: exit 2 (unhealthy: b)" in result.reason
    state = active(root)
    assert state.slot == "a" and state.config.mqtt.port == 1883
    assert json.loads((root / "run" / "reload-request.json").read_text())["reason"] == "rollback"


def test_failed_first_flash_rolls_back_to_no_config(bundle: Path, root: Path, hooks: AddHook) -> None:
    folder = hooks("post-flash", "10-bad", "exit 1\n")
    assert flash(bundle, options(root, folder)).result == "rolled_back"
    assert isinstance(load_active_config(root), SafeMode)


def test_hook_timeout_rolls_back(bundle: Path, root: Path, hooks: AddHook) -> None:
    assert flash(bundle, options(root)).ok
    folder = hooks("health-check", "10-hang", "sleep 20\n")
    result = flash(variant(bundle, "v2.yaml", mqtt={"port": 1884}), options(root, folder, hook_timeout_s=0.3))
    assert result.result == "rolled_back" and "timed out" in result.reason


def test_rollback_command_switches_to_the_other_slot(bundle: Path, root: Path) -> None:
    fresh = rollback(root)
    assert (
        not fresh.ok and fresh.reason == "nothing to roll back to: nothing was ever flashed on this station"
    )
    assert flash(bundle, options(root)).ok
    once = rollback(root).reason
    assert once.startswith("nothing to roll back to: only one config was ever flashed here (slot "), once
    assert flash(variant(bundle, "v2.yaml", mqtt={"port": 1884}), options(root)).ok
    result = rollback(root, by="night-shift")
    assert result.ok and active(root).config.mqtt.port == 1883
    assert journal(root)[-1]["event"] == "rollback" and journal(root)[-1]["by"] == "night-shift"


def test_corrupted_active_slot_means_safe_mode_with_reason(bundle: Path, root: Path) -> None:
    assert flash(bundle, options(root)).ok
    assert flash(variant(bundle, "v2.yaml", mqtt={"port": 1884}), options(root)).ok
    (root / "slots" / "b" / "station.yaml").write_text("version: 1\n")
    state = load_active_config(root)
    assert isinstance(state, SafeMode)
    assert "corrupt" in state.reason and state.rollback_available
    assert "edge flash rollback" in state.reason


def test_safe_mode_reasons(root: Path, bundle: Path) -> None:
    state = load_active_config(root)
    assert isinstance(state, SafeMode) and "no config has been flashed" in state.reason
    root.mkdir(parents=True, exist_ok=True)
    (root / "current").symlink_to("slots/a")
    assert "no manifest" in load_active_config(root).reason  # type: ignore[union-attr]


def test_secret_missing_at_boot_is_safe_mode(bundle: Path, root: Path) -> None:
    cfg = variant(bundle, "pw.yaml", mqtt={"username": "u", "password": {"env": "EDGE_TEST_PW"}})
    assert flash(cfg, options(root, env={"EDGE_TEST_PW": "x"})).ok
    os.environ.pop("EDGE_TEST_PW", None)
    state = load_active_config(root)
    assert isinstance(state, SafeMode) and "EDGE_TEST_PW is not set" in state.reason


def test_secrets_never_reach_journal_hooks_or_output(
    bundle: Path,
    root: Path,
    hooks: AddHook,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "Sup3r-Secret-Broker-Pw"
    (bundle.parent / "pw").write_text(secret + "\n")
    cfg = variant(bundle, "pw.yaml", mqtt={"username": "u", "password": {"file": "pw"}})
    folder = hooks("post-flash", "10-snoop", f"cat {bundle.parent / 'pw'}\nenv\n")
    with caplog.at_level("DEBUG"):
        result = flash(cfg, options(root, folder))
    assert result.ok, result.reason
    out, err = capsys.readouterr()
    texts = [(root / "journal.jsonl").read_text(), out, err, caplog.text, result.reason]
    texts += [p.read_text(errors="replace") for p in (root / "slots" / "a").rglob("*") if p.is_file()]
    assert all(secret not in t for t in texts)
    assert "***" in (root / "journal.jsonl").read_text()  # the snooping hook's output was redacted


#: A stand-in station process that follows the reload protocol of edge.flash.reload: on SIGHUP it reads the
#: request and records either that it runs the requested config or (fault injection) that it refused it.
STANDIN_STATION = """
import signal, sys, time
from pathlib import Path
from edge.flash.reload import read_reload_request, write_station_status
root, mode = Path(sys.argv[1]), sys.argv[2]
def on_hup(*_):
    request = read_reload_request(root)
    if mode == "accept":
        write_station_status(root, {"status": "online", "config_hash": request["config_hash"],
                                    "request": request["flash_id"]})
    elif mode == "refuse":
        write_station_status(root, {"status": "online", "config_hash": "old", "request": request["flash_id"],
                                    "refused": "camera.replay.dir: not found"})
signal.signal(signal.SIGHUP, on_hup)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def station(root: Path) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(mode: str) -> subprocess.Popen[str]:
        (root / "run").mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-c", STANDIN_STATION, str(root), mode],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
        procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"  # its SIGHUP handler is installed
        (root / "run" / "station.pid").write_text(str(proc.pid))
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_flash_commits_once_the_running_station_confirms_the_new_config(
    bundle: Path, root: Path, station: Callable[[str], subprocess.Popen[str]]
) -> None:
    proc = station("accept")
    result = flash(bundle, options(root))
    assert result.ok, result.reason
    hooks = json.dumps(journal(root)[-1]["hooks"])
    assert f"SIGHUP sent to station pid {proc.pid}" in hooks and "runs the new config" in hooks


def test_flash_rolls_back_when_the_running_station_refuses_the_new_config(
    bundle: Path, root: Path, station: Callable[[str], subprocess.Popen[str]]
) -> None:
    first = flash(bundle, options(root))  # no station yet: committed without confirmation
    assert first.ok
    station("refuse")
    other = variant(bundle, "v2.yaml", skus=[{"id": "widget", "golden_dir": "golden/widget", "top_k": 2}])
    result = flash(other, options(root))
    assert result.result == "rolled_back"
    assert "station: the station refused the new config" in result.reason and "not found" in result.reason
    assert active(root).config_hash == first.config_hash


def test_flash_rolls_back_when_the_running_station_does_not_answer(
    bundle: Path, root: Path, station: Callable[[str], subprocess.Popen[str]]
) -> None:
    assert flash(bundle, options(root)).ok
    station("silent")
    other = variant(bundle, "v2.yaml", skus=[{"id": "widget", "golden_dir": "golden/widget", "top_k": 2}])
    result = flash(other, options(root, confirm_timeout_s=1.0))
    assert result.result == "rolled_back" and "did not confirm the new config within 1 s" in result.reason


def test_concurrent_flash_is_refused(bundle: Path, root: Path) -> None:
    with station_lock(root):
        result = flash(bundle, options(root))
    assert result.result == "aborted" and "another flash" in result.reason


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_fuzzed_config_never_touches_the_active_config(bundle: Path, root: Path, text: str) -> None:
    if not (root / "current").exists():
        assert flash(bundle, options(root)).ok
    before = active(root)
    fuzzed = bundle.with_name("fuzzed.yaml")
    fuzzed.write_text(bundle.read_text()[: len(text) % 300] + text, encoding="utf-8", errors="replace")
    result = flash(fuzzed, options(root))
    after = active(root)
    assert (after.slot, after.config_hash) == (before.slot, before.config_hash) or result.ok
    if not result.ok:
        assert result.result == "aborted" and result.reason.startswith(("validate:", "resolve:"))


def test_cli_flash_status_and_dry_run(bundle: Path, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge.flash.cli import main

    assert main(["flash", "status", "--root", str(root)]) == 1
    assert "safe_mode" in capsys.readouterr().out
    hooks = root.parent / "empty-hooks"
    hooks.mkdir()
    code = main(["flash", str(bundle), "--root", str(root), "--hooks-dir", str(hooks), "--by", "cli-user"])
    # The default bank builder is the real core: without exported artifacts it fails clearly, exports nothing.
    _, err = capsys.readouterr()
    assert code == 1
    assert "aborted: build banks: SKU widget: no model artifacts" in err and "edge export" in err
    assert not list((bundle.parent / "artifacts").iterdir())
    assert main(["flash", "status", "--root", str(root), "--json"]) == 1
    status = json.loads(capsys.readouterr().out)
    assert status["recent"][-1]["by"] == "cli-user"
