from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "station_configs"
Cli = Callable[..., tuple[int, str, str]]


def test_validate_examples_and_a_broken_file(run_cli: Cli, tmp_path: Path) -> None:
    code, out, _ = run_cli("config", "validate", *sorted(EXAMPLES.glob("*.yaml")))
    assert code == 0 and out.count(": ok") == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nstation: {site: a, line: b, id: c}\ncamera: {source: webcam}\nskus: []\n")
    code, _, err = run_cli("config", "validate", bad)
    assert code == 1
    assert f"{bad}:3: camera.source: expected 'genicam' or 'replay'" in err
    assert f"{bad}:4: skus:" in err


def test_schema_prints_json(run_cli: Cli, tmp_path: Path) -> None:
    code, out, _ = run_cli("config", "schema")
    assert code == 0 and json.loads(out)["title"] == "Edge inspection station config"
    code, _, _ = run_cli("config", "schema", "--out", tmp_path / "s.json")
    assert json.loads((tmp_path / "s.json").read_text()) == json.loads(out)


def test_show_masks_secrets_and_resolves_paths(run_cli: Cli, bundle: Path, monkeypatch: object) -> None:
    data = yaml.safe_load(bundle.read_text())
    data["mqtt"] = {"username": "u", "password": {"file": "pw"}}
    bundle.write_text(yaml.safe_dump(data))
    (bundle.parent / "pw").write_text("correct-horse-battery\n")
    code, out, err = run_cli("config", "show", bundle)
    assert code == 0, err
    shown = yaml.safe_load(out)
    assert shown["mqtt"]["password"] == "***"
    assert shown["skus"][0]["golden_dir"] == str((bundle.parent / "golden" / "widget").resolve())
    assert shown["mqtt"]["topic_root"] == "plant/l1/st1"
    assert "correct-horse" not in out + err


def test_show_explains_what_does_not_resolve(run_cli: Cli, bundle: Path) -> None:
    data = yaml.safe_load(bundle.read_text())
    data["mqtt"] = {"username": "u", "password": {"env": "EDGE_TEST_UNSET_PW"}}
    bundle.write_text(yaml.safe_dump(data))
    code, _, err = run_cli("config", "show", bundle)
    assert code == 1
    assert "mqtt.password: environment variable EDGE_TEST_UNSET_PW is not set" in err


def test_diff(run_cli: Cli, tmp_path: Path) -> None:
    a = yaml.safe_load((EXAMPLES / "demo.yaml").read_text())
    b = yaml.safe_load((EXAMPLES / "demo.yaml").read_text())
    b["skus"][0]["top_k"] = 5
    b["skus"].insert(0, {"id": "gizmo", "golden_dir": "g"})
    b["camera"]["trigger"] = {"mode": "software"}
    pa, pb = tmp_path / "a.yaml", tmp_path / "b.yaml"
    pa.write_text(yaml.safe_dump(a))
    pb.write_text(yaml.safe_dump(b))
    code, out, _ = run_cli("config", "diff", pa, pa)
    assert code == 0 and out == ""
    code, out, _ = run_cli("config", "diff", pa, pb)
    assert code == 1
    lines = out.splitlines()
    assert "~ skus[widget].top_k: 3 -> 5" in lines
    assert '~ camera.trigger.mode: "free_run" -> "software"' in lines
    assert '+ skus[gizmo].golden_dir: "g"' in lines
    assert not any("skus[widget].id" in line for line in lines)  # reordering is not a change
