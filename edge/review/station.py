"""The review UI as part of a station: settings from the config, one object to start, update and stop.

The UI outlives config reloads (a promotion flashes a new config and the station reloads while the engineer's
request is still being answered): the runtime keeps one :class:`StationReview` and only restarts it when the
review settings themselves change. Its data sources are callables, so they follow the running config.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from edge.config.resolve import ResolvedConfig
from edge.review.app import create_app
from edge.review.auth import Authenticator, User, load_key
from edge.review.context import DispositionSink, ReviewContext
from edge.review.feedback import GoldenFeedback
from edge.review.index import INDEX_NAME, ArchiveIndex
from edge.review.live import StatusSource
from edge.review.server import ReviewServer, TlsFiles
from edge.review.tokens import TOKENS_NAME, TokenStore

log = logging.getLogger(__name__)

KEY_NAME = "review-session.key"


@dataclass(frozen=True)
class ReviewSetup:
    """Everything that, when changed by a reload, needs a new server."""

    bind: str
    port: int
    tls: TlsFiles | None
    archive_root: Path
    key_file: Path
    users: tuple[User, ...]
    station: str
    tokens_file: Path | None = None


def review_setup(resolved: ResolvedConfig, data_dir: Path, *, port: int | None = None) -> ReviewSetup | None:
    """The review settings of a resolved config; ``None`` when the UI is disabled or there is no archive.

    Args:
        resolved: The station config, resolved.
        data_dir: Where the session signing key is kept.
        port: Override of ``review.port`` (tests: 0 picks a free port).

    """
    config = resolved.config
    review = config.review
    archive = resolved.paths.get("storage.archive_dir")
    if not review.enabled:
        return None
    if archive is None:
        log.error("review UI enabled but the archive folder does not resolve; UI not started")
        return None
    tls = None
    if review.tls is not None:
        tls = TlsFiles(resolved.paths["review.tls.cert"], resolved.paths["review.tls.key"])
    return ReviewSetup(
        bind=review.bind,
        port=review.port if port is None else port,
        tls=tls,
        archive_root=archive,
        key_file=data_dir / KEY_NAME,
        users=tuple(User(u.name, u.role, u.password_hash) for u in review.users),
        station=config.station.id,
        tokens_file=data_dir / TOKENS_NAME,
    )


class StationReview:
    """A running review service (pages and JSON API): its own index connection, authenticator and server.

    Args:
        setup: Settings (:func:`review_setup`).
        status: Live station snapshot.
        publish: Publishes dispositions on MQTT ``review``.
        feedback: Golden promotion / thresholds (flashed stations only).
        prometheus_url: Link shown in the UI.

    """

    def __init__(
        self,
        setup: ReviewSetup,
        *,
        status: StatusSource,
        publish: DispositionSink | None,
        feedback: GoldenFeedback | None = None,
        prometheus_url: str | None = None,
    ) -> None:
        self.setup = setup
        setup.archive_root.mkdir(parents=True, exist_ok=True)
        self.index = ArchiveIndex(setup.archive_root / INDEX_NAME)
        auth = Authenticator(setup.users, load_key(setup.key_file))
        self.context = ReviewContext(
            index=self.index,
            archive_root=setup.archive_root,
            auth=auth,
            status=status,
            publish=publish,
            feedback=feedback,
            prometheus_url=prometheus_url,
            station=setup.station,
            tokens=TokenStore(setup.tokens_file) if setup.tokens_file is not None else None,
        )
        try:
            self.server = ReviewServer(create_app(self.context), setup.bind, setup.port, setup.tls).start()
        except BaseException:
            self.index.close()
            raise

    @property
    def url(self) -> str:
        """Base URL of the UI."""
        return self.server.url

    def stop(self) -> None:
        """Stop serving and close the index."""
        self.server.stop()
        self.index.close()
