"""``ConfigError``: everything wrong with a config, each problem with its file, YAML path and line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Issue:
    """One problem in a config file.

    Attributes:
        path: YAML path of the offending value, e.g. ``skus[1].golden_dir`` (empty for the whole document).
        message: What is wrong and what was expected.
        line: 1-based line of the offending value (or of its nearest enclosing key), if known.
        column: 1-based column, where known (YAML syntax errors).

    """

    path: str
    message: str
    line: int | None = None
    column: int | None = None

    def format(self, source: str) -> str:
        """``file:line[:column]: path: message`` (the form editors and CI logs make clickable)."""
        where = f"{source}:{self.line}" if self.line is not None else source
        if self.line is not None and self.column is not None:
            where += f":{self.column}"
        return f"{where}: {self.path or '<document>'}: {self.message}"


class ConfigError(Exception):
    """A config file is unreadable, malformed or invalid.

    The message lists every issue, one per line, each naming the file, the line, the YAML path and what was
    expected. It never contains secret values (secrets are references, and literal values given where a
    reference is expected are not echoed).
    """

    def __init__(self, source: str, issues: Sequence[Issue], summary: str = "invalid station config") -> None:
        self.source = source
        self.issues = tuple(issues)
        self.summary = summary
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.issues)
        head = f"{self.source}: {self.summary} ({count} problem{'s' if count != 1 else ''})"
        return "\n".join([head, *("  " + issue.format(self.source) for issue in self.issues)])


def format_path(loc: Sequence[str | int]) -> str:
    """``("skus", 1, "golden_dir")`` -> ``skus[1].golden_dir``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
