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
