"""The station, started in one readable order (``edge run``).

    init_config    -> the config (``--config FILE``, or the active slot of ``--root DIR``), or safe mode
    init_storage   -> data dir, part counter, MQTT outbox, archive
    init_encoders  -> vision + comparison encoders on the preferred available backend
    init_banks     -> golden banks: flashed banks (root), or built from the golden folders (config file)
    init_mqtt      -> MQTT link, state/ready, PLC command handler
    init_sparkplug -> Sparkplug B edge node on its own connection (``mqtt.sparkplug``; off by default)
    init_opcua     -> OPC UA server for PLCs (``opcua.enabled``; off by default)
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

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.capture.factory import create_source
from edge.capture.settings import TriggerMode
from edge.capture.source import FrameSource
from edge.engines.encoders import Encoders
from edge.flash.active import SafeMode
from edge.flash.hooks import find_hooks_dir
from edge.inspection.inspector import Inspector
from edge.mqtt.client import MqttSettings, StationMqtt
from edge.mqtt.handshake import Handshake
from edge.mqtt.outbox import Outbox, OutboxError
from edge.mqtt.payloads import ConfigRef, ReadyPayload, StatePayload
from edge.mqtt.sparkplug import SparkplugNode
from edge.opcua.server import OpcUaError, VisionServer
from edge.review.feedback import GoldenFeedback
from edge.review.live import RecentParts
from edge.review.retention import RetentionPolicy
from edge.review.station import StationReview, review_setup
from edge.runtime import adapters
from edge.runtime.archive import ConfigIds, ImageArchive, bank_templates
from edge.runtime.boot import Boot, load_boot, safe_mode_mqtt
from edge.runtime.control import SafeModeCommands, StationCommands, StationStatus
from edge.runtime.loading import EncoderCache, load_inspector
from edge.runtime.metrics import MetricsPublisher, MetricsServer, StationMetrics
from edge.runtime.options import EXIT_OK, EXIT_SAFE_MODE, EXPECTED_START_ERRORS, Outcome, RunOptions
from edge.runtime.parts import PartIds
from edge.runtime.pipeline import InspectFn, Pipeline, PipelineSettings
from edge.runtime.reload import ReloadRequests, StatusRecord, remove_pid_file, request_file, write_pid_file
from edge.runtime.signals import install_signals, restore_signals
from edge.runtime.snapshot import forward_verdicts, handshake_listener, review_snapshot, station_gauges
from edge.runtime.started import StationParts
from edge.runtime.watchdog import WatchdogSettings

log = logging.getLogger(__name__)

#: Interpreter switch interval while the station runs (see StationApp.run).
SWITCH_INTERVAL_S = 0.0005


class StationApp:
    """One station process. Construct with :class:`RunOptions`, call :meth:`run`."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.reloads = ReloadRequests(request_file(options.root) if options.root else None)
        # What the station runs, for `edge flash` (station root only; see edge.flash.reload).
        self.status_record = StatusRecord(options.root) if options.root else None
        self.in_safe_mode = False  # the current config run is safe mode (sets the exit code)
        self._stop = threading.Event()
        self._stop_reason = "station stopped"
        self._encoders = EncoderCache()
        self.inspector: Inspector | None = None
        self.metrics: StationMetrics | None = None
        self.status: StationStatus | None = None
        self.parts = StationParts()
        self.boot: Boot | None = None
        self.safe_mode: SafeMode | None = None
        self.started = threading.Event()
        self.review: StationReview | None = None  # outlives reloads (see edge.review.station)
        self.recent = RecentParts()  # the last parts, for the review UI
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
            if self.status_record is not None:
                self.status_record.note_request()
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
            restore_signals(previous)
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
        if not self.options.install_signals:
            return {}
        return install_signals(
            stop=lambda name: self.request_stop(f"station stopped ({name})"),
            reload=lambda: self.reloads.request("SIGHUP"),
        )

    def init_config(self) -> Boot | SafeMode:
        """Load and resolve the config, or the safe-mode reason (:func:`edge.runtime.boot.load_boot`)."""
        return load_boot(self.options)

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
        return self._encoders.load(boot)

    def init_banks(self, boot: Boot, encoders: Encoders) -> Inspector:
        """Golden banks: load flashed ones, or build (and cache) them from the golden folders."""
        self.inspector = load_inspector(boot, encoders)
        return self.inspector

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

    def init_opcua(
        self, boot: Boot, commands: StationCommands | SafeModeCommands, recipes: Callable[[], list[str]]
    ) -> VisionServer | None:
        """The OPC UA server when ``opcua.enabled`` asks for it (not started yet).

        ``ActivateRecipe`` goes through the same command handler as ``cmd/sku`` (in safe mode: refused).
        """
        data_dir = boot.resolved.paths.get("storage.data_dir", Path(boot.config.storage.data_dir))
        settings = adapters.opcua_settings(boot.resolved, data_dir)
        if settings is None:
            return None
        self.parts.opcua = VisionServer(settings, commands.on_sku, recipes)
        return self.parts.opcua

    def start_opcua(self, opcua: VisionServer, state: StatePayload) -> None:
        """Serve OPC UA; a server that cannot start (busy port, bad certificate) must not stop the line."""
        try:
            opcua.start()
        except OpcUaError as exc:
            log.error("%s; the station runs without OPC UA", exc)
            opcua.stop()
            self.parts.opcua = None
            return
        opcua.publish_state(state)

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
            metrics = self.init_metrics(lambda: station_gauges(self.parts))
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
        status = self.status = StationStatus(mqtt, state, handshake)
        pipeline._on_fault = status.fault
        mqtt.on_refusal = lambda reason: status.fault("broker", reason)
        commands = StationCommands(
            pipeline, status, lambda: sorted(inspector.banks), trigger, self.reloads.request
        )
        mqtt.commands.handler = commands
        opcua = self.init_opcua(boot, commands, lambda: sorted(inspector.banks))
        for node in (sparkplug, opcua):  # QoS 0 / a view: the JSON outbox is the guaranteed path
            if node is not None:
                status.add_listener(node.publish_state)
                pipeline.publisher.add_listener(forward_verdicts(node.publish_verdict))
        for listener in (*self.parts.listeners, metrics, handshake_listener(handshake)):
            pipeline.publisher.add_listener(listener)

        self.start_mqtt(mqtt)
        if sparkplug is not None:
            sparkplug.start()  # in the background, like the JSON link: births follow the connect
        if opcua is not None:
            self.start_opcua(opcua, status.current)
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
        pipeline.publisher.add_listener(self.recent)
        data_dir = boot.resolved.paths.get("storage.data_dir", Path(boot.config.storage.data_dir))
        setup = review_setup(boot.resolved, data_dir, port=self.options.review_port)
        if self.review is not None and (setup is None or setup != self.review.setup):
            self.review.stop()
            self.review = None
        if setup is None or self.review is not None:
            self._update_review()
            return
        root = self.options.root
        try:
            self.review = StationReview(
                setup,
                status=lambda: review_snapshot(self),
                publish=lambda review: self.parts.mqtt.publish_review(review) if self.parts.mqtt else None,
                feedback=GoldenFeedback(root, hooks_dir=find_hooks_dir(root)) if root is not None else None,
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
            if self.status_record is not None:
                self.status_record.note_request()
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
        self._left_behind += self.parts.close(reason)
        self.parts = StationParts(pid_file=self.parts.pid_file)

    def run_safe_mode(self, safe: SafeMode, boot: Boot | None = None) -> Outcome:
        """Publish ``safe_mode`` with the reason, answer triggers NOT_INSPECTED, wait for a reload or stop."""
        self.safe_mode, self.boot = safe, None
        self.in_safe_mode = True
        log.error("SAFE MODE: %s", safe.reason)
        settings, data_dir = safe_mode_mqtt(self.options, boot)
        try:
            outbox = Outbox(data_dir / "outbox.db")
        except OutboxError as exc:
            log.error("outbox unavailable in safe mode (%s); using a temporary one", exc)
            outbox = Outbox(Path(f"/tmp/edge-safe-mode-{os.getpid()}/outbox.db"))
        self.parts.outbox = outbox
        state = StatePayload(status="safe_mode", since=time.time(), reason=safe.reason)
        mqtt = self.init_mqtt(settings, outbox, state)
        commands = SafeModeCommands(mqtt, safe.reason, self.reloads.request)
        mqtt.commands.handler = commands
        self.init_metrics(lambda: {"safe_mode": 1.0})
        self.start_mqtt(mqtt)
        # A SCADA host (Sparkplug) and a PLC on OPC UA see the station in safe mode with the reason, when
        # the config itself could be read (their settings are in it).
        sparkplug = self.init_sparkplug(boot, state) if boot is not None else None
        if sparkplug is not None:
            sparkplug.start()
        opcua = self.init_opcua(boot, commands, list) if boot is not None else None
        if opcua is not None:
            self.start_opcua(opcua, state)
        mqtt.publish_ready(ReadyPayload(ready=False, sku=None, reason=f"safe mode: {safe.reason}"))
        self._write_status("safe_mode", config_hash=boot.config_hash if boot else None, reason=safe.reason)
        self.started.set()
        if self.options.on_started is not None:
            self.options.on_started(self)
        outcome = self.wait(None)
        self.teardown(self._stop_reason if outcome == "stop" else "leaving safe mode (reload)")
        return outcome

    # -- helpers -------------------------------------------------------------------------------------------

    def _write_status(self, status: str, **fields: Any) -> None:
        if self.status_record is not None:
            self.status_record.write(status, **fields)
