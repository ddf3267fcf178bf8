"""``edge run --simulated-camera`` without a config: a whole station on the GenICam simulator.

It goes the way a line engineer sets up a new product at a station:

1. writes a station config for the simulated camera (``viky.cti`` from the ``genicam`` wheel, the real
   harvesters + GenTL path) under ``station_configs/simulator-data/`` (:mod:`edge.synthetic.simulator`);
2. enrolls golden frames of the simulator's part from the camera, with the checks of ``edge enroll``
   (focus, clipping, near-duplicates, odd ones out), unless an earlier run enrolled them;
3. builds the encoders (once), starts a local Mosquitto (no broker is configured), and runs the station,
   which builds and self-tests the golden bank and then inspects every frame;
4. prints every verdict as received back from the broker, and a summary at the end (``--duration`` or
   Ctrl-C).

What the verdicts mean: the simulator's part is a white field with a square that keeps moving. The golden
frames show the square along the stretch of its path it covered during enrollment; while it stays there the
parts are OK, and once it moves where no golden frame had it (it bounces off an edge and comes back on
another line) the station flags the part NG with a box on the square, as it would a component that sits
where no good part has it. Enroll again (delete the golden folder) and the first stretch is another one.

This lives above the station's layer (``edge.runtime`` never builds encoders): :mod:`edge.demo` hands
:func:`run_simulator` to ``edge run``'s parser.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from edge.synthetic.console import LEGEND, ConsoleView
from edge.synthetic.simulator import (
    ENROLL_FRAMES,
    ENROLL_INTERVAL_S,
    ENROLL_WARMUP_S,
    SIMULATOR_WORKDIR,
    SKU,
    SimulatorWorkspace,
    prepare_simulator,
)

#: Printed before the verdicts: what a newcomer should expect to see.
MEANING = (
    "the golden frames show the square along the stretch of its path seen while enrolling: parts are OK "
    "while it stays there,\nand NG (a box on the square) once it moves where no golden frame had it, as a "
    "misplaced component would be"
)


def run_simulator(args: argparse.Namespace) -> int:
    """Run the simulator station with ``edge run``'s parsed arguments; returns the exit code."""
    # Imported here, not at module level: every `edge` command imports this module (through edge.demo).
    from edge.capture.settings import simulated_cti
    from edge.runtime.app import StationApp
    from edge.runtime.broker import BrokerUnavailable, LocalBroker
    from edge.runtime.cli import leave
    from edge.runtime.options import RunOptions
    from export.ensure import ensure_artifacts

    workdir: Path = getattr(args, "simulator_dir", None) or SIMULATOR_WORKDIR
    try:
        cti = simulated_cti()
    except (FileNotFoundError, ImportError) as exc:
        print(f"edge run --simulated-camera: {exc} (make install installs it)", file=sys.stderr)
        return 2
    try:
        broker = LocalBroker(workdir / "broker").start()
    except BrokerUnavailable as exc:
        print(f"edge run --simulated-camera: {exc}", file=sys.stderr)
        return 2
    try:
        workspace = prepare_simulator(workdir, cti=cti, broker=(broker.host, broker.port))
        print(
            f"simulator station under {workdir}: camera {cti.name} (GenICam simulator), SKU '{SKU}', "
            f"local broker {broker.host}:{broker.port}"
        )
        if workspace.golden_count() >= 2:
            print(
                f"golden frames: {workspace.golden_count()} enrolled earlier in {workspace.golden_dir} "
                "(delete that folder to enroll again)"
            )
        elif not _enroll(workspace):
            return 1
        ensure_artifacts(workspace.model_spec(), workspace.artifact_dir)
        view = ConsoleView(broker.host, broker.port, workspace.topic_root)
        app = StationApp(
            RunOptions(
                config=workspace.config,
                metrics_port=None if args.no_metrics else args.metrics_port,
                metrics_bind=args.metrics_bind,
                metrics_interval_s=args.metrics_interval,
                duration_s=args.duration,
                workers=args.workers,
                queue_size=args.queue_size,
                hang_timeout_s=args.hang_timeout,
                validate_outgoing=args.validate_payloads,
            )
        )
        until = f"for {args.duration:g} s" if args.duration is not None else "until Ctrl-C"
        print(
            f"station starting {until} (the first run builds the golden bank); "
            f"verdicts on {workspace.topic_root}/verdict:"
        )
        print(MEANING)
        print(LEGEND)
        code = app.run()
        time.sleep(0.5)  # the last QoS-1 deliveries after the outbox flush
        view.close()
        print("\n" + view.summary())
        if app.safe_mode is not None:
            print(f"the station was in SAFE MODE: {app.safe_mode.reason}", file=sys.stderr)
            code = code or 1
        return leave(code, app.left_running())
    finally:
        broker.stop()


def _enroll(workspace: SimulatorWorkspace) -> bool:
    """Capture and check golden frames from the simulator into the SKU's golden folder; ``True`` if enough."""
    from edge.config.errors import ConfigError
    from edge.config.loader import load_config
    from edge.config.resolve import default_allowed_roots, resolve_config
    from edge.enroll.checks import check_frames
    from edge.enroll.golden import EnrollError, capture_from_camera, summary, write_golden

    print(f"enrolling {ENROLL_FRAMES} golden frames from the simulator, {ENROLL_INTERVAL_S:g} s apart ...")
    try:
        config = load_config(workspace.config)
        resolved = resolve_config(
            config,
            source=workspace.config,
            roots=default_allowed_roots(workspace.config),
            check_golden=False,
        )
        frames = capture_from_camera(resolved, ENROLL_FRAMES, ENROLL_INTERVAL_S, ENROLL_WARMUP_S)
        checks = check_frames(frames)
        kept = [(c, image) for c, (_, image) in zip(checks, frames, strict=True) if c.kept]
        written = write_golden(workspace.golden_dir, SKU, kept)
    except (ConfigError, EnrollError) as exc:
        print(f"edge run --simulated-camera: enrollment failed: {exc}", file=sys.stderr)
        return False
    print(summary(checks, workspace.golden_dir, written, dry_run=False, next_step=None))
    return len(written) >= 2
