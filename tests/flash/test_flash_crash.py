"""Crash safety: ``edge flash`` SIGKILLed at random points never leaves the station without a complete,
valid config: after every kill the active config is the old one or the new one, intact, never a mix."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from edge.engines.encoders import torch_encoders
from edge.flash.active import ActiveConfig, load_active_config
from edge.flash.flash import FlashOptions, flash
from edge.golden.banks import build_banks
from edge.model.spec import ModelSpec
from edge.synthetic.parts import write_sku
from flash.test_flash_real_banks import SIZE, make_config

KILLS = 15  # SIGKILLs that must land while a flash is running
MAX_RUNS = 40
STEP_TIMEOUT_S = 60.0
REPO = Path(__file__).resolve().parents[2]
FIRST_STEP = re.compile(r"flash [0-9a-f]+: validate")


def _start_flash(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], threading.Event]:
    """Start a flash; the event is set once it logs its first step (imports done, flash begun)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = threading.Event()

    def drain() -> None:  # keeps reading to the end so a full pipe never blocks the flash
        assert proc.stderr is not None
        for line in proc.stderr:
            if FIRST_STEP.search(line):
                started.set()

    threading.Thread(target=drain, daemon=True).start()
    return proc, started


def _time_flash(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds from a flash's first step to its exit (a complete, successful run)."""
    proc, started = _start_flash(cmd, env)
    assert started.wait(STEP_TIMEOUT_S), "the calibration flash never reached its first step"
    t0 = time.monotonic()
    assert proc.wait() == 0, "the calibration flash failed"
    return time.monotonic() - t0


def flash_cmd(config: Path, root: Path, hooks: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "edge.flash.cli",
        "flash",
        str(config),
        "--root",
        str(root),
        "--hooks-dir",
        str(hooks),
    ]


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_old_or_new_config(tmp_path: Path) -> None:
    sku_dir = write_sku(tmp_path / "synthetic", n_golden=3, n_good=0, n_per_defect=1, size=128, seed=5)
    bundle = tmp_path / "bundle"
    configs = [make_config(bundle, sku_dir, "old.yaml"), make_config(bundle, sku_dir, "new.yaml", top_k=2)]
    root = tmp_path / "station"
    hooks = tmp_path / "no-hooks"
    hooks.mkdir()

    # Warm the bank cache with the real core so that each killed run spends its time in the flash itself.
    encoders = torch_encoders(ModelSpec(input_size=SIZE))
    cache = root / "cache" / "banks"

    def builder(resolved: Any, artifact_dir: Path, out_dir: Path) -> Any:
        cache.mkdir(parents=True, exist_ok=True)
        return build_banks(resolved, artifact_dir, out_dir, cache_dir=cache, encoders=encoders)

    hashes = set()
    for config in configs:
        result = flash(config, FlashOptions(root=root, bank_builder=builder))
        assert result.ok, result.reason
        hashes.add(result.config_hash)

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # Time the flash itself, from its first step to exit: interpreter start-up and imports vary a lot
    # between a cold and a warm machine, so every kill is timed from the moment the flash begins.
    window = max(_time_flash(flash_cmd(configs[0], root, hooks), env) for _ in range(2))

    rng = random.Random(20261122)
    outcomes = {"killed": 0, "finished": 0}
    for i in range(MAX_RUNS):
        if outcomes["killed"] >= KILLS:
            break
        proc, started = _start_flash(flash_cmd(configs[i % 2], root, hooks), env)
        assert started.wait(STEP_TIMEOUT_S), f"run {i}: the flash never reached its first step"
        time.sleep(rng.uniform(0.0, window))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            outcomes["killed"] += 1
        else:
            outcomes["finished"] += 1
        proc.wait()
        state = load_active_config(root)
        assert isinstance(state, ActiveConfig), f"run {i}: station left without a config: {state}"
        assert state.config_hash in hashes, f"run {i}: active config is neither the old nor the new one"
    # Kills landed inside the flash, not just before or after it: otherwise this test proves nothing.
    assert outcomes["killed"] >= KILLS, outcomes

    # And the station recovers: the next flash cleans up and commits.
    result = flash(configs[1], FlashOptions(root=root, bank_builder=builder))
    assert result.ok, result.reason
    assert not [p for p in (root / "slots").iterdir() if p.name.startswith(".")]
