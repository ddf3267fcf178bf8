"""Read a station config from YAML into a validated :class:`StationConfig`, or fail with a located error.

The document is parsed once into PyYAML's node tree; the tree gives the line of every key, which is how an
error on ``skus[1].golden_dir`` can point at line 23. Loading is pure: the YAML file is the only file read.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from edge.config.errors import ConfigError, Issue, format_path
from edge.config.migrations import MigrationError, migrate
from edge.config.root import StationConfig

MAX_CONFIG_BYTES = 1_000_000
"""A station config is a few kB; anything this large is a mistake (or an attack on the parser)."""

MAX_NODES = 100_000

Loc = tuple[str | int, ...]


@dataclass
class LineMap:
    """YAML path -> 1-based line, built from the composed node tree."""

    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """Return the line of ``loc`` or of its nearest ancestor in the document (missing key: its parent)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None


@dataclass(frozen=True)
class LoadedDocument:
    """A parsed, migrated (not yet validated) config document."""

    data: dict[str, Any]
    lines: LineMap
    migrated_from: tuple[int, ...]


def load_config(path: str | Path) -> StationConfig:
    """Read, migrate and validate the station config at ``path``.

    Args:
        path: A YAML file.

    Returns:
        The validated config (secrets still references, paths unchecked: see ``resolve_config``).

    Raises:
        ConfigError: The file cannot be read, is not YAML, or does not validate; the message names the file,
            each offending YAML path with its line, and what was expected.

    """
    return validate_document(read_document(path), source=str(path))


