"""Fixtures for config tests: minimal valid configs, a resolvable station bundle on disk, a CLI runner."""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from edge.config import cli as config_cli

MINIMAL: dict[str, Any] = {
    "version": 1,
    "station": {"site": "plant", "line": "l1", "id": "st1"},
    "camera": {"source": "replay", "replay": {"dir": "replay"}},
    "model": {"artifact_dir": "artifacts", "backends": ["onnxruntime-cpu"]},
    "skus": [{"id": "widget", "golden_dir": "golden/widget"}],
    "storage": {"data_dir": "var/data", "archive_dir": "var/archive"},
}


@pytest.fixture
def minimal() -> dict[str, Any]:
    """A valid config dict (a fresh copy per test)."""
    return copy.deepcopy(MINIMAL)


def write_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"img{i:03d}.png"
        cv2.imwrite(str(path), rng.integers(0, 255, (8, 8), dtype=np.uint8))
        paths.append(path)
    return paths


@pytest.fixture
def bundle(tmp_path: Path, minimal: dict[str, Any]) -> Path:
    """A config file with every folder it names: resolves on this machine. Returns the YAML path."""
    root = tmp_path / "bundle"
    write_images(root / "replay", 2)
    write_images(root / "golden" / "widget", 3)
    (root / "artifacts").mkdir()
    path = root / "station.yaml"
    path.write_text(yaml.safe_dump(minimal), encoding="utf-8")
    return path


CliRunner = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """Run ``edge config ...`` in-process; returns (exit code, stdout, stderr)."""

    def run(*argv: str | Path) -> tuple[int, str, str]:
        parser = argparse.ArgumentParser(prog="edge")
        config_cli.register(parser.add_subparsers(dest="command"))
        args = parser.parse_args([str(a) for a in argv])
        code: int = args.func(args)
        out, err = capsys.readouterr()
        return code, out, err

    return run
