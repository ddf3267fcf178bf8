"""The station, started in one readable order (``edge run``).

    init_config    -> the config (``--config FILE``, or the active slot of ``--root DIR``), or safe mode
    init_storage   -> data dir, part counter, MQTT outbox, archive
    init_encoders  -> vision + comparison encoders on the preferred available backend
    init_banks     -> golden banks: flashed banks (root), or built from the golden folders (config file)
    init_mqtt      -> MQTT link, state/ready, PLC command handler
    init_sparkplug -> Sparkplug B edge node on its own connection (``mqtt.sparkplug``; off by default)
    init_metrics   -> Prometheus endpoint and periodic ``metrics`` payload
    init_capture   -> the frame source (camera, simulated camera, or folder replay)
    init_pipeline  -> capture -> queue -> inspection -> ordered publisher
    start_*        -> MQTT, metrics, review UI, pipeline; then wait for SIGTERM/SIGINT, SIGHUP (reload)
                      or the duration
    stop           -> stop capture, drain the queue, flush the outbox, publish offline

A config that does not load, or a station that cannot start with it (missing banks, camera refused), never
crash-loops: the station enters **safe mode** -- it publishes ``state = safe_mode`` with the reason, answers
every trigger ``NOT_INSPECTED``, keeps serving status, and tries again on a reload request.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import yaml

from edge.capture.errors import CaptureError
from edge.capture.factory import create_source
from edge.capture.settings import TriggerMode
from edge.capture.source import FrameSource
from edge.config.errors import ConfigError
from edge.config.mqtt import MqttSection
from edge.config.render import config_hash
from edge.config.resolve import ResolvedConfig, default_allowed_roots, load_and_resolve
from edge.config.safe_mode import SafeMode, load_active_config
from edge.config.station import StationSection
from edge.flash.reload import read_reload_request, write_station_status
from edge.inspection.bank import BankError, SkuBank
from edge.inspection.inspector import InspectionError, Inspector
from edge.inspection.model import Encoders, configured_encoders
from edge.mqtt.client import MqttSettings, StationMqtt
from edge.mqtt.handshake import Handshake
from edge.mqtt.outbox import Outbox, OutboxError
from edge.mqtt.payloads import ConfigRef, ReadyPayload, StatePayload
from edge.mqtt.sparkplug import SparkplugNode
from edge.review.feedback import GoldenFeedback
from edge.review.live import RecentParts, StationSnapshot
from edge.review.retention import RetentionPolicy
from edge.review.station import StationReview, review_setup
from edge.runtime import adapters
from edge.runtime.archive import ConfigIds, ImageArchive, bank_templates
from edge.runtime.control import SafeModeCommands, StationCommands, StationStatus
from edge.runtime.metrics import MetricsPublisher, MetricsServer, StationMetrics
from edge.runtime.parts import PartIds
from edge.runtime.pipeline import InspectFn, Pipeline, PipelineSettings
from edge.runtime.publisher import VerdictListener
from edge.runtime.reload import ReloadRequests, remove_pid_file, request_file, write_pid_file
from edge.runtime.watchdog import WatchdogSettings

log = logging.getLogger(__name__)

#: Interpreter switch interval while the station runs (see StationApp.run).
SWITCH_INTERVAL_S = 0.0005

Outcome = Literal["stop", "reload"]
#: Exit codes of ``edge run`` (documented in docs/runtime.md): a clean stop, or a stop in safe mode.
EXIT_OK = 0
EXIT_SAFE_MODE = 3


class StartError(RuntimeError):
    """The station cannot start with this config (banks, camera, model); the message says what to fix."""


#: Start-up failures that come from the config or the machine, not from a bug: logged without a traceback.
EXPECTED_START_ERRORS: tuple[type[Exception], ...] = (
    StartError,
    CaptureError,
    InspectionError,
    BankError,
    FileNotFoundError,
    PermissionError,
)


@dataclass
class RunOptions:
    """How to run the station (the ``edge run`` flags).

    Attributes:
        config: Station config file; golden banks are built from its golden folders (cached in the data dir).
        root: Station root with flashed A/B slots (``edge flash``); banks come from the active slot.
        simulated_camera: Capture from the simulated GenICam camera (``viky.cti``) instead of the configured
            source.
        metrics_port: Prometheus port; ``None`` disables the endpoint, 0 picks a free port.
        metrics_bind: Address of the Prometheus endpoint.
        metrics_interval_s: Period of the ``metrics`` MQTT payload.
        duration_s: Stop after this long (demo, tests); ``None`` runs until a signal.
        workers: Inspection threads.
        queue_size: Parts waiting for inspection before new ones are ``NOT_INSPECTED``.
        hang_timeout_s: Watchdog limit for one inspection.
        drain_timeout_s: At stop, how long queued parts may still be inspected.
        validate_outgoing: Check every outgoing payload against its JSON Schema.
        install_signals: Handle SIGTERM/SIGINT/SIGHUP (only possible on the main thread).
        stop_when_source_ends: Stop when a non-looping replay has delivered every image.
        inspect_wrapper: Wraps the inspection function (fault injection in tests and benchmarks).
        on_started: Called with the app once the pipeline runs (demo and benchmark hooks).
        review_port: Port of the review UI instead of ``review.port`` (0: a free port; tests).

    """

    config: Path | None = None
    root: Path | None = None
    simulated_camera: bool = False
    metrics_port: int | None = 9400
    metrics_bind: str = "127.0.0.1"
    metrics_interval_s: float = 5.0
    duration_s: float | None = None
    workers: int = 1
    queue_size: int = 4
    hang_timeout_s: float = 10.0
    drain_timeout_s: float = 10.0
    validate_outgoing: bool = False
    install_signals: bool = True
    stop_when_source_ends: bool = True
    inspect_wrapper: Callable[[InspectFn], InspectFn] | None = None
    on_started: Callable[[StationApp], None] | None = None
    review_port: int | None = None

    def __post_init__(self) -> None:
        if (self.config is None) == (self.root is None):
            raise ValueError("give exactly one of a config file (--config) or a station root (--root)")


@dataclass
class Boot:
    """A config that loaded: what the station runs."""

    resolved: ResolvedConfig
    config_hash: str
    banks_dir: Path | None  # flashed banks (root mode); None: build them from the golden folders

    @property
    def config(self) -> Any:
        """The validated :class:`edge.config.StationConfig`."""
        return self.resolved.config


@dataclass
class _Parts:
    """Everything started for one run of the station (torn down on stop or reload)."""

    outbox: Outbox | None = None
    mqtt: StationMqtt | None = None
    sparkplug: SparkplugNode | None = None
    metrics_server: MetricsServer | None = None
    metrics_publisher: MetricsPublisher | None = None
    source: FrameSource | None = None
    pipeline: Pipeline | None = None
    archive: ImageArchive | None = None
    pid_file: Path | None = None
    listeners: list[VerdictListener] = field(default_factory=list)


class StationApp:
    """One station process. Construct with :class:`RunOptions`, call :meth:`run`."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.reloads = ReloadRequests(request_file(options.root) if options.root else None)
        self._request_id: str | None = None  # flash id of the last reload request acted on
        self.in_safe_mode = False  # the current config run is safe mode (sets the exit code)
        self._stop = threading.Event()
        self._stop_reason = "station stopped"
        self._encoders: Encoders | None = None
        self._encoders_key: tuple[Any, ...] | None = None
        self.inspector: Inspector | None = None
        self.metrics: StationMetrics | None = None
        self.status: StationStatus | None = None
        self.parts = _Parts()
        self.boot: Boot | None = None
        self.safe_mode: SafeMode | None = None
        self.started = threading.Event()
        self.review: StationReview | None = None  # outlives reloads (see edge.review.station)
        self._recent = RecentParts()
        # Threads a stop had to leave behind inside a native call: (what, still running?).
        self._left_behind: list[tuple[str, Callable[[], bool]]] = []

    # -- the whole life ------------------------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; returns the process exit code.

        :data:`EXIT_OK` after a clean stop while running a config, :data:`EXIT_SAFE_MODE` when the station
        was in safe mode at the end (it inspected nothing: a script or service manager must be able to tell).
        """
        previous = self.init_signals()
        # A verdict crosses three threads on its way out (worker -> publisher -> MQTT network loop); each
        # handoff may wait for the interpreter lock as long as the switch interval while an inspection
        # thread runs Python code. The default 5 ms made the publishing path's p99 several times its p50.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, SWITCH_INTERVAL_S))
        if self.options.root is not None:
            self.parts.pid_file = write_pid_file(self.options.root)
            self._note_request()
        deadline = None if self.options.duration_s is None else time.monotonic() + self.options.duration_s
        try:
            while not self._stop.is_set():
                self.in_safe_mode = False
                boot = self.init_config()
                outcome = self.run_safe_mode(boot) if isinstance(boot, SafeMode) else self.run_station(boot)
                if outcome == "stop" or (deadline is not None and time.monotonic() > deadline):
                    break
                log.info("reloading the station config")
        finally:
            if self.review is not None:
                self.review.stop()
                self.review = None
            self.restore_signals(previous)
            sys.setswitchinterval(switch_interval)
            if self.parts.pid_file is not None:
                remove_pid_file(self.parts.pid_file)
        return EXIT_SAFE_MODE if self.in_safe_mode else EXIT_OK

    def left_running(self) -> list[str]:
        """What a stop had to leave running inside a native call (an archive encoding, a hung inference).

        Such a thread must not be alive while the interpreter finalizes: CPython 3.11 ends a daemon thread
        that comes back from C++ code during finalization with ``pthread_exit``, and its unwinding through
        the C++ frame aborts the process (SIGABRT). ``edge run`` exits without finalization when this is
        not empty (:func:`edge.runtime.cli.leave`).
        """
        return [what for what, alive in self._left_behind if alive()]

    def request_stop(self, reason: str = "station stopped") -> None:
        """Stop the station (from any thread, or a signal handler)."""
        self._stop_reason = reason
        self._stop.set()

    # -- init ----------------------------------------------------------------------------------------------

    def init_signals(self) -> dict[int, Any]:
        """SIGTERM/SIGINT stop cleanly, SIGHUP requests a reload (main thread only)."""
        previous: dict[int, Any] = {}
        if not self.options.install_signals or threading.current_thread() is not threading.main_thread():
            return previous

        def stop(signum: int, frame: FrameType | None) -> None:
            self.request_stop(f"station stopped ({signal.Signals(signum).name})")

        def hup(signum: int, frame: FrameType | None) -> None:
            self.reloads.request("SIGHUP")

        for signum, handler in ((signal.SIGTERM, stop), (signal.SIGINT, stop), (signal.SIGHUP, hup)):
            previous[signum] = signal.signal(signum, handler)
        return previous

    def restore_signals(self, previous: dict[int, Any]) -> None:
        """Put the previous signal handlers back."""
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def init_config(self) -> Boot | SafeMode:
        """Load and resolve the config, or return the safe-mode reason. Never raises."""
        opts = self.options
        try:
            if opts.root is not None:
                active = load_active_config(opts.root)
                if isinstance(active, SafeMode):
                    return active
                return Boot(active.resolved, active.config_hash, active.banks_dir)
            assert opts.config is not None
            resolved = load_and_resolve(opts.config, roots=default_allowed_roots(opts.config))
            return Boot(resolved, config_hash(resolved.config), None)
        except ConfigError as exc:
            return SafeMode(str(exc).replace("\n", " | "))
        except Exception as exc:  # whatever went wrong is the safe-mode reason; never crash-loop
            log.exception("loading the config failed")
            return SafeMode(f"cannot load the config: {type(exc).__name__}: {exc}")

    def init_storage(self, boot: Boot) -> tuple[PartIds, Outbox]:
        """Open the data dir, part counter and outbox, and the archive when configured."""
        data_dir = boot.resolved.paths.get("storage.data_dir", Path(boot.config.storage.data_dir))
        data_dir.mkdir(parents=True, exist_ok=True)
        ids = PartIds(boot.config.station.id, data_dir / "part-counter.json")
        outbox = Outbox(data_dir / "outbox.db")
        self.parts.outbox = outbox
        archive_dir = boot.resolved.paths.get("storage.archive_dir")
        if archive_dir is not None:
            storage = boot.config.storage
            self.parts.archive = ImageArchive(
                archive_dir,
                storage.ok_sample_rate,
                retention=RetentionPolicy.from_storage(storage.retention_days, storage.quota_mb),
                templates=bank_templates(lambda: self.inspector.banks if self.inspector else {}),
                config=ConfigIds(f"{boot.config.station.id} v{boot.config.version}", boot.config_hash),
            )
            self.parts.listeners.append(self.parts.archive)
        return ids, outbox

    def init_encoders(self, boot: Boot) -> Encoders:
        """Load the encoders on the first available backend of ``model.backends`` (kept across reloads)."""
        model = boot.config.model
        artifact_dir = boot.resolved.paths.get("model.artifact_dir", Path(model.artifact_dir))
        key = (
            tuple(model.input_size),
            str(artifact_dir),
            model.precision,
            tuple(model.backends),
            model.backbone,
        )
        if self._encoders is not None and self._encoders_key == key:
            return self._encoders
        # The config's precision and backend preference; `state` says what was skipped and why.
        self._encoders = configured_encoders(
            model.input_size, artifact_dir, model.precision, model.backends, model.backbone
        )
        self._encoders_key = key
        log.info("encoders: %s on %s", self._encoders.model_id, self._encoders.backend)
        return self._encoders

    def init_banks(self, boot: Boot, encoders: Encoders) -> Inspector:
        """Golden banks: load flashed ones, or build (and cache) them from the golden folders."""
        inspector = Inspector(encoders)
        banks_dir = boot.banks_dir
        if banks_dir is None:
            from edge.flash.banks import build_banks  # the flash's own enrollment + self-test, reused

            data_dir = boot.resolved.paths.get("storage.data_dir", Path(boot.config.storage.data_dir))
            banks_dir = data_dir / "banks"
            shutil.rmtree(banks_dir, ignore_errors=True)
            artifact_dir = boot.resolved.paths.get("model.artifact_dir", Path(boot.config.model.artifact_dir))
            report = build_banks(
                boot.resolved, artifact_dir, banks_dir, cache_dir=data_dir / "bank-cache", encoders=encoders
            )
            if not report.ok:
                raise StartError("golden banks failed: " + "; ".join(report.problems()))
        for sku in boot.config.skus:
            inspector.add_bank(SkuBank.load(banks_dir / sku.id, encoders.model_id))
        self.inspector = inspector
        return inspector

    def init_mqtt(self, settings: MqttSettings, outbox: Outbox, state: StatePayload) -> StationMqtt:
        """Create the MQTT link (not started yet)."""
        mqtt = StationMqtt(settings, outbox, state=state)
        self.parts.mqtt = mqtt
        return mqtt

    def init_sparkplug(self, boot: Boot, state: StatePayload) -> SparkplugNode | None:
        """The Sparkplug B edge node when ``mqtt.sparkplug`` asks for it (not started yet)."""
        data_dir = boot.resolved.paths.get("storage.data_dir", Path(boot.config.storage.data_dir))
        settings = adapters.sparkplug_settings(boot.resolved, data_dir)
        if settings is None:
            return None
        self.parts.sparkplug = SparkplugNode(settings, state)
        return self.parts.sparkplug

    def init_metrics(self, gauges: Callable[[], dict[str, float]]) -> StationMetrics:
        """Metrics and, when a port is set, the Prometheus endpoint."""
        self.metrics = StationMetrics(gauges)
        if self.options.metrics_port is not None:
            try:
                self.parts.metrics_server = MetricsServer(
                    self.metrics.registry, self.options.metrics_port, self.options.metrics_bind
                )
                log.info(
                    "metrics on http://%s:%d/metrics",
                    self.options.metrics_bind,
                    self.parts.metrics_server.port,
                )
            except OSError as exc:  # a busy port must not keep the line from running
                log.error("metrics endpoint not started on port %s: %s", self.options.metrics_port, exc)
        return self.metrics

    def init_capture(self, boot: Boot) -> FrameSource:
        """Open the frame source."""
        settings = adapters.camera_settings(boot.resolved, simulated=self.options.simulated_camera)
        source = create_source(settings)
        source.open()
        self.parts.source = source
        return source

    def init_pipeline(
        self, boot: Boot, source: FrameSource, inspector: Inspector, ids: PartIds, mqtt: StationMqtt
    ) -> Pipeline:
        """Build the hot loop, wired to the outbox (listeners are added by ``run_station``)."""
        opts = self.options
        inspect: InspectFn = inspector.inspect
        if opts.inspect_wrapper is not None:
            inspect = opts.inspect_wrapper(inspect)
        skus = [s.id for s in boot.config.skus]
        settings = PipelineSettings(
            queue_size=opts.queue_size,
            workers=opts.workers,
            trigger=adapters.trigger_mode(boot.config) if not opts.simulated_camera else TriggerMode.FREE_RUN,
            trigger_timeout_s=boot.config.camera.fetch_timeout_s,
            drain_timeout_s=opts.drain_timeout_s,
            model_id=inspector.model_id,
            backend=inspector.encoders.backend,
            watchdog=WatchdogSettings(hang_timeout_s=opts.hang_timeout_s),
        )
        pipeline = Pipeline(source, inspect, mqtt, ids, settings, sku=skus[0] if len(skus) == 1 else None)
        self.parts.pipeline = pipeline
        return pipeline

    # -- running -------------------------------------------------------------------------------------------

    def run_station(self, boot: Boot) -> Outcome:
        """Start everything for ``boot``, run until stop or reload, stop everything."""
        self.boot, self.safe_mode = boot, None
        config = boot.config
        try:
            ids, outbox = self.init_storage(boot)
            encoders = self.init_encoders(boot)
            inspector = self.init_banks(boot, encoders)
            skus = [s.id for s in config.skus]
            state = StatePayload(
                status="online",
                since=time.time(),
                sku=skus[0] if len(skus) == 1 else None,
                backend=encoders.backend,
                inference=encoders.state or None,
                config=ConfigRef(id=config.station.id, version=config.version, hash=boot.config_hash),
            )
            mqtt = self.init_mqtt(
                adapters.mqtt_settings(boot.resolved, validate_outgoing=self.options.validate_outgoing),
                outbox,
                state,
            )
            sparkplug = self.init_sparkplug(boot, state)
            source = self.init_capture(boot)
            pipeline = self.init_pipeline(boot, source, inspector, ids, mqtt)
            metrics = self.init_metrics(self._gauges)
        except EXPECTED_START_ERRORS as exc:  # a problem of the config or the machine: said in plain words
            log.error("the station cannot start with this config: %s", exc)
            self.teardown("cannot start")
            return self.run_safe_mode(SafeMode(f"cannot start: {exc}"), boot=boot)
        except Exception as exc:  # a bug: the traceback and the type help the bug report
            log.exception("the station cannot start with this config")
            self.teardown("cannot start")
            return self.run_safe_mode(SafeMode(f"cannot start: {type(exc).__name__}: {exc}"), boot=boot)

        trigger = pipeline.settings.trigger
        handshake = Handshake(
            mqtt.publish_ready,
            require_ack=trigger is TriggerMode.SOFTWARE,
            max_in_flight=1 if trigger is TriggerMode.SOFTWARE else 1_000_000,
        )
        status = self.status = StationStatus(
            mqtt, state, handshake, on_change=sparkplug.publish_state if sparkplug else None
        )
        pipeline._on_fault = status.fault
        mqtt.on_refusal = lambda reason: status.fault("broker", reason)
        mqtt.commands.handler = StationCommands(
            pipeline, status, lambda: sorted(inspector.banks), trigger, self.reloads.request
        )
        for listener in (*self.parts.listeners, metrics, _handshake_listener(handshake)):
            pipeline.publisher.add_listener(listener)
        if sparkplug is not None:
            pipeline.publisher.add_listener(_sparkplug_listener(sparkplug))

        self.start_mqtt(mqtt)
        if sparkplug is not None:
            sparkplug.start()  # in the background, like the JSON link: births follow the connect
        if pipeline.sku is not None:
            status.sku(pipeline.sku)
        handshake.publish_current()
        self.start_metrics(metrics, mqtt)
        self.start_review(boot, pipeline)
        self.start_pipeline(pipeline)
        self._write_status("online", config_hash=boot.config_hash)
        outcome = self.wait(pipeline)
        self.stop(self._stop_reason if outcome == "stop" else "reloading config")
        return outcome

    def start_mqtt(self, mqtt: StationMqtt) -> None:
        """Connect in the background (the station inspects while the broker is away; the outbox keeps all)."""
        mqtt.start()
        if not mqtt.wait_connected(5.0):
            log.warning(
                "broker %s:%d not reachable yet (%s); verdicts wait in the outbox",
                mqtt.settings.host,
                mqtt.settings.port,
                mqtt.last_error,
            )

    def start_metrics(self, metrics: StationMetrics, mqtt: StationMqtt) -> None:
        """Periodic ``metrics`` payloads."""
        self.parts.metrics_publisher = MetricsPublisher(
            metrics, mqtt.publish_metrics, self.options.metrics_interval_s
        )
        self.parts.metrics_publisher.start()

    def start_review(self, boot: Boot, pipeline: Pipeline) -> None:
        """The review UI (``review.enabled``); kept running across reloads unless its settings changed."""
        pipeline.publisher.add_listener(self._recent)
        data_dir = boot.resolved.paths.get("storage.data_dir", Path(boot.config.storage.data_dir))
        setup = review_setup(boot.resolved, data_dir, port=self.options.review_port)
        if self.review is not None and (setup is None or setup != self.review.setup):
            self.review.stop()
            self.review = None
        if setup is None or self.review is not None:
            self._update_review()
            return
        root = self.options.root
        from edge.flash.cli import hooks_dir  # the same hooks `edge flash` would run

        try:
            self.review = StationReview(
                setup,
                status=self._review_snapshot,
                publish=lambda review: self.parts.mqtt.publish_review(review) if self.parts.mqtt else None,
                feedback=GoldenFeedback(root, hooks_dir=hooks_dir(argparse.Namespace(hooks_dir=None), root))
                if root is not None
                else None,
            )
        except OSError as exc:  # a busy port must not keep the line from running
            log.error("review UI not started on %s:%d: %s", setup.bind, setup.port, exc)
            return
        self._update_review()

    def _update_review(self) -> None:
        if self.review is not None:
            server = self.parts.metrics_server
            self.review.context.prometheus_url = (
                f"http://{server.bind}:{server.port}/metrics" if server is not None else None
            )

    def start_pipeline(self, pipeline: Pipeline) -> None:
        """Start taking parts."""
        pipeline.start()
        log.info(
            "station running (trigger %s, %d worker(s), queue %d)",
            pipeline.settings.trigger.value,
            pipeline.settings.workers,
            pipeline.settings.queue_size,
        )
        self.started.set()
        if self.options.on_started is not None:
            self.options.on_started(self)

    def wait(self, pipeline: Pipeline | None) -> Outcome:
        """Block until a stop, the duration, the end of the source, or a valid reload request."""
        deadline = None if self.options.duration_s is None else time.monotonic() + self.options.duration_s
        while not self._stop.wait(0.2):
            if deadline is not None and time.monotonic() >= deadline:
                self._stop_reason = "station stopped (duration reached)"
                return "stop"
            if pipeline is not None and pipeline.ended.is_set() and self.options.stop_when_source_ends:
                self._stop_reason = "station stopped (source ended)"
                return "stop"
            reason = self.reloads.take()
            if reason is None:
                continue
            self._note_request()
            candidate = self.init_config()
            if isinstance(candidate, SafeMode) and pipeline is not None:
                log.error("reload (%s) refused, keeping the running config: %s", reason, candidate.reason)
                assert self.boot is not None
                self._write_status("online", config_hash=self.boot.config_hash, refused=candidate.reason)
                continue
            return "reload"
        return "stop"

    def stop(self, reason: str) -> None:
        """Stop capture, drain, flush the outbox, publish offline; release everything."""
        parts = self.parts
        if parts.pipeline is not None:
            if not parts.pipeline.stop():
                log.error("not every part's verdict was stored before the stop")
            for thread in parts.pipeline.workers.threads_alive():
                self._left_behind.append((f"inspection worker {thread.name}", thread.is_alive))
        self.teardown(reason)

    def teardown(self, reason: str) -> None:
        """Release whatever this run started (idempotent, tolerant of half-started runs)."""
        parts = self.parts
        if parts.source is not None:
            parts.source.close()
        if parts.metrics_publisher is not None:
            parts.metrics_publisher.stop()
        if parts.mqtt is not None:
            drained = parts.mqtt.stop(flush_timeout_s=10.0, reason=reason)
            if not drained and parts.outbox is not None:
                log.warning("%d message(s) stay in the outbox for the next start", parts.outbox.depth())
        if parts.sparkplug is not None:
            parts.sparkplug.stop()  # NDEATH: a clean disconnect discards the will
        if parts.outbox is not None:
            parts.outbox.close()
        if parts.archive is not None and not parts.archive.close():
            self._left_behind.append(("archive writer", parts.archive.is_writing))
        if parts.metrics_server is not None:
            parts.metrics_server.stop()
        pid_file = parts.pid_file
        self.parts = _Parts(pid_file=pid_file)

    def run_safe_mode(self, safe: SafeMode, boot: Boot | None = None) -> Outcome:
        """Publish ``safe_mode`` with the reason, answer triggers NOT_INSPECTED, wait for a reload or stop."""
        self.safe_mode, self.boot = safe, None
        self.in_safe_mode = True
        log.error("SAFE MODE: %s", safe.reason)
        settings, data_dir = self._safe_mode_mqtt(boot)
        try:
            outbox = Outbox(data_dir / "outbox.db")
        except OutboxError as exc:
            log.error("outbox unavailable in safe mode (%s); using a temporary one", exc)
            outbox = Outbox(Path(f"/tmp/edge-safe-mode-{os.getpid()}/outbox.db"))
        self.parts.outbox = outbox
        state = StatePayload(status="safe_mode", since=time.time(), reason=safe.reason)
        mqtt = self.init_mqtt(settings, outbox, state)
        mqtt.commands.handler = SafeModeCommands(mqtt, safe.reason, self.reloads.request)
        self.init_metrics(lambda: {"safe_mode": 1.0})
        self.start_mqtt(mqtt)
        mqtt.publish_ready(ReadyPayload(ready=False, sku=None, reason=f"safe mode: {safe.reason}"))
        self._write_status("safe_mode", config_hash=boot.config_hash if boot else None, reason=safe.reason)
        self.started.set()
        if self.options.on_started is not None:
            self.options.on_started(self)
        outcome = self.wait(None)
        self.teardown(self._stop_reason if outcome == "stop" else "leaving safe mode (reload)")
        return outcome

    # -- helpers -------------------------------------------------------------------------------------------

    def _note_request(self) -> None:
        """Remember which flash's reload request the station acts on (echoed in its status record)."""
        if self.options.root is not None:
            request = read_reload_request(self.options.root)
            self._request_id = str(request.get("flash_id")) if request else None

    def _write_status(self, status: str, **fields: Any) -> None:
        """Record what the station now runs for ``edge flash`` (station root only; see edge.flash.reload)."""
        if self.options.root is None:
            return
        try:
            write_station_status(self.options.root, {"status": status, "request": self._request_id, **fields})
        except OSError as exc:  # the flash then times out and rolls back; the line keeps running
            log.error("cannot write the station status record: %s", exc)

    def _review_snapshot(self) -> StationSnapshot:
        """What the review UI's status page shows."""
        if self.safe_mode is not None:
            return StationSnapshot("safe_mode", self.safe_mode.reason, recent=self._recent.latest())
        if self.status is None or self.boot is None:
            return StationSnapshot("unknown", "starting", recent=self._recent.latest())
        state = self.status.current.to_dict()
        thresholds = {}
        for sku in self.boot.config.skus:
            bank = self.inspector.banks.get(sku.id) if self.inspector else None
            calibrated = bank.calibration.threshold if bank is not None and bank.calibration else None
            if (value := sku.threshold or calibrated) is not None:
                thresholds[sku.id] = value
        config = state.get("config") or {}
        return StationSnapshot(
            status=state["status"],
            reason=state["reason"],
            sku=self.parts.pipeline.sku if self.parts.pipeline else state["sku"],
            since=state["since"],
            config=f"{config.get('id')} v{config.get('version')} · {str(config.get('hash'))[:12]}"
            if config
            else None,
            config_ref=config,
            backend=state["backend"],
            metrics=self.metrics.snapshot().to_dict() if self.metrics else {},
            recent=self._recent.latest(),
            thresholds=thresholds,
        )

    def _gauges(self) -> dict[str, float]:
        parts = self.parts
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

    def _safe_mode_mqtt(self, boot: Boot | None) -> tuple[MqttSettings, Path]:
        """Broker and data dir in safe mode: from the config if it got that far, else best effort."""
        if boot is not None:
            data_dir = boot.resolved.paths.get("storage.data_dir", Path(boot.config.storage.data_dir))
            try:
                return adapters.mqtt_settings(boot.resolved), data_dir
            except Exception:
                log.exception("MQTT settings of the config are unusable in safe mode")
        return _best_effort_mqtt(self._config_file())

    def _config_file(self) -> Path | None:
        if self.options.config is not None:
            return self.options.config
        assert self.options.root is not None
        candidate = self.options.root / "current" / "station.yaml"
        return candidate if candidate.is_file() else None


