"""Station metrics: a Prometheus endpoint (prometheus-client) and the periodic ``metrics`` MQTT payload.

One :class:`StationMetrics` object listens to published verdicts (it is an
:class:`~edge.runtime.publisher.VerdictListener`) and samples gauges (queue and outbox depth, capture
counters) from a callback, so neither the pipeline nor the MQTT client know about Prometheus. Each station has
its own ``CollectorRegistry`` (not the process-global one), so tests and the benchmark can run several in one
process.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from wsgiref.simple_server import WSGIServer

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge.capture.part import Part
from edge.inspection.types import InspectionResult, Verdict
from edge.mqtt.payloads import LatencyStats, MetricsPayload, VerdictPayload

log = logging.getLogger(__name__)

#: Latency histogram buckets (seconds): a part takes tens to hundreds of milliseconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0)

Gauges = Callable[[], Mapping[str, float]]
"""Returns current gauge values: ``queue_depth``, ``outbox_depth``, ``frames_in`` and further counters."""


class StationMetrics:
    """Counts verdicts, keeps per-stage latencies, renders Prometheus metrics and ``metrics`` payloads.

    Args:
        gauges: Sampled at every scrape and snapshot.
        window_s: Window of the rates and percentiles in the MQTT payload.
        registry: Prometheus registry (a fresh one by default).

    """

    def __init__(
        self, gauges: Gauges | None = None, window_s: float = 10.0, registry: CollectorRegistry | None = None
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.window_s = window_s
        self._gauges = gauges or (lambda: {})
        self._lock = threading.Lock()
        self._recent: collections.deque[tuple[float, Mapping[str, float]]] = collections.deque()
        self._totals = {v: 0 for v in Verdict}
        self._started = time.time()
        r = self.registry
        self.parts = Counter(
            "edge_parts", "Parts with a published verdict, by verdict.", ["verdict"], registry=r
        )
        for v in Verdict:
            self.parts.labels(v.value)  # export zeros from the start: a rate() over a missing series is empty
        self.latency = Histogram(
            "edge_stage_latency_seconds",
            "Latency per pipeline stage.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ng_rate = Gauge("edge_ng_rate", "NG parts / inspected parts since start.", registry=r)
        r.register(_SampleOnScrape(self))

    # -- verdict listener ------------------------------------------------------------------------------------

    def __call__(self, part: Part, verdict: VerdictPayload, result: InspectionResult | None) -> None:
        """Record one published verdict."""
        now = time.time()
        self.parts.labels(verdict.verdict.value).inc()
        stages = dict(verdict.latency_ms)
        if verdict.frame_ts is not None:
            stages["frame_to_outbox"] = max(0.0, (verdict.published_at - verdict.frame_ts) * 1e3)
        for stage, ms in stages.items():
            self.latency.labels(stage).observe(ms / 1e3)
        with self._lock:
            self._totals[verdict.verdict] += 1
            self._recent.append((now, stages))
            self._prune(now)
            inspected = self._totals[Verdict.OK] + self._totals[Verdict.NG]
            self.ng_rate.set(self._totals[Verdict.NG] / inspected if inspected else 0.0)

    def _prune(self, now: float) -> None:
        while self._recent and self._recent[0][0] < now - self.window_s:
            self._recent.popleft()

    # -- snapshots -------------------------------------------------------------------------------------------

    @property
    def totals(self) -> dict[Verdict, int]:
        """Published verdicts by kind since start."""
        with self._lock:
            return dict(self._totals)

    def sample_gauges(self) -> dict[str, float]:
        """Read the gauges now (errors become an empty sample, logged)."""
        try:
            return {k: float(v) for k, v in self._gauges().items()}
        except Exception:
            log.exception("sampling station gauges failed")
            return {}

    def snapshot(self) -> MetricsPayload:
        """Build the ``metrics`` payload for now."""
        now = time.time()
        gauges = self.sample_gauges()
        with self._lock:
            self._prune(now)
            recent = list(self._recent)
            totals = dict(self._totals)
        window = min(self.window_s, max(now - self._started, 1e-3))
        by_stage: dict[str, list[float]] = collections.defaultdict(list)
        for _, stages in recent:
            for stage, ms in stages.items():
                by_stage[stage].append(ms)
        latency = {}
        for stage, values in by_stage.items():
            arr = np.asarray(values, dtype=np.float64)
            p50, p90, p99 = np.percentile(arr, [50, 90, 99])
            latency[stage] = LatencyStats(float(p50), float(p90), float(p99), float(arr.max()))
        known = {"frames_in", "queue_depth", "outbox_depth", "overload"}
        return MetricsPayload(
            window_s=round(window, 3),
            frames_in=int(gauges.get("frames_in", 0)),
            parts_inspected=totals[Verdict.OK] + totals[Verdict.NG],
            parts_ng=totals[Verdict.NG],
            not_inspected=totals[Verdict.NOT_INSPECTED],
            errors=totals[Verdict.ERROR],
            drops=int(gauges.get("overload", 0) + gauges.get("camera_drops", 0)),
            throughput_pps=round(len(recent) / window, 3),
            queue_depth=int(gauges.get("queue_depth", 0)),
            outbox_depth=int(gauges.get("outbox_depth", 0)),
            latency_ms=latency,
            extra={k: v for k, v in gauges.items() if k not in known},
            timestamp=now,
        )


class _SampleOnScrape(Collector):
    """Exports the sampled gauges (queue depth, outbox depth, capture counters) at scrape time."""

    def __init__(self, metrics: StationMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("edge_station", "Station gauges and capture counters.", labels=["name"])
        for name, value in sorted(self._metrics.sample_gauges().items()):
            family.add_metric([name], value)
        yield family


class MetricsServer:
    """The Prometheus HTTP endpoint (``/metrics``) of one registry.

    Args:
        registry: What to serve.
        port: TCP port; 0 picks a free one (see :attr:`port`).
        bind: Address; loopback by default (expose it deliberately, e.g. ``0.0.0.0`` behind a firewall).

    """

    def __init__(self, registry: CollectorRegistry, port: int, bind: str = "127.0.0.1") -> None:
        self._server: WSGIServer
        self._server, self._thread = start_http_server(port, addr=bind, registry=registry)
        self.port: int = self._server.server_port
        self.bind = bind

    def stop(self) -> None:
        """Shut the endpoint down."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2.0)


class MetricsPublisher:
    """Publishes a snapshot every ``interval_s`` through ``publish`` (QoS 0; skipped while disconnected)."""

    def __init__(
        self, metrics: StationMetrics, publish: Callable[[MetricsPayload], object], interval_s: float = 5.0
    ) -> None:
        self._metrics = metrics
        self._publish = publish
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)

    def start(self) -> None:
        """Start the periodic thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the periodic thread."""
        self._stop.set()
        self._thread.join(2.0)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._publish(self._metrics.snapshot())
            except Exception:
                log.exception("publishing metrics failed")
