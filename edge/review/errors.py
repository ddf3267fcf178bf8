"""The one error type of the review service: a status and a message saying what went wrong and where."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus


class HttpError(Exception):
    """Ends a request with ``status`` and a short message.

    The review pages answer it as plain text, the JSON API as an ``Error`` object (:mod:`edge.review.app`).

    Args:
        status: HTTP status code.
        message: What went wrong, naming the parameter or object concerned (default: the status phrase).
        headers: Extra response headers (``Retry-After``, ``WWW-Authenticate``).
        where: The request part concerned, e.g. ``query.limit`` or ``path.part_id`` (JSON API only).

    """

    def __init__(
        self,
        status: int,
        message: str = "",
        *,
        headers: Mapping[str, str] | None = None,
        where: str | None = None,
    ) -> None:
        self.status = status
        self.message = message or HTTPStatus(status).phrase
        self.headers = dict(headers or {})
        self.where = where
        super().__init__(self.message)
