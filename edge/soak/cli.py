"""``edge soak`` (``make soak``): the station under injected faults on loopback, and what held.

Every scenario runs the real thing: a Mosquitto broker (:class:`edge.runtime.broker.LocalBroker`), the
station as a subprocess (``python -m edge.cli run --config ...``) replaying a folder of generated parts (the
demo's synthetic SKU, :func:`edge.synthetic.workspace.prepare_demo`) without looping, and a recording
subscriber in its own process (:mod:`edge.soak.subscriber`: QoS 1, persistent session, every message on
disk). A fault is injected while parts flow; then the station ends its replay (or is stopped) and the run is
accounted from what the subscriber received:

* **parts produced**: the sequence numbers the station allocated, per station process: from the first number
  of that start (``part-counter.json`` before it starts) up to the highest one seen (received, or still in the
  outbox). A killed station skips the rest of its counter block, which is not a loss;
* **verdicts received**: distinct ``part_id`` on ``verdict``; **duplicates**: further copies (QoS 1 allows
  them: a message in flight when a connection breaks is sent again);
* **lost**: produced sequence numbers with no verdict; **no verdict**: frames the replay served in a run that
  ended by itself (the folder's image count) minus the verdicts of that run, so a frame that never became a
  part counts too;
* **out of order**: first arrivals whose ``seq`` is below one that arrived before them;
* **faults raised**: ``state`` messages with status ``fault`` or ``safe_mode``;
* **kept**: messages left in the station's outbox after its last stop (undelivered).

Scenarios (``SCENARIOS``): ``broker-kill`` (SIGKILL twice, restarted, no persistence),
``broker-kill-persistent`` (the same with persistence), ``station-kill`` (SIGKILL, restart on the same
data), ``malformed-commands``
(a flood of bad commands on ``cmd/*``: every one answered on ``reply``, verdicts keep flowing), ``bad-frames``
(corrupt, truncated, and a 69-byte PNG claiming 50000x50000 pixels: an ``ERROR`` verdict each),
``acl-denial`` (the broker denies ``verdict`` for a while: refused verdicts kept, ``state`` says ``fault``,
all delivered once allowed), ``tls-wrong-ca`` (the station trusts another CA: it must not connect, keeps every
verdict, delivers all after a restart with the right CA) and, in the full run only, ``huge-frame`` (a valid
12000x12000 PNG among the parts: refused by ``camera.max_frame_pixels`` before decoding, an ``ERROR``
verdict). A scenario *held* when nothing was lost, no part lacks a verdict, nothing is kept, and its own
checks passed.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from edge.soak.accounting import (
    FULL,
    SCENARIO_NAMES,
    SHORT,
    SHORT_SCENARIO_NAMES,
    ScenarioResult,
    format_table,
)

log = logging.getLogger(__name__)


def run_soak(
    workdir: Path, *, short: bool = False, scenarios: Sequence[str] | None = None
) -> list[ScenarioResult]:
    """Run the scenarios (all of the chosen version by default) and return what each produced.

    A scenario that cannot run to its end (a timeout, a station that never came online) is reported as
    not held with the reason, and the soak goes on with the next one.
    """
    # The scenarios build the encoders (torch): imported when a soak runs, not when `edge` builds its parser.
    from edge.soak.scenarios import SCENARIOS, Soak

    soak = Soak(workdir, SHORT if short else FULL)
    names = list(scenarios) if scenarios else list(SHORT_SCENARIO_NAMES if short else SCENARIO_NAMES)
    results = []
    for name in names:
        started = time.monotonic()
        log.info("soak: %s ...", name)
        try:
            result = SCENARIOS[name](soak)
        except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as exc:
            result = ScenarioResult(name, checks=[f"did not run to its end: {exc}"])
        result.seconds = round(time.monotonic() - started, 1)
        log.info("soak: %s %s", name, "held" if result.held else f"FAILED {result.checks}")
        results.append(result)
    return results


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``edge soak``."""
    p = subparsers.add_parser(
        "soak",
        help="fault-injection run of the station on loopback (make soak)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("--short", action="store_true", help="the few-minute version (make test runs it)")
    p.add_argument(
        "--scenario", action="append", choices=sorted(SCENARIO_NAMES), help="run only this one (repeatable)"
    )
    p.add_argument("--workdir", type=Path, default=Path("runs/soak"), help="where data and logs go")
    p.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    results = run_soak(args.workdir, short=args.short, scenarios=args.scenario)
    print(format_table(results))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps([{**asdict(r), "held": r.held} for r in results], indent=2) + "\n", encoding="utf-8"
        )
    return 0 if all(r.held for r in results) else 1
