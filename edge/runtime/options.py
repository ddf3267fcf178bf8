"""How ``edge run`` runs the station (:class:`RunOptions`), its exit codes, what counts as a start failure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from edge.capture.errors import CaptureError
from edge.inspection.bank import BankError
from edge.inspection.settings import InspectionError
from edge.runtime.pipeline import InspectFn

if TYPE_CHECKING:
    from edge.runtime.app import StationApp

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
