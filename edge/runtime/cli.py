"""``edge run``: run the station."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``edge run``."""
    p = subparsers.add_parser(
        "run",
        help="run the station (capture -> inspection -> MQTT)",
        description="Run the station until SIGTERM/SIGINT. A config that does not load puts the station in "
        "safe mode (state=safe_mode on MQTT) instead of exiting.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--config", type=Path, help="station config file (banks built from its golden folders)"
    )
    where.add_argument("--root", type=Path, help="station root with flashed A/B slots (edge flash)")
    p.add_argument(
        "--simulated-camera",
        action="store_true",
        help="capture from the simulated GenICam camera (viky.cti); without --config/--root, set up a "
        "station on it (station_configs/simulator-data: golden frames enrolled from the simulator, a "
        "local broker) and print its verdicts",
    )
    p.add_argument(
        "--simulator-dir",
        type=Path,
        default=None,
        help="with --simulated-camera and no config: where the simulator station lives "
        "(default station_configs/simulator-data)",
    )
    p.add_argument("--metrics-port", type=int, default=9400, help="Prometheus port (0: any free port)")
    p.add_argument("--no-metrics", action="store_true", help="no Prometheus endpoint")
    p.add_argument("--metrics-bind", default="127.0.0.1", help="address of the Prometheus endpoint")
    p.add_argument("--metrics-interval", type=float, default=5.0, help="seconds between metrics payloads")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--workers", type=int, default=1, help="inspection threads")
    p.add_argument(
        "--queue-size", type=int, default=4, help="parts waiting before new ones are NOT_INSPECTED"
    )
    p.add_argument("--hang-timeout", type=float, default=10.0, help="watchdog limit of one inspection (s)")
    p.add_argument("--validate-payloads", action="store_true", help="check outgoing payloads against schemas")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the station with the parsed arguments."""
    from edge.runtime.app import StationApp
    from edge.runtime.options import RunOptions

    config: Path | None = args.config
    if config is None and args.root is None:
        if not args.simulated_camera:
            log.error("give --config FILE or --root DIR (or --simulated-camera for the simulator station)")
            return 2
        # Supplied by edge.demo (it builds encoders, which the station's layer never does).
        simulator: Callable[[argparse.Namespace], int] | None = getattr(args, "simulator", None)
        if simulator is None:
            log.error("the simulator station is not part of this installation; give --config FILE")
            return 2
        return simulator(args)
    if args.root is not None:
        # A flash cut short (power loss mid-flash) is settled before the station reads its active slot.
        from edge.flash.hooks import find_hooks_dir
        from edge.flash.rollback import resolve_interrupted

        resolve_interrupted(args.root, hooks_dir=find_hooks_dir(args.root))
    options = RunOptions(
        config=config,
        root=args.root,
        simulated_camera=args.simulated_camera,
        metrics_port=None if args.no_metrics else args.metrics_port,
        metrics_bind=args.metrics_bind,
        metrics_interval_s=args.metrics_interval,
        duration_s=args.duration,
        workers=args.workers,
        queue_size=args.queue_size,
        hang_timeout_s=args.hang_timeout,
        validate_outgoing=args.validate_payloads,
    )
    app = StationApp(options)
    code = app.run()
    return leave(code, app.left_running())


def leave(code: int, left_running: Sequence[str]) -> int:
    """Return ``code``, or end the process with it at once when threads are left inside native calls.

    Called when the station has stopped: every verdict is stored and every file closed. A thread still
    inside a native call (an archive encoding, a hung inference) must not outlive the start of interpreter
    finalization: CPython 3.11 ends a daemon thread that comes back from C++ code then with
    ``pthread_exit``, and the unwinding through the C++ frame aborts the process (SIGABRT, "terminate
    called without an active exception"). So the process leaves without finalization (``os._exit``), after
    flushing the log and the standard streams.

    Args:
        code: The station's exit code.
        left_running: What is still running (:meth:`StationApp.left_running`).

    """
    if not left_running:
        return code
    what = ", ".join(left_running)
    log.warning("%s still inside a native call at exit: leaving without finalization", what)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
