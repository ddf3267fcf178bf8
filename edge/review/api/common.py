"""What every API route shares: the error responses it documents, URLs of API objects."""

from __future__ import annotations

import urllib.parse
from typing import Any

from edge.review.api.models import Error

PREFIX = "/api/v1"

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "No valid token or session."},
    403: {
        "model": Error,
        "description": "The role may not do this, or a session write lacks its CSRF token.",
    },
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Error, "description": "No such archived part."}}


def part_url(part_id: str, suffix: str = "") -> str:
    """API URL of a part (ids are percent-encoded: PLC part ids may contain any printable character)."""
    return f"{PREFIX}/parts/{urllib.parse.quote(part_id, safe='')}{suffix}"
