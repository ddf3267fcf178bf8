"""``edge enroll`` writes the frames that pass the checks into the SKU's golden folder (folder or camera)."""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import pytest
import yaml

from edge.capture import simulated_cti
from edge.cli import main
from enroll.test_checks import _part

CONFIG = {
    "version": 1,
    "station": {"site": "plant", "line": "l1", "id": "st1"},
    "camera": {"source": "replay", "replay": {"dir": "replay"}},
    "model": {"artifact_dir": "artifacts", "backends": ["onnxruntime-cpu"]},
    "skus": [{"id": "widget", "golden_dir": "golden/widget"}],
    "storage": {"data_dir": "var/data", "archive_dir": "var/archive"},
}


def _config(folder: Path, **camera: object) -> Path:
    data = copy.deepcopy(CONFIG)
    if camera:
        data["camera"] = camera
    (folder / "artifacts").mkdir(parents=True, exist_ok=True)
    path = folder / "station.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_enroll_from_a_folder_keeps_good_parts_and_says_why_others_were_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    for i in range(6):
        cv2.imwrite(str(shots / f"part{i}.png"), _part(i))
    cv2.imwrite(str(shots / "part9-blurred.png"), cv2.GaussianBlur(_part(9), (0, 0), 3))
    config = _config(tmp_path)
    assert main(["enroll", str(config), "--sku", "widget", "--from-folder", str(shots)]) == 0
    out = capsys.readouterr().out
    assert "6 of 7 frames kept" in out and "dropped part9-blurred" in out and "blurred" in out
    written = sorted((tmp_path / "golden" / "widget").glob("*.png"))
    assert len(written) == 6 and all(p.name.startswith("widget-") for p in written)
    # A second run adds, never overwrites.
    assert main(["enroll", str(config), "--sku", "widget", "--from-folder", str(shots)]) == 0
    assert len(list((tmp_path / "golden" / "widget").glob("*.png"))) == 12


def test_an_unknown_sku_and_a_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    assert main(["enroll", str(config), "--sku", "gadget", "--from-folder", str(tmp_path)]) == 2
    assert "SKU 'gadget' is not in" in capsys.readouterr().err
    shots = tmp_path / "shots"
    shots.mkdir()
    for i in range(3):
        cv2.imwrite(str(shots / f"p{i}.png"), _part(i))
    assert main(["enroll", str(config), "--sku", "widget", "--from-folder", str(shots), "--dry-run"]) == 0
    assert "dry run: nothing written" in capsys.readouterr().out
    assert not (tmp_path / "golden").exists()


def test_enroll_from_the_simulated_genicam_camera(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(
        tmp_path, source="genicam", cti=str(simulated_cti()), pixel_format="Mono8", device={"serial": "0"}
    )
    code = main(["enroll", str(config), "--sku", "widget", "--frames", "3", "--interval", "0.2"])
    captured = capsys.readouterr()
    out = captured.out
    assert "frames kept" in out, captured.err
    assert code in (0, 1)  # the simulator may show the same scene twice: then it is a duplicate, said so
    written = list((tmp_path / "golden" / "widget").glob("*.png"))
    assert written, out
    assert cv2.imread(str(written[0])) is not None
