from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import pytest

from edge.capture import cli


def run(argv: list[str]) -> int:
    # Only this command group: the full `edge` parser imports every other group too.
    parser = argparse.ArgumentParser(prog="edge")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


@pytest.mark.camera
def test_devices_lists_the_simulated_cameras(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["capture", "devices"]) == 0
    out = capsys.readouterr().out
    assert "viky.cti" in out and "id='VikyTL_DEV_red'" in out and "serial='2'" in out


@pytest.mark.camera
def test_grab_saves_converted_frames(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["capture", "grab", "--pixel-format", "Mono8", "--count", "2", "--out", str(tmp_path)]) == 0
    files = sorted(tmp_path.glob("*.png"))
    assert [f.name for f in files] == ["frame_0000.png", "frame_0001.png"]
    image = cv2.imread(str(files[0]))
    assert image is not None and image.shape == (400, 400, 3)
    assert "frames=2" in capsys.readouterr().out


def test_bad_producer_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["capture", "devices", "--cti", str(tmp_path / "nope.cti")]) == 2
    assert "nope.cti does not exist" in capsys.readouterr().out
