"""The OpenAPI document: checked in, served, and true of what the live API answers."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import jsonschema

from edge.review.api.openapi import openapi_json
from edge.review.app import create_app
from review.conftest import Ui, api_token

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_checked_in_document_is_what_the_app_generates() -> None:
    generated = openapi_json(create_app(None).routes)
    assert DOC.read_text(encoding="utf-8") == generated, (
        "docs/openapi.json is out of date: run `edge review openapi > docs/openapi.json`"
    )


def test_the_document_describes_errors_as_served() -> None:
    doc = json.loads(DOC.read_text(encoding="utf-8"))
    assert doc["openapi"].startswith("3.") and set(doc["components"]["securitySchemes"]) == {
        "token",
        "session",
    }
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
            if path.startswith("/api/v1/"):
                assert {"401", "403"} <= set(operation["responses"]), (method, path)
                assert operation.get("security"), (method, path)


def _schema(doc: dict[str, Any], path: str, method: str = "get", status: str = "200") -> dict[str, Any]:
    content = doc["paths"][path][method]["responses"][status]["content"]["application/json"]
    return {**content["schema"], "components": doc["components"]}


def test_live_answers_match_the_document(ui: Ui) -> None:
    auth = {"Authorization": f"Bearer {api_token(ui, 'mes', 'operator')}"}
    with httpx.Client(base_url=ui.url, timeout=30) as client:
        doc = client.get("/api/v1/openapi.json").json()
        assert doc == json.loads(DOC.read_text(encoding="utf-8"))
        part = urllib.parse.quote("st1-000000001", safe="")
        checks = [
            ("/api/v1/parts", "/api/v1/parts", "200"),
            ("/api/v1/parts/{part_id}", f"/api/v1/parts/{part}", "200"),
            ("/api/v1/parts/{part_id}/dispositions", f"/api/v1/parts/{part}/dispositions", "200"),
            ("/api/v1/station", "/api/v1/station", "200"),
            ("/api/v1/counters", "/api/v1/counters", "200"),
            ("/api/v1/stats", "/api/v1/stats", "200"),
            ("/api/v1/session", "/api/v1/session", "200"),
            ("/api/v1/parts/{part_id}", "/api/v1/parts/nope", "404"),
            ("/api/v1/parts", "/api/v1/parts?limit=0", "400"),
            ("/api/v1/tokens", "/api/v1/tokens", "403"),
        ]
        for documented, actual, status in checks:
            r = client.get(actual, headers=auth)
            assert str(r.status_code) == status, (actual, r.text)
            jsonschema.validate(r.json(), _schema(doc, documented, status=status))
        r = client.post(
            f"/api/v1/parts/{part}/dispositions",
            json={"disposition": "confirm_defect", "defect_class": "scratch"},
            headers=auth,
        )
        assert r.status_code == 201
        jsonschema.validate(r.json(), _schema(doc, "/api/v1/parts/{part_id}/dispositions", "post", "201"))
        r = client.get("/api/v1/station")
        jsonschema.validate(r.json(), _schema(doc, "/api/v1/station", status="401"))
