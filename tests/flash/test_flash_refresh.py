"""``edge flash refresh`` (post-update hook): re-export and re-flash when an update changed the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import edge.model.spec as model_module
from edge.artifacts.manifest import load_manifest
from edge.flash.active import ActiveConfig, load_active_config
from edge.flash.flash import FlashOptions, flash
from edge.flash.refresh import refresh
from edge.model.spec import ModelSpec, spec_model_id
from edge.synthetic.parts import write_sku
from export.onnx_export import export_onnx
from flash.test_flash_real_banks import SIZE, make_config


def active(root: Path) -> ActiveConfig:
    state = load_active_config(root)
    assert isinstance(state, ActiveConfig), state
    return state


@pytest.mark.slow
def test_refresh_reexports_and_reflashes_only_when_the_model_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sku_dir = write_sku(tmp_path / "synthetic", n_golden=4, n_good=0, n_per_defect=1, size=128, seed=3)
    bundle = tmp_path / "bundle"
    config = make_config(bundle, sku_dir)
    export_onnx(ModelSpec(input_size=SIZE), bundle / "artifacts")
    root = tmp_path / "station"
    first = flash(config, FlashOptions(root=root))
    assert first.ok, first.reason

    nothing = refresh(root)
    assert nothing.result == "unchanged" and nothing.ok
    assert active(root).slot == first.slot

    # An update that changes the encoders' code changes the model id: old artifacts and banks are stale.
    monkeypatch.setattr(model_module, "graph_code_sha256", lambda: "f" * 64)
    updated = spec_model_id(ModelSpec(input_size=SIZE))
    assert updated != active(root).manifest["model_id"]
    result = refresh(root, by="updater")
    assert result.result == "committed", result.reason
    state = active(root)
    assert state.slot != first.slot and state.config_hash == first.config_hash
    assert state.manifest["model_id"] == updated
    assert load_manifest(bundle / "artifacts").model_id == updated
    copies = sorted(bundle.glob("station.rev-*.yaml"))
    assert len(copies) == 1 and copies[0].read_bytes() == config.read_bytes()
    last = json.loads((root / "journal.jsonl").read_text().splitlines()[-1])
    assert last["result"] == "committed" and last["by"] == "post-update:updater"

    assert refresh(root).result == "unchanged"
