from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import ConfigError, load_config, parse_config

GOOD = """\
version: 1
station:
  site: plant
  line: l1
  id: st1
camera:
  source: replay
  replay:
    dir: replay
skus:
  - id: a
    golden_dir: golden/a
  - id: b
    golden_dir: golden/b
    top_k: many
"""


def test_error_names_file_path_line_and_expectation(tmp_path: Path) -> None:
    path = tmp_path / "station.yaml"
    path.write_text(GOOD)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert len(err.issues) == 1
    issue = err.issues[0]
    assert (issue.path, issue.line) == ("skus[1].top_k", 15)
    assert f"{path}:15: skus[1].top_k: expected a valid integer" in str(err)


def test_missing_field_points_at_its_parent() -> None:
    text = GOOD.replace("    golden_dir: golden/b\n", "").replace("    top_k: many\n", "")
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="s.yaml")
    issue = info.value.issues[0]
    assert issue.path == "skus[1].golden_dir"
    assert issue.line == 13  # the list item that lacks it
    assert "required field is missing" in issue.message


def test_yaml_syntax_error_has_a_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("version: 1\nstation:\n  site: [unclosed\n", source="bad.yaml")
    assert info.value.issues[0].line is not None
    assert "not valid YAML" in str(info.value)


def test_an_unclosed_quote_is_reported_where_it_starts_not_at_the_end_of_the_file() -> None:
    text = GOOD.replace("  line: l1\n", '  line: "l1\n')
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="q.yaml")
    issue = info.value.issues[0]
    assert (issue.line, issue.column) == (4, 9)
    assert "a quoted value is never closed" in issue.message
    assert "q.yaml:4:9:" in str(info.value)


@pytest.mark.parametrize(("indent", "words"), [(" ", "indentation"), ("   ", "indented deeper")])
def test_bad_indentation_is_reported_on_its_line_with_a_column(indent: str, words: str) -> None:
    text = GOOD.replace("  line: l1\n", f"{indent}line: l1\n")
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="i.yaml")
    issue = info.value.issues[0]
    assert issue.line == 4 and issue.column is not None
    assert words in issue.message


@pytest.mark.parametrize(
    ("old", "new", "path", "suggestion"),
    [
        ("    top_k: many\n", "    topk: 2\n", "skus[1].topk", "top_k"),
        ("  line: l1\n", "  lin: l1\n", "station.lin", "line"),
    ],
)
def test_a_misspelt_key_gets_a_did_you_mean(old: str, new: str, path: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(GOOD.replace(old, new), source="k.yaml")
    issue = next(i for i in info.value.issues if i.path == path)
    assert issue.message == f"unknown key: did you mean '{suggestion}'?"


def test_a_key_like_nothing_gets_no_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(GOOD.replace("  line: l1\n", "  line: l1\n  colour: blue\n"), source="k.yaml")
    issue = next(i for i in info.value.issues if i.path == "station.colour")
    assert "did you mean" not in issue.message and "unknown key" in issue.message


def test_duplicate_keys_are_errors_not_last_wins() -> None:
    text = GOOD.replace("  line: l1\n", "  line: l1\n  line: l2\n")
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="dup.yaml")
    issue = info.value.issues[0]
    assert (issue.path, issue.line) == ("station.line", 5)
    assert "first on line 4" in issue.message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("- a\n- b\n", "expected a mapping"),
        ("station: {}\n", "required: the schema version"),
        ("version: 7\n", "newer than this software"),
        ("version: one\n", "integer schema version"),
        ("a: &x [*x]\n", "recursive YAML alias"),
        ("when: 2024-13-45\n", "not valid YAML"),
        ("a: !!python/object:os.system x\n", "not valid YAML"),
    ],
)
def test_malformed_documents(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_config(text, source="x.yaml")


def test_unreadable_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path / "absent.yaml")
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)


def test_aliases_are_allowed_for_shared_settings() -> None:
    text = GOOD.replace("    top_k: many\n", "    <<: &common {top_k: 5}\n")
    config = parse_config(text, source="alias.yaml")
    assert config.skus[1].top_k == 5


def test_a_comparison_too_large_for_memory_names_the_sku_and_what_to_change() -> None:
    fits = GOOD.replace("top_k: many", "top_k: 3") + "model:\n  input_size: [640, 640]\n"
    assert parse_config(fits, source="s.yaml").skus[1].top_k == 3  # 0.5 GiB
    with pytest.raises(ConfigError) as info:
        parse_config(fits.replace("top_k: 3", "top_k: 8"), source="s.yaml")
    issue = info.value.issues[0]
    assert (issue.path, issue.line) == ("skus[1].top_k", 15)
    assert "top_k 8 at model.input_size 640x640 needs 1.2 GiB" in issue.message
    assert "lower top_k or the input size" in issue.message
