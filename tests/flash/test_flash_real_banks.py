"""build_banks with the real inspection core (PyTorch backend) on a tiny synthetic SKU."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import cv2
import pytest
import yaml

from edge.engines.encoders import Encoders, torch_encoders
from edge.flash.active import ActiveConfig, load_active_config
from edge.flash.flash import FlashOptions, FlashResult, flash
from edge.golden.banks import build_banks
from edge.inspection.bank import SkuBank
from edge.model.spec import ModelSpec
from edge.synthetic.parts import write_sku
from flash.flash_helpers import CONFIG

SIZE = (128, 128)


@pytest.fixture(scope="module")
def encoders() -> Encoders:
    return torch_encoders(ModelSpec(input_size=SIZE))


@pytest.fixture(scope="module")
def sku_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sku(
        tmp_path_factory.mktemp("synthetic"), n_golden=4, n_good=0, n_per_defect=1, size=128, seed=3
    )


def make_config(folder: Path, sku_dir: Path, name: str = "station.yaml", **sku: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "golden").exists():
        shutil.copytree(sku_dir / "train" / "good", folder / "golden")
        shutil.copytree(sku_dir / "test" / "missing_hole", folder / "defects")
        shutil.copytree(sku_dir / "train" / "good", folder / "replay")
        (folder / "artifacts").mkdir()
    data = copy.deepcopy(CONFIG)
    data["model"]["input_size"] = list(SIZE)
    data["skus"] = [{"id": "plate", "golden_dir": "golden", "validation_defects_dir": "defects", **sku}]
    path = folder / name
    path.write_text(yaml.safe_dump(data))
    return path


def run(path: Path, root: Path, encoders: Encoders) -> FlashResult:
    cache = root / "cache" / "banks"

    def builder(resolved: Any, artifact_dir: Path, out_dir: Path) -> Any:
        cache.mkdir(parents=True, exist_ok=True)
        return build_banks(resolved, artifact_dir, out_dir, cache_dir=cache, encoders=encoders)

    return flash(path, FlashOptions(root=root, bank_builder=builder))


@pytest.mark.slow
def test_flash_builds_calibrates_self_tests_and_caches(
    tmp_path: Path, sku_dir: Path, encoders: Encoders
) -> None:
    root = tmp_path / "station"
    config = make_config(tmp_path / "bundle", sku_dir)
    first = run(config, root, encoders)
    assert first.ok, first.reason
    state = load_active_config(root)
    assert isinstance(state, ActiveConfig)
    bank = SkuBank.load(state.banks_dir / "plate", model_id=encoders.model_id)
    assert len(bank) == 4 and bank.calibration is not None
    report = __import__("json").loads((state.slot_dir / "bank_report.json").read_text())
    plate = report["skus"][0]
    assert plate["cached"] is False
    assert plate["warnings"] == []  # four different good parts: part-to-part variation was measured
    assert max(plate["golden_scores"]) <= plate["threshold"] < min(plate["defect_scores"])
    # The engineer is told what the station can see: the choice and every synthetic defect kind.
    (line,) = first.capability
    assert line.startswith("SKU plate: chose ") and "golden false NG" in line
    assert all(kind in line for kind in ("scratch", "spot", "cut_paste", "missing", "colour"))

    second = run(make_config(tmp_path / "bundle", sku_dir, "v2.yaml"), root, encoders)
    assert second.ok and second.slot == "b"
    state = load_active_config(root)
    assert isinstance(state, ActiveConfig)
    assert __import__("json").loads((state.slot_dir / "bank_report.json").read_text())["skus"][0]["cached"]


@pytest.mark.slow
def test_self_test_failure_from_the_real_core_aborts(
    tmp_path: Path, sku_dir: Path, encoders: Encoders
) -> None:
    root = tmp_path / "station"
    config = make_config(tmp_path / "bundle", sku_dir, threshold=1e-6)  # every golden part scores above it
    result = run(config, root, encoders)
    assert result.result == "aborted"
    assert "self-test" in result.reason and "golden image(s) score above the threshold" in result.reason


@pytest.mark.slow
def test_golden_parts_without_peers_flash_with_a_warning(
    tmp_path: Path, sku_dir: Path, encoders: Encoders
) -> None:
    root = tmp_path / "station"
    # (Without validation defects: against so unlike a "peer" the feature comparison tolerates a lot.)
    config = make_config(tmp_path / "bundle", sku_dir, validation_defects_dir=None)
    # Two golden images that do not register onto each other (the second is the first in negative): the
    # golden set shows no part-to-part variation.
    first, second, *rest = sorted((tmp_path / "bundle" / "golden").iterdir())
    for extra in rest:
        extra.unlink()
    image = cv2.imread(str(first))
    assert image is not None
    cv2.imwrite(str(second), cv2.bitwise_not(image))
    result = run(config, root, encoders)
    assert result.ok, result.reason
    state = load_active_config(root)
    assert isinstance(state, ActiveConfig)
    plate = __import__("json").loads((state.slot_dir / "bank_report.json").read_text())["skus"][0]
    assert plate["images"] == 2
    assert any("do not register onto each other" in w for w in plate["warnings"]), plate


def test_a_corrupt_golden_image_is_named_by_its_path_in_plain_words(
    tmp_path: Path, sku_dir: Path, encoders: Encoders
) -> None:
    config = make_config(tmp_path / "bundle", sku_dir)
    corrupt = tmp_path / "bundle" / "golden" / "zz_corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    result = run(config, tmp_path / "station", encoders)
    assert result.result == "aborted"
    assert f"golden image {corrupt}: not a readable image" in result.reason, result.reason
    assert "Error" not in result.reason  # no Python class name for a line engineer to decode
