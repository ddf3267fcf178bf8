from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from edge.config import ConfigError, default_allowed_roots, load_config, resolve_config
from edge.config.resolve import AllowedRoots, ResolvedConfig, load_and_resolve

VIKY = Path(str(__import__("genicam").__file__)).parent / "viky.cti"


def resolve(path: Path, env: dict[str, str] | None = None) -> ResolvedConfig:
    return load_and_resolve(path, roots=default_allowed_roots(path), env=env or {})


def rewrite(path: Path, **sections: object) -> None:
    data = yaml.safe_load(path.read_text())
    data.update(sections)
    path.write_text(yaml.safe_dump(data))


def issues_of(path: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        resolve(path, env)
    return {i.path: i.message for i in info.value.issues}


def test_bundle_resolves_to_absolute_paths_and_images(bundle: Path) -> None:
    resolved = resolve(bundle)
    root = bundle.parent.resolve()
    assert resolved.paths["skus[0].golden_dir"] == root / "golden" / "widget"
    assert [p.name for p in resolved.golden_images["widget"]] == ["img000.png", "img001.png", "img002.png"]


def test_missing_folders_are_reported_with_line(bundle: Path) -> None:
    rewrite(bundle, skus=[{"id": "widget", "golden_dir": "golden/nope"}])
    with pytest.raises(ConfigError) as info:
        resolve(bundle)
    issue = info.value.issues[0]
    assert issue.path == "skus[0].golden_dir" and issue.line is not None
    assert "expected an existing folder" in issue.message


def test_too_few_golden_images(bundle: Path) -> None:
    for image in sorted((bundle.parent / "golden" / "widget").iterdir())[1:]:
        image.unlink()
    assert "at least 2 images" in issues_of(bundle)["skus[0].golden_dir"]


def test_absolute_path_outside_the_roots_is_rejected(bundle: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    rewrite(bundle, model={"artifact_dir": str(outside)})
    assert "outside the allowed roots" in issues_of(bundle)["model.artifact_dir"]


def test_symlink_escaping_the_roots_is_rejected(bundle: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret-stuff"
    outside.mkdir()
    (bundle.parent / "golden" / "evil").symlink_to(outside)
    rewrite(bundle, skus=[{"id": "widget", "golden_dir": "golden/evil"}])
    assert "outside the allowed roots" in issues_of(bundle)["skus[0].golden_dir"]


def test_symlinked_image_escaping_the_roots_is_rejected(bundle: Path, tmp_path: Path) -> None:
    stolen = tmp_path / "stolen.png"
    stolen.write_bytes(b"x")
    (bundle.parent / "golden" / "widget" / "zz.png").symlink_to(stolen)
    assert "symlinked images" in issues_of(bundle)["skus[0].golden_dir"]


def test_env_and_file_secrets_resolve_and_never_print(bundle: Path) -> None:
    (bundle.parent / "pw").write_text("s3cr3t-file\n")
    rewrite(bundle, mqtt={"username": "u", "password": {"file": "pw"}})
    resolved = resolve(bundle)
    secret = resolved.secrets["mqtt.password"]
    assert secret.get_secret_value() == "s3cr3t-file"
    assert "s3cr3t" not in repr(resolved) and "s3cr3t" not in str(secret)
    rewrite(bundle, mqtt={"username": "u", "password": {"env": "EDGE_TEST_PW"}})
    assert (
        resolve(bundle, {"EDGE_TEST_PW": "from-env"}).secrets["mqtt.password"].get_secret_value()
        == "from-env"
    )
    assert "EDGE_TEST_PW is not set" in issues_of(bundle)["mqtt.password"]


def test_secret_file_outside_the_roots_is_not_read(bundle: Path) -> None:
    rewrite(bundle, mqtt={"username": "u", "password": {"file": "/etc/passwd"}})
    message = issues_of(bundle)["mqtt.password"]
    assert "outside the allowed roots" in message
    assert "root:" not in message


def test_real_genicam_producer_loads(bundle: Path) -> None:
    rewrite(bundle, camera={"source": "genicam", "cti": str(VIKY)})
    resolve(bundle)


def test_a_file_that_is_not_a_producer_is_rejected(bundle: Path, tmp_path: Path) -> None:
    fake = tmp_path / "opt" / "fake.cti"
    fake.parent.mkdir()
    fake.write_text("not a library")
    roots = default_allowed_roots(bundle)
    roots = AllowedRoots(roots.data, roots.secrets, (fake.parent,))
    rewrite(bundle, camera={"source": "genicam", "cti": str(fake)})
    with pytest.raises(ConfigError, match="does not load"):
        resolve_config(load_config(bundle), source=bundle, roots=roots)


def test_extra_roots_from_the_environment(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared-artifacts"
    shared.mkdir()
    rewrite(bundle, model={"artifact_dir": str(shared)})
    monkeypatch.setenv("EDGE_ALLOWED_ROOTS", os.pathsep.join([str(shared)]))
    assert resolve(bundle).paths["model.artifact_dir"] == shared.resolve()
