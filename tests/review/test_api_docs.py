"""The curl examples of docs/api.md, run as written against a live review service."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from review.conftest import Ui, api_token

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def examples() -> str:
    text = DOC.read_text(encoding="utf-8").split("## Examples", 1)[1]
    found = re.search(r"```sh\n(.*?)```", text, re.S)
    assert found, "docs/api.md lost its shell examples"
    return found.group(1)


def test_the_documented_curl_examples_work(ui: Ui, tmp_path: Path) -> None:
    if shutil.which("curl") is None or shutil.which("jq") is None:
        pytest.skip("curl and jq are needed: run `bash scripts/install-system-deps.sh`")
    env = {**os.environ, "STATION": ui.url, "TOKEN": api_token(ui, "mes", "operator")}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", examples()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert (tmp_path / "frame.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "heatmap.jpg").read_bytes().startswith(b"\xff\xd8")
    assert '"where":"query.limit"' in done.stdout
    assert any(p.user == "token:mes" for p in ui.published)  # type: ignore[attr-defined]
