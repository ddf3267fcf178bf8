"""What the station shows of itself: gauges for the metrics, the review UI's status, verdict listeners."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edge.mqtt.handshake import Handshake
from edge.mqtt.payloads import VerdictPayload
from edge.review.live import StationSnapshot
from edge.runtime.publisher import VerdictListener
from edge.runtime.started import StationParts

if TYPE_CHECKING:
    from edge.runtime.app import StationApp


def review_snapshot(app: StationApp) -> StationSnapshot:
    """What the review UI's status page shows of ``app``."""
    if app.safe_mode is not None:
        return StationSnapshot("safe_mode", app.safe_mode.reason, recent=app.recent.latest())
    if app.status is None or app.boot is None:
        return StationSnapshot("unknown", "starting", recent=app.recent.latest())
    state = app.status.current.to_dict()
    thresholds = {}
    for sku in app.boot.config.skus:
        bank = app.inspector.banks.get(sku.id) if app.inspector else None
        calibrated = bank.calibration.threshold if bank is not None and bank.calibration else None
        if (value := sku.threshold or calibrated) is not None:
            thresholds[sku.id] = value
    config = state.get("config") or {}
    return StationSnapshot(
        status=state["status"],
        reason=state["reason"],
        sku=app.parts.pipeline.sku if app.parts.pipeline else state["sku"],
        since=state["since"],
        config=f"{config.get('id')} v{config.get('version')} · {str(config.get('hash'))[:12]}"
        if config
        else None,
        config_ref=config,
        backend=state["backend"],
        metrics=app.metrics.snapshot().to_dict() if app.metrics else {},
        recent=app.recent.latest(),
        thresholds=thresholds,
    )


def station_gauges(parts: StationParts) -> dict[str, float]:
    """Gauges of what this run started (queue, outbox, broker link, camera) for the metrics."""
    out: dict[str, float] = {}
    if parts.pipeline is not None:
        c = parts.pipeline.counters
        out.update(
            frames_in=c.frames_in,
            queue_depth=parts.pipeline.queue_depth,
            overload=c.overload,
            capture_errors=c.capture_errors,
            frames_paused=c.frames_paused,
            trigger_timeouts=c.trigger_timeouts,
            worker_restarts=parts.pipeline.workers.restarts,
            publisher_backlog=parts.pipeline.publisher.backlog,
        )
    if parts.outbox is not None:
        out["outbox_depth"] = parts.outbox.depth()
        # Messages the broker refused (an ACL, a quota): kept and retried, and visible here.
        out["outbox_refused"] = parts.outbox.broker_refusals()[0]
    if parts.mqtt is not None:
        out["mqtt_connected"] = 1.0 if parts.mqtt.connected else 0.0
    if parts.source is not None:
        stats = parts.source.stats
        out.update(
            camera_incomplete=stats.incomplete,
            camera_drops=stats.drops,
            camera_reconnects=stats.reconnects,
            camera_bad_frames=stats.bad_frames,
        )
    return out


def handshake_listener(handshake: Handshake) -> VerdictListener:
    """Tell the PLC handshake that a part was answered (its result code)."""

    def listener(part: Any, verdict: Any, result: Any) -> None:
        handshake.answered(verdict.result())

    return listener


def forward_verdicts(publish: Callable[[VerdictPayload], object]) -> VerdictListener:
    """Tell ``publish`` (the Sparkplug edge node, the OPC UA server) each part's verdict."""

    def listener(part: Any, verdict: Any, result: Any) -> None:
        publish(verdict)

    return listener
