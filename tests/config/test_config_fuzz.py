"""Property-based fuzzing: any input gives a StationConfig or a located ConfigError, never a traceback."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config import ConfigError, StationConfig, parse_config
from edge.config.errors import format_path

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def paths_of(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            out += paths_of(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += paths_of(value, (*prefix, i))
    return out


def check(text: str) -> StationConfig | ConfigError:
    try:
        return parse_config(text, source="fuzz.yaml")
    except ConfigError as exc:
        assert exc.issues, "a ConfigError must list its problems"
        assert "Traceback" not in str(exc)
        assert str(exc).startswith("fuzz.yaml: ")
        return exc


@FUZZ
@given(data=st.data(), replacement=values, action=st.sampled_from(["replace", "delete", "add"]))
def test_mutated_config_dicts(
    minimal: dict[str, Any], data: st.DataObject, replacement: Any, action: str
) -> None:
    doc = copy.deepcopy(minimal)
    target = data.draw(st.sampled_from(paths_of(doc)))
    parent: Any = doc
    for key in target[:-1]:
        parent = parent[key]
    if action == "replace":
        parent[target[-1]] = replacement
    elif action == "delete":
        del parent[target[-1]]
    elif isinstance(parent, dict):
        key = data.draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in parent))
        parent[key] = replacement
        target = (*target[:-1], key)
    result = check(yaml.safe_dump(doc))
    if isinstance(result, ConfigError):
        # The error names the mutated section (or the field itself), never just "somewhere".
        mutated = format_path(target[:1])
        assert any(issue.path.startswith(mutated) or issue.path == "" for issue in result.issues), (
            str(result),
            target,
        )


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    check(text)


@FUZZ
@given(data=st.data())
def test_corrupted_valid_yaml(minimal: dict[str, Any], data: st.DataObject) -> None:
    text = yaml.safe_dump(minimal, sort_keys=False)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 5))
        insert = data.draw(
            st.sampled_from(["", ":", "-", " ", "\n", "[", "{", "'", "&a", "*a", "!!str", "\t", "#"])
        )
        text = text[:pos] + insert + text[pos + cut :]
    check(text)


@FUZZ
@given(secret=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=6, max_size=30))
def test_literal_secrets_never_echo(minimal: dict[str, Any], secret: str) -> None:
    doc = copy.deepcopy(minimal)
    secret = "Zq9!" + secret  # a real-looking value, never a substring of our own messages
    doc["mqtt"] = {"username": "u", "password": secret}
    result = check(yaml.safe_dump(doc))
    assert isinstance(result, ConfigError)
    assert secret not in str(result)
