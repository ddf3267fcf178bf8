"""The record of one part travelling through the station: identity, SKU, frame, timing.

Beside :class:`~edge.capture.frame.Frame` and below the runtime: the pipeline creates parts, and the
listeners it feeds (archive, review, metrics, MQTT publisher) all read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.capture.frame import Frame


@dataclass
class Part:
    """One part travelling through the pipeline.

    Attributes:
        part_id: Unique id published with the verdict (station-generated or the PLC's).
        seq: Station sequence number; verdicts leave in ``seq`` order.
        sku: SKU to inspect as (``None`` when unknown: the part cannot be inspected).
        frame: The acquired frame (``None`` until it arrives, or when none ever did).
        started_at: ``time.time()`` when the part began (frame arrival, or the trigger).
        dequeued_at: ``time.time()`` when a worker took it.

    """

    part_id: str
    seq: int
    sku: str | None
    frame: Frame | None = None
    started_at: float = 0.0
    dequeued_at: float = 0.0
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def frame_ts(self) -> float | None:
        """Capture time of the frame, when there is one."""
        return None if self.frame is None else self.frame.timestamp