def _handshake_listener(handshake: Handshake) -> VerdictListener:
    def listener(part: Any, verdict: Any, result: Any) -> None:
        handshake.answered(verdict.result())

    return listener


def _sparkplug_listener(node: SparkplugNode) -> VerdictListener:
    def listener(part: Any, verdict: Any, result: Any) -> None:
        node.publish_verdict(verdict)  # QoS 0, not queued: the JSON outbox is the guaranteed path

    return listener


def _best_effort_mqtt(config_file: Path | None) -> tuple[MqttSettings, Path]:
    """Salvage the ``station`` and ``mqtt`` sections of a config that does not validate as a whole.

    A station in safe mode must still tell the line why; its broker is most likely the one the broken config
    names. Falls back to ``localhost:1883`` and ``edge/unconfigured/<hostname>``. Password references are not
    followed here (a safe-mode station on an authenticated broker needs a config that at least resolves).
    """
    raw: dict[str, Any] = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text(encoding="utf-8"))
            raw = loaded if isinstance(loaded, dict) else {}
        except Exception as exc:
            log.warning("config %s is not even YAML: %s", config_file, exc)
    host = socket.gethostname() or "station"
    root = f"edge/unconfigured/{''.join(c if c.isalnum() or c in '-_' else '_' for c in host)}"
    client_id = f"edge-safe-mode-{host}"
    section = MqttSection()
    try:
        section = MqttSection.model_validate(raw.get("mqtt") or {})
    except Exception as exc:
        log.warning("mqtt section unusable (%s); using %s:%d", exc, section.host, section.port)
    try:
        station = StationSection.model_validate(raw.get("station"))
        root = section.topic_root or f"{station.site}/{station.line}/{station.id}"
        client_id = section.client_id or f"edge-{station.id}"
    except Exception as exc:
        log.warning("station section unusable (%s); publishing under %s", exc, root)
    base = config_file.resolve().parent if config_file is not None else Path.cwd()
    data_dir = base / "safe-mode-data"
    storage = raw.get("storage")
    if isinstance(storage, dict) and isinstance(storage.get("data_dir"), str):
        data_dir = base / storage["data_dir"]
    settings = MqttSettings(
        host=section.host,
        port=section.port,
        topic_root=root,
        client_id=client_id,
        username=section.username,
        keepalive_s=section.keepalive,
    )
    return settings, data_dir
