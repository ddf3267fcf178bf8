from __future__ import annotations

import logging

import pytest

from edge.golden.progress import StepProgress


def test_each_finished_step_is_logged_with_its_size_and_duration(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.golden.progress")
    with StepProgress("widget", enabled=False) as progress:
        for done in range(4):
            progress("encoding golden images", done, 3)
        progress("synthetic defects", 0, 30)
        progress("synthetic defects", 30, 30)
    assert [(step, total) for step, total, _ in progress.finished] == [
        ("encoding golden images", 3),
        ("synthetic defects", 30),
    ]
    assert all(seconds >= 0 for _, _, seconds in progress.finished)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("SKU widget: encoding golden images (3) in ")
    assert lines[1].startswith("SKU widget: synthetic defects (30) in ")


def test_the_last_step_is_closed_when_the_build_fails(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError), StepProgress("widget", enabled=True) as progress:
        progress("synthetic defects", 3, 30)
        raise RuntimeError("a golden image could not be read")
    assert progress.finished[0][:2] == ("synthetic defects", 30) and progress.bar is None
    assert "widget: synthetic defects" in capsys.readouterr().err  # the bar was drawn on stderr
