"""The station runs on Python 3.10 (JetPack 6's system Python) as well as 3.11+.

mypy (``python_version = "3.10"`` in pyproject.toml, ``make lint``) catches names that 3.10's standard
library lacks (``typing.Self``, ``enum.StrEnum``, ``datetime.UTC``); this test compiles every module with a
real 3.10 interpreter, which catches syntax that only 3.11+ parses (``except*``, starred subscripts).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Compiles every file it is given in memory (nothing written next to the sources).
COMPILE_ALL = """
import sys
bad = []
for path in sys.argv[1:]:
    try:
        compile(open(path, encoding="utf-8").read(), path, "exec")
    except SyntaxError as exc:
        bad.append(f"{path}:{exc.lineno}: {exc.msg}")
print("\\n".join(bad))
sys.exit(1 if bad else 0)
"""


def python310() -> str | None:
    """A working Python 3.10 interpreter on this machine (pyenv's, then PATH), or None.

    pyenv puts shims on PATH that exist but refuse to run a version that is not selected: each candidate
    is tried.
    """
    pyenv = Path.home() / ".pyenv" / "versions"
    candidates = [str(p) for p in sorted(pyenv.glob("3.10.*/bin/python3.10"))] if pyenv.is_dir() else []
    candidates += [found] if (found := shutil.which("python3.10")) else []
    for candidate in candidates:
        ran = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True
        )
        if ran.returncode == 0 and ran.stdout.strip() == b"(3, 10)":
            return candidate
    return None


def sources() -> list[str]:
    return sorted(
        str(p)
        for folder in ("edge", "export", "firmware_hooks")
        for p in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in p.parts
    )


def test_every_station_module_compiles_under_python_310() -> None:
    interpreter = python310()
    if interpreter is None:
        pytest.skip("no Python 3.10 interpreter on this machine")
    files = sources()
    assert len(files) > 100
    done = subprocess.run([interpreter, "-c", COMPILE_ALL, *files], capture_output=True, text=True)
    assert done.returncode == 0, f"not Python 3.10 syntax:\n{done.stdout}{done.stderr}"


def test_the_check_fails_on_311_only_syntax(tmp_path: Path) -> None:
    interpreter = python310()
    if interpreter is None:
        pytest.skip("no Python 3.10 interpreter on this machine")
    probe = tmp_path / "probe.py"
    probe.write_text("try:\n    pass\nexcept* ValueError:\n    pass\n", encoding="utf-8")
    done = subprocess.run([interpreter, "-c", COMPILE_ALL, str(probe)], capture_output=True, text=True)
    assert done.returncode == 1 and "probe.py:3" in done.stdout
