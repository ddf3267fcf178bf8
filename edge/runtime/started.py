"""Everything one run of the station started, and how it is released (on stop, reload or a failed start)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge.capture.source import FrameSource
from edge.mqtt.client import StationMqtt
from edge.mqtt.outbox import Outbox
from edge.mqtt.sparkplug import SparkplugNode
from edge.opcua.server import VisionServer
from edge.runtime.archive import ImageArchive
from edge.runtime.metrics import MetricsPublisher, MetricsServer
from edge.runtime.pipeline import Pipeline
from edge.runtime.publisher import VerdictListener

log = logging.getLogger(__name__)


@dataclass
class StationParts:
    """Everything started for one run of the station (torn down on stop or reload)."""

    outbox: Outbox | None = None
    mqtt: StationMqtt | None = None
    sparkplug: SparkplugNode | None = None
    opcua: VisionServer | None = None
    metrics_server: MetricsServer | None = None
    metrics_publisher: MetricsPublisher | None = None
    source: FrameSource | None = None
    pipeline: Pipeline | None = None
    archive: ImageArchive | None = None
    pid_file: Path | None = None
    listeners: list[VerdictListener] = field(default_factory=list)

    def close(self, reason: str) -> list[tuple[str, Callable[[], bool]]]:
        """Stop and release everything started (idempotent, tolerant of half-started runs).

        Returns:
            What had to be left running inside a native call: ``(what, still running?)``.

        """
        left: list[tuple[str, Callable[[], bool]]] = []
        if self.source is not None:
            self.source.close()
        if self.metrics_publisher is not None:
            self.metrics_publisher.stop()
        if self.opcua is not None:
            self.opcua.stop()  # says Preoperational ("station stopping") first
        if self.mqtt is not None:
            drained = self.mqtt.stop(flush_timeout_s=10.0, reason=reason)
            if not drained and self.outbox is not None:
                log.warning("%d message(s) stay in the outbox for the next start", self.outbox.depth())
        if self.sparkplug is not None:
            self.sparkplug.stop()  # NDEATH: a clean disconnect discards the will
        if self.outbox is not None:
            self.outbox.close()
        if self.archive is not None and not self.archive.close():
            left.append(("archive writer", self.archive.is_writing))
        if self.metrics_server is not None:
            self.metrics_server.stop()
        return left
