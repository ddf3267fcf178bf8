"""``edge demo`` (``make demo``): the whole station on this machine, with nothing but the repository.

1. generates a synthetic SKU (golden parts, good and defective test parts) under
   ``station_configs/demo-data/`` (where ``station_configs/demo.yaml`` points);
2. writes a demo station config (from ``station_configs/demo.yaml``) replaying those parts at ``--fps``;
3. starts a local MQTT broker (Mosquitto on a free loopback port) unless ``--broker HOST:PORT`` is given;
4. runs the station in this process and, beside it, a subscriber that prints every verdict *as received back
   from the broker* (part, verdict, score, boxes, frame-to-receipt latency);
5. stops after ``--duration`` seconds or ``--parts`` verdicts, cleanly, and prints a summary.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.review.auth import hash_password
from edge.synthetic.console import LEGEND, ConsoleView
from edge.synthetic.workspace import DEMO_WORKDIR, SKU, prepare_demo, replay_truth
from edge.synthetic.workspace import first_seq as workspace_first_seq

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoReview:
    """The demo's review UI: where it listens and the accounts made for this run (passwords shown once)."""

    url: str
    passwords: dict[str, str]  # user -> password (the config holds only their hashes)


def _demo_review(port: int) -> tuple[dict[str, Any], DemoReview]:
    """The review UI on loopback with an operator and an engineer account made for this run."""
    passwords = {"operator": secrets.token_urlsafe(9), "engineer": secrets.token_urlsafe(9)}
    section = {
        "enabled": True,
        "bind": "127.0.0.1",  # this machine only: no TLS needed
        "port": port,
        "users": [
            {"name": name, "role": name, "password_hash": hash_password(password)}
            for name, password in passwords.items()
        ],
    }
    return section, DemoReview(f"http://127.0.0.1:{port}/", passwords)


def run_demo(
    workdir: Path,
    duration_s: float | None,
    parts: int | None,
    fps: float,
    broker: tuple[str, int] | None,
    review: bool = True,
) -> int:
    """Run the demo; returns the exit code."""
    # Imported when the demo runs, not when `edge` builds its parser: torch (export) and the station are
    # heavy, and every `edge` command imports this module to register `edge demo`.
    from edge.runtime.app import StationApp
    from edge.runtime.broker import BrokerUnavailable, LocalBroker, free_port
    from edge.runtime.options import RunOptions
    from export.ensure import ensure_artifacts

    local = None
    if broker is None:
        try:
            local = LocalBroker(workdir / "broker").start()
        except BrokerUnavailable as exc:
            print(f"edge demo: {exc}", file=sys.stderr)
            return 2
        broker = (local.host, local.port)
    try:
        print(
            f"preparing the demo under {workdir} (synthetic SKU '{SKU}', broker {broker[0]}:{broker[1]}) ..."
        )
        section, ui = _demo_review(free_port()) if review else (None, None)
        workspace = prepare_demo(workdir, broker=broker, fps=fps, review=section)
        # The station only loads its encoders: the demo builds them first (once; reused while the model
        # code is unchanged).
        ensure_artifacts(workspace.model_spec(), workspace.artifact_dir)
        view = ConsoleView(
            broker[0],
            broker[1],
            workspace.topic_root,
            truth=replay_truth(workspace.replay_dir, workspace_first_seq(workspace.root / "var" / "data")),
        )
        app = StationApp(
            RunOptions(config=workspace.config, duration_s=duration_s, metrics_port=0, validate_outgoing=True)
        )
        if parts is not None:
            view.stop_after(parts, lambda: app.request_stop("station stopped (demo part count reached)"))
        print(
            f"station starting (the first run builds the golden bank); "
            f"verdicts on {workspace.topic_root}/verdict:"
        )
        if ui is not None:
            accounts = ", ".join(f"{u} / {p}" for u, p in ui.passwords.items())
            print(f"review UI: {ui.url}  (accounts for this run: {accounts})")
        print(LEGEND)
        code = app.run()
        time.sleep(0.5)  # the last QoS-1 deliveries after the outbox flush
        view.close()
        print("\n" + view.summary())
        if app.safe_mode is not None:
            print(f"the station was in SAFE MODE: {app.safe_mode.reason}", file=sys.stderr)
            return 1
        return code
    finally:
        if local is not None:
            local.stop()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``edge demo``."""
    p = subparsers.add_parser(
        "demo",
        help="run the whole station on synthetic parts (make demo)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("--workdir", type=Path, default=DEMO_WORKDIR, help="where the demo data goes")
    p.add_argument("--duration", type=float, default=20.0, help="seconds to run (default 20)")
    p.add_argument("--parts", type=int, default=None, help="stop after this many verdicts")
    p.add_argument("--fps", type=float, default=4.0, help="replay rate of the synthetic parts")
    p.add_argument("--broker", default=None, help="use this broker HOST:PORT instead of a local Mosquitto")
    p.add_argument(
        "--serve",
        action="store_true",
        help="keep the station and its review UI running until Ctrl-C (instead of --duration)",
    )
    p.add_argument("--no-review", action="store_true", help="do not start the review UI")
    p.set_defaults(func=_main)
    run = subparsers.choices.get("run")
    if run is not None:
        # `edge run --simulated-camera` without a config stands a station up on the simulator, which needs
        # the export toolchain (encoders built on first use): above the station's layer, so handed over here.
        from edge.simulator import run_simulator

        run.set_defaults(simulator=run_simulator)


def _main(args: argparse.Namespace) -> int:
    broker = None
    if args.broker:
        host, _, port = args.broker.rpartition(":")
        broker = (host or "localhost", int(port))
    logging.getLogger().setLevel(logging.WARNING if not args.verbose else logging.DEBUG)
    duration = None if args.serve else args.duration
    return run_demo(args.workdir, duration, args.parts, args.fps, broker, review=not args.no_review)
