"""Helpers for flash tests: a resolvable config bundle, a station root, hook folders, a bank stand-in.

The bank stand-in is fault injection for the flash state machine only (it lets a test make the bank step pass
or fail on demand); the real inspection core is exercised in test_flash_real_banks.py.
"""

from __future__ import annotations

import copy
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from edge.config.resolve import ResolvedConfig
from edge.golden.banks import BankReport, SkuReport

CONFIG: dict[str, Any] = {
    "version": 1,
    "station": {"site": "plant", "line": "l1", "id": "st1"},
    "camera": {"source": "replay", "replay": {"dir": "replay"}},
    "model": {"artifact_dir": "artifacts", "backends": ["onnxruntime-cpu"]},
    "skus": [{"id": "widget", "golden_dir": "golden/widget"}],
    "storage": {"data_dir": "var/data", "archive_dir": "var/archive"},
}


def write_images(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        cv2.imwrite(str(folder / f"img{i:03d}.png"), rng.integers(0, 255, (8, 8), dtype=np.uint8))


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A config with every folder it names (resolvable); returns the YAML path."""
    root = tmp_path / "bundle"
    write_images(root / "replay", 1)
    write_images(root / "golden" / "widget", 2)
    (root / "artifacts").mkdir()
    path = root / "station.yaml"
    path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    return path


def variant(bundle: Path, name: str, **changes: Any) -> Path:
    """A sibling config of ``bundle`` with top-level sections replaced/updated."""
    data = copy.deepcopy(CONFIG)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    path = bundle.with_name(name)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "station"


Builder = Callable[[ResolvedConfig, Path, Path], BankReport]


def standin_builder(problem: str | None = None, calls: list[str] | None = None) -> Builder:
    """Fault-injection bank builder: writes a small bank file per SKU, optionally fails the self-test."""

    def build(config: ResolvedConfig, artifact_dir: Path, out_dir: Path) -> BankReport:
        report = BankReport(model_id="standin")
        for sku in config.config.skus:
            (out_dir / sku.id).mkdir(parents=True)
            (out_dir / sku.id / "bank.json").write_text(json.dumps({"sku": sku.id}))
            report.skus.append(
                SkuReport(sku.id, len(config.golden_images[sku.id]), problems=[problem] if problem else [])
            )
            if calls is not None:
                calls.append(sku.id)
        return report

    return build


@pytest.fixture
def hooks(tmp_path: Path) -> Callable[[str, str, str], Path]:
    """``hooks(event, name, shell body)`` writes an executable hook; returns the hooks folder."""
    folder = tmp_path / "hooks"

    def add(event: str, name: str, body: str) -> Path:
        path = folder / f"{event}.d" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
        path.chmod(0o755)
        return folder

    folder.mkdir()
    return add