def read_document(path: str | Path) -> LoadedDocument:
    """Read and parse (not validate) a config file; see :func:`parse_document`."""
    source = str(path)
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            source, [Issue("", f"cannot read file: {exc.strerror or type(exc).__name__}")]
        ) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(source, [Issue("", f"file is larger than {MAX_CONFIG_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [Issue("", f"not UTF-8 text (byte {exc.start})")]) from None
    return parse_document(text, source=source)


def parse_config(text: str, *, source: str = "<string>") -> StationConfig:
    """Validate config YAML given as text; ``source`` names it in errors. See :func:`load_config`."""
    document = parse_document(text, source=source)
    return validate_document(document, source=source)


def validate_document(document: LoadedDocument, *, source: str) -> StationConfig:
    """Validate a parsed document, mapping pydantic errors to located :class:`Issue` s."""
    try:
        return StationConfig.model_validate(document.data)
    except ValidationError as exc:
        issues = sorted(
            (_issue(err, document.lines) for err in exc.errors(include_url=False)),
            key=lambda issue: issue.line or 0,
        )
        raise ConfigError(source, issues) from None
    except RecursionError:
        raise ConfigError(source, [Issue("", "document is nested too deeply")]) from None


def parse_document(text: str, *, source: str = "<string>") -> LoadedDocument:
    """Parse YAML text into a migrated plain dict plus the line of every key.

    Raises:
        ConfigError: Not YAML, not a single mapping, duplicate keys, unsupported version.

    """
    if "\x00" in text:
        raise ConfigError(source, [Issue("", "contains NUL characters: not a YAML text file")])
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(
                source, [Issue("", "the file is empty; expected a mapping with version, station, ...")]
            )
        lines, issues = _index(node)
        if issues:
            raise ConfigError(source, issues)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(source, [_yaml_issue(exc)]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            source, [Issue("", f"not valid YAML: unacceptable character #x{exc.character:04x}", line)]
        ) from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        # PyYAML raises plain ValueError/OverflowError for e.g. impossible timestamps ("2024-13-45").
        raise ConfigError(source, [Issue("", f"not valid YAML: {type(exc).__name__}: {exc}"[:300])]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(
            source,
            [Issue("", f"expected a mapping with version, station, ... at the top, got {_kind(data)}", 1)],
        )
    try:
        migrated, applied = migrate(data)
    except MigrationError as exc:
        raise ConfigError(source, [Issue("version", str(exc), lines.line_of(("version",)) or 1)]) from None
    return LoadedDocument(migrated, lines, tuple(applied))


#: What a PyYAML complaint usually means, in the words of the person who typed the file.
_YAML_HINTS: tuple[tuple[str, str], ...] = (
    ("scanning a quoted scalar", "a quoted value is never closed (a missing \" or ')"),
    ("found character '\\t'", "a tab: YAML indents with spaces only"),
    ("expected <block end>", "the indentation does not line up with the lines above"),
    (
        "mapping values are not allowed here",
        "a ':' where a value was expected: a line indented deeper than the one above, or a value that "
        "contains ': ' and needs quotes",
    ),
    ("could not find expected ':'", "a key without ':' or a value continued on the next line"),
    ("found undefined alias", "a '*' value that names no '&' anchor (quote values that start with '*')"),
)


def _yaml_issue(exc: yaml.MarkedYAMLError) -> Issue:
    """Locate a YAML syntax error where the engineer must look, with line and column.

    PyYAML marks where it gave up (``problem_mark``) and where the construct it was reading began
    (``context_mark``). When it ran off the end of the file (an unclosed quote or bracket), where it gave up
    is the last line, far from the mistake: then the start is the place to look.
    """
    problem, context = exc.problem_mark, exc.context_mark
    ran_off = "end of stream" in (exc.problem or "") and context is not None
    mark = context if ran_off else (problem or context)
    text = " ".join(p for p in (exc.context, exc.problem) if p) or "malformed YAML"
    hint = next((h for key, h in _YAML_HINTS if key in text), None)
    message = f"not valid YAML: {hint} ({text})" if hint else f"not valid YAML: {text}"
    if ran_off and problem is not None:
        message += f"; it starts here and is still open at line {problem.line + 1}"
    if mark is None:
        return Issue("", message)
    return Issue("", message, mark.line + 1, mark.column + 1)


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def _index(root: yaml.Node) -> tuple[LineMap, list[Issue]]:
    """Walk the node tree once: record each path's line, report duplicate keys and recursive aliases."""
    lines = LineMap()
    issues: list[Issue] = []
    visited: set[int] = set()
    stack: list[tuple[yaml.Node, Loc, frozenset[int]]] = [(root, (), frozenset())]
    count = 0
    while stack:
        node, loc, ancestors = stack.pop()
        count += 1
        if count > MAX_NODES:
            issues.append(Issue("", f"document has more than {MAX_NODES} nodes"))
            break
        if id(node) in ancestors:
            issues.append(Issue(format_path(loc), "recursive YAML alias", node.start_mark.line + 1))
            continue
        if id(node) in visited:
            continue  # reached again through an alias: its lines are recorded at its first place
        visited.add(id(node))
        lines.lines.setdefault(loc, node.start_mark.line + 1)
        inner = ancestors | {id(node)}
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    stack.append((value_node, loc, inner))
                    continue
                key = key_node.value
                key_line = key_node.start_mark.line + 1
                if key in seen:
                    issues.append(
                        Issue(
                            format_path((*loc, key)), f"duplicate key (first on line {seen[key]})", key_line
                        )
                    )
                    continue
                seen[key] = key_line
                key_loc = (*loc, key)  # not in the subscript: that syntax is Python 3.11+
                lines.lines[key_loc] = key_line
                stack.append((value_node, key_loc, inner))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*loc, i), inner) for i, item in enumerate(node.value))
    return lines, issues


def _issue(err: ErrorDetails, lines: LineMap) -> Issue:
    loc: Loc = tuple(err["loc"])
    ctx = err.get("ctx") or {}
    at = ctx.get("at")
    if isinstance(at, list):
        loc = (*loc, *at)
    message = _message(err)
    if err["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
        close = difflib.get_close_matches(loc[-1], sorted(allowed_keys(loc[:-1])), n=1, cutoff=0.6)
        if close:
            message = f"unknown key: did you mean '{close[0]}'?"
    return Issue(format_path(loc), message, lines.line_of(loc))


def allowed_keys(loc: Loc) -> set[str]:
    """The keys a config section at YAML path ``loc`` accepts (empty when the path leads to no section)."""
    models: list[type[BaseModel]] = [StationConfig]
    for part in loc:
        if isinstance(part, int):
            continue  # list items: _models_in already looked inside list[...]
        following = [
            inner
            for model in models
            if part in model.model_fields
            for inner in _models_in(model.model_fields[part].annotation)
        ]
        if following:
            models = following
        # else: a union tag pydantic puts in the path (e.g. the camera source): stay on these models
    return {name for model in models for name in model.model_fields}


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """Config models an annotation can hold (through Optional, unions, Annotated, lists and dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _message(err: ErrorDetails) -> str:
    kind = err["type"]
    msg = err["msg"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown key (misspelt, or not valid in this section)"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return _expected(msg, kind)


def _expected(msg: str, kind: str) -> str:
    # pydantic says "Input should be ..."; line engineers read "expected ..." more easily.
    if msg.startswith("Input should be "):
        return "expected " + msg[len("Input should be ") :]
    return msg


def iter_issue_paths(error: ConfigError) -> Iterable[str]:
    """YAML paths named by ``error`` (handy for tests and tooling)."""
    return (issue.path for issue in error.issues)
