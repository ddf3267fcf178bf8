"""The OpenAPI document of ``/api/v1``, generated from the routes and checked into ``docs/openapi.json``.

FastAPI documents a 422 ``HTTPValidationError`` for every route with parameters; this API answers malformed
requests with 400 and its own :class:`~edge.review.api.models.Error`, so the document says that instead (a
client generated from it must handle what the server really sends).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute

API_VERSION = "1.0.0"
TITLE = "Edge inspection station API"
DESCRIPTION = """\
Request/response API of an inspection station for HMI and MES clients: archived parts with their verdict,
score, threshold, defect boxes and images; dispositions; counters; the station's state, config and SKU.

Authenticate with `Authorization: Bearer <token>` (tokens are made on the station by an engineer:
`edge review token create NAME --role operator`) or with the review UI's session cookie; a cookie request
that changes something must send `X-CSRF-Token`. Errors are JSON objects `{status, error, message, where}`.
The event stream (every verdict as it happens) is MQTT; see docs/mqtt.md.
"""

_BAD_REQUEST = {
    "description": "A parameter or body field is missing or malformed (`where` names it).",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def openapi_document(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` (the app's, with the UI's excluded from the schema)."""
    doc = get_openapi(title=TITLE, version=API_VERSION, description=DESCRIPTION, routes=list(routes))
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", _BAD_REQUEST)
    schemas = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return doc


def openapi_json(routes: Sequence[BaseRoute]) -> str:
    """The document as checked into ``docs/openapi.json`` (stable key order, one trailing newline)."""
    return json.dumps(openapi_document(routes), indent=2, ensure_ascii=False) + "\n"
