from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "capture.md"


@pytest.mark.camera
def test_the_example_in_docs_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert blocks, f"no python example in {DOC}"
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})
