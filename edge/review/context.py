"""What every page and API route of the review service works on: the archive, accounts, the live station."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge.mqtt.payloads import ReviewPayload
from edge.review.auth import Authenticator
from edge.review.feedback import GoldenFeedback
from edge.review.index import ArchiveIndex
from edge.review.jobs import FeedbackJobs
from edge.review.live import StationSnapshot, StatusSource
from edge.review.tokens import TokenStore

log = logging.getLogger(__name__)

DispositionSink = Callable[[ReviewPayload], object]
"""Publishes a disposition on MQTT ``review`` (the station passes ``StationMqtt.publish_review``)."""


@dataclass
class ReviewContext:
    """Everything the pages and the API use.

    Attributes:
        index: The archive index (the only way requests reach archived parts).
        archive_root: The archive folder; image files are served only from inside it.
        auth: Accounts and sessions.
        status: Live station snapshot.
        publish: MQTT publisher of dispositions (``None``: stored only).
        feedback: Golden promotion and thresholds (``None``: not a flashed station).
        prometheus_url: Link to the Prometheus endpoint (``None``: endpoint disabled).
        station: Station name in the page header.
        tokens: API tokens of machine clients (``None``: bearer tokens refused).
        jobs: The feedback actions running or recently finished (each is a flash, run in the background).

    """

    index: ArchiveIndex
    archive_root: Path
    auth: Authenticator
    status: StatusSource
    publish: DispositionSink | None = None
    feedback: GoldenFeedback | None = None
    prometheus_url: str | None = None
    station: str = "station"
    tokens: TokenStore | None = None
    jobs: FeedbackJobs = field(default_factory=FeedbackJobs)

    def snapshot(self) -> StationSnapshot:
        """The live station snapshot; ``unknown`` (never an exception) when the station cannot tell."""
        try:
            return self.status()
        except Exception:
            log.exception("station status unavailable")
            return StationSnapshot(status="unknown", reason="status unavailable (see the station log)")
