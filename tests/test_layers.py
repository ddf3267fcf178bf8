"""The direction of imports between packages: every import counts, also one inside a function.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``): packages import only downwards through the
layers listed there, and the station (``edge.runtime``, which ``edge run`` enters) has no import path to the
export toolchain. import-linter (on grimp's graph of every import statement, wherever it stands) checks
them; the second test asks grimp directly for the run path, so a break names the chain that climbs back.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("edge", "export", cache_dir=None)


def test_import_contracts_hold(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    code = lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True)
    assert code == 0, capsys.readouterr().out


def test_edge_run_has_no_import_path_to_export(graph: grimp.ImportGraph) -> None:
    # `edge run` is edge.cli -> edge.runtime.cli -> edge.runtime.app: the whole station package, not only
    # the command, must stay clear of export/ (the run path loads artifacts; it never builds them).
    for importer in ("edge.runtime.cli", "edge.runtime"):
        chains = graph.find_shortest_chains(importer=importer, imported="export", as_packages=True)
        assert not chains, f"{importer} reaches export/: " + "; ".join(" -> ".join(c) for c in sorted(chains))


def test_imports_inside_functions_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The checks above can fail: an import hidden in a function body is an edge of the graph like any other.
    package = tmp_path / "layered"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("")
    (package / "high.py").write_text("")
    (package / "low" / "core.py").write_text("def f() -> None:\n    from layered import high  # hidden\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("layered", cache_dir=None)
    assert graph.find_shortest_chain(importer="layered.low.core", imported="layered.high") == (
        "layered.low.core",
        "layered.high",
    )
