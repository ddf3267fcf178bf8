"""API tokens: stored hashed, revocable; made by `edge review token create` and used against a live server."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from edge.review.tokens import PREFIX, TokenError, TokenStore
from review.conftest import Ui

REPO = Path(__file__).resolve().parents[2]


def test_tokens_are_stored_hashed_and_private(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "data" / "review-tokens.json")
    token, entry = store.create("mes", "operator", created_by="erik")
    assert token.startswith(PREFIX) and len(token) > 40
    text = store.path.read_text()
    assert token not in text and entry.sha256 in text
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.verify(token) == entry
    assert store.verify(token + "x") is None and store.verify("Bearer " + token) is None
    assert store.verify(token.removeprefix(PREFIX)) is None


def test_names_roles_and_revocation(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "review-tokens.json")
    token, _ = store.create("hmi-line2", "engineer")
    with pytest.raises(TokenError, match="exists"):
        store.create("hmi-line2", "operator")
    with pytest.raises(TokenError, match="role"):
        store.create("mes", "admin")
    for bad in ("", "-x", "a b", "x" * 65, "tok/../en"):
        with pytest.raises(TokenError, match="token name"):
            store.create(bad, "operator")
    other = TokenStore(store.path)  # another process: the running station
    assert other.verify(token) is not None
    store.revoke("hmi-line2")
    assert other.verify(token) is None  # re-read because the file changed
    with pytest.raises(TokenError, match="no active token"):
        store.revoke("hmi-line2")
    again, _ = store.create("hmi-line2", "operator")  # the name is free again; the old entry stays listed
    assert [(t.name, t.active) for t in other.tokens()] == [("hmi-line2", False), ("hmi-line2", True)]
    assert other.verify(again) is not None and other.verify(token) is None


def test_a_damaged_token_file_refuses_every_token(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "review-tokens.json")
    token, _ = store.create("mes", "operator")
    store.path.write_text("{not json")
    assert store.verify(token) is None and store.tokens() == []
    with pytest.raises(TokenError, match="unreadable"):
        store.create("hmi", "operator")  # never overwrites what an engineer has to look at


def edge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "review", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_makes_lists_and_revokes_tokens_a_running_server_honours(ui: Ui, tmp_path: Path) -> None:
    data = str(tmp_path / "data")  # the ui fixture's data folder (session key, tokens)
    made = edge("token", "create", "mes", "--role", "operator", "--data-dir", data)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith(PREFIX) and "shown only now" in made.stderr
    with httpx.Client(base_url=ui.url, timeout=30) as client:
        auth = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/session", headers=auth).json()["name"] == "token:mes"
        listed = edge("token", "list", "--json", "--data-dir", data)
        assert [(t["name"], t["role"], t["revoked"]) for t in json.loads(listed.stdout)] == [
            ("mes", "operator", None)
        ]
        assert token not in listed.stdout
        assert edge("token", "create", "mes", "--data-dir", data).returncode == 2  # name taken
        revoked = edge("token", "revoke", "mes", "--data-dir", data)
        assert revoked.returncode == 0, revoked.stderr
        assert client.get("/api/v1/session", headers=auth).status_code == 401
    assert edge("token", "revoke", "mes", "--data-dir", data).returncode == 2
    assert "mes" in edge("token", "list", "--data-dir", data).stdout
