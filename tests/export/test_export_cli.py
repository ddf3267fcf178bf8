from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pytest
from engines.artifact_set import copy_set

from edge.artifacts.fingerprint import gpu_unavailable_reason
from edge.artifacts.names import onnx_file
from export import cli


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="edge")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", *argv])
    code: int = args.func(args)
    return code


def test_edge_cli_lists_the_export_command() -> None:
    from edge.cli import COMMAND_MODULES

    assert "export.cli" in COMMAND_MODULES


def test_verify_accepts_a_good_set_and_refuses_a_tampered_one(
    artifacts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    assert _run("verify", str(artifacts)) == 0
    assert onnx_file("vision", "int8") in json.loads(capsys.readouterr().out)["files"]
    directory = copy_set(artifacts, tmp_path / "set")
    (directory / onnx_file("vision", "fp16")).write_bytes(b"swapped")
    with caplog.at_level(logging.ERROR):
        assert _run("verify", str(directory)) == 2
    assert "vision_encoder.fp16.onnx: SHA-256" in caplog.text


def test_int8_without_calibration_images_is_a_usage_error(
    artifacts: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = copy_set(artifacts, tmp_path / "set")
    with caplog.at_level(logging.ERROR):
        assert _run("int8", "--out", str(directory), "--input-size", "128", "128") == 2
    assert "--calib DIR" in caplog.text
    with caplog.at_level(logging.ERROR):
        code = _run(
            "int8", "--out", str(directory), "--input-size", "128", "128", "--calib", str(tmp_path / "no")
        )
    assert code == 2 and "does not exist" in caplog.text


def test_engines_on_a_machine_without_gpu(artifacts: Path, caplog: pytest.LogCaptureFixture) -> None:
    if gpu_unavailable_reason() is None:
        pytest.skip("this machine has a GPU")
    # The post-update hook on a CPU-only station: nothing to rebuild is success, unless a GPU is required.
    with caplog.at_level(logging.WARNING):
        assert _run("engines", str(artifacts), "--if-stale") == 0
    assert "no TensorRT engines built" in caplog.text
    assert _run("engines", str(artifacts), "--if-stale", "--require-gpu") == 3


def test_fingerprint_without_gpu_reports_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    if gpu_unavailable_reason() is None:
        pytest.skip("this machine has a GPU")
    assert _run("fingerprint") == 3
    out = json.loads(capsys.readouterr().out)
    assert out["gpu"] is None and out["reason"]
