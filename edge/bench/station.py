"""End-to-end benchmark: replay at increasing rates through the whole station to a subscriber.

For each rate the station runs in this process (exactly as ``edge run``: outbox with fsync, MQTT QoS 1,
local Mosquitto), a subscriber in its own process (as a PLC would be) records every verdict, and we report:

* ``sustained_pps``: OK/NG verdicts per second over the measured window (parts actually inspected);
* ``not_inspected``: parts the station could not keep up with (explicit NOT_INSPECTED verdicts);
* ``e2e_ms``: frame timestamp -> verdict received by the subscriber, p50/p99 (inspected parts);
* ``inspect_ms``: the inspection alone (``latency_ms.total``), p50/p99;
* ``mqtt_outbox_ms``: what the publishing path adds after inspection (ordering, outbox fsync, broker, client):
  receipt - (frame timestamp + ``latency_ms.station``), p50/p99.

Latency includes queueing: above the sustainable rate the queue is full and e2e latency grows to about
``queue_size`` inspection times; that is the point where parts start being NOT_INSPECTED.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.runtime.app import StationApp
from edge.runtime.broker import LocalBroker
from edge.runtime.options import RunOptions
from edge.synthetic.console import epoch
from edge.synthetic.workspace import prepare_demo
from export.ensure import ensure_artifacts

log = logging.getLogger(__name__)


def _setter(event: threading.Event) -> Callable[[object], None]:
    return lambda _app: event.set()


def _pcts(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None}
    p50, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 99])
    return {"p50": round(float(p50), 1), "p99": round(float(p99), 1)}


def _start_subscriber(host: str, port: int, topic_root: str, out: Path) -> subprocess.Popen[str]:
    """Start the subscriber process (:mod:`edge.bench.subscriber`) and wait until it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.bench.subscriber", host, str(port), topic_root, str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"the benchmark subscriber did not subscribe (exit {proc.wait()})")
    return proc


def _stop_subscriber(proc: subprocess.Popen[str], out: Path) -> dict[str, tuple[float, dict[str, Any]]]:
    """Stop the subscriber; what it received: ``{part_id: (received epoch s, verdict body)}``."""
    proc.terminate()
    code = proc.wait(30)
    if proc.stdout is not None:
        proc.stdout.close()
    if code != 0:
        raise RuntimeError(f"the benchmark subscriber failed (exit {proc.returncode})")
    data = json.loads(out.read_text())
    return {pid: (float(at), body) for pid, (at, body) in data.items()}


def bench_end_to_end(
    rates: Sequence[float] = (5, 10, 15, 20, 25),
    seconds: float = 20.0,
    *,
    warmup_s: float = 3.0,
    workers: int = 1,
    queue_size: int = 4,
    workdir: Path | None = None,
) -> list[dict[str, Any]]:
    """Run the station at each replay rate for ``seconds`` and measure it from a subscriber.

    Args:
        rates: Replay rates (frames per second) to try.
        seconds: Measured time per rate (after ``warmup_s``).
        warmup_s: Verdicts of frames captured in the first seconds are not counted.
        workers: Inspection threads.
        queue_size: Inspection queue length.
        workdir: Where the synthetic data, banks and outbox go (a temporary folder by default).

    Returns:
        One dict per rate (see the module docstring for the fields).

    """
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="edge-bench-")
        workdir = Path(tmp.name)
    rows = []
    try:
        with LocalBroker(workdir / "broker") as broker:
            for rate in rates:
                workspace = prepare_demo(workdir / "station", broker=(broker.host, broker.port), fps=rate)
                ensure_artifacts(workspace.model_spec(), workspace.artifact_dir)  # the station only loads
                received_file = workdir / f"received-{rate}.json"
                subscriber = _start_subscriber(broker.host, broker.port, workspace.topic_root, received_file)
                app = StationApp(
                    RunOptions(
                        config=workspace.config,
                        duration_s=None,
                        metrics_port=None,
                        install_signals=False,
                        workers=workers,
                        queue_size=queue_size,
                        drain_timeout_s=5.0,
                    )
                )
                started = threading.Event()
                app.options.on_started = _setter(started)
                runner = threading.Thread(target=app.run, name="bench-station", daemon=True)
                runner.start()
                if not started.wait(300):
                    raise RuntimeError("the station did not start within 300 s")
                t0 = time.time()
                time.sleep(warmup_s + seconds)
                app.request_stop("benchmark done")
                runner.join(60)
                time.sleep(0.5)
                received = _stop_subscriber(subscriber, received_file)
                if app.safe_mode is not None:
                    raise RuntimeError(f"station in safe mode: {app.safe_mode.reason}")
                lo, hi = t0 + warmup_s, t0 + warmup_s + seconds
                window = [
                    (body, at)
                    for at, body in received.values()
                    if body.get("frame_ts") and lo <= epoch(body["frame_ts"]) < hi
                ]
                inspected = [(b, r) for b, r in window if b["verdict"] in ("OK", "NG")]
                e2e = [(r - epoch(b["frame_ts"])) * 1e3 for b, r in inspected]
                inspect = [b["latency_ms"]["total"] for b, _ in inspected]
                overhead = [
                    (r - epoch(b["frame_ts"])) * 1e3 - b["latency_ms"]["station"] for b, r in inspected
                ]
                row = {
                    "rate_fps": rate,
                    "parts": len(window),
                    "sustained_pps": round(len(inspected) / seconds, 2),
                    "not_inspected": sum(b["verdict"] == "NOT_INSPECTED" for b, _ in window),
                    "errors": sum(b["verdict"] == "ERROR" for b, _ in window),
                    "e2e_ms": _pcts(e2e),
                    "inspect_ms": _pcts(inspect),
                    "mqtt_outbox_ms": _pcts(overhead),
                    "workers": workers,
                }
                log.info("bench %s", row)
                rows.append(row)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table of :func:`bench_end_to_end` results."""
    lines = [
        "| rate fps | inspected pps | not inspected | e2e p50 / p99 ms | inspect p50 / p99 ms "
        "| MQTT+outbox p50 / p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rate_fps']} | {r['sustained_pps']} | {r['not_inspected']}/{r['parts']} | "
            f"{r['e2e_ms']['p50']} / {r['e2e_ms']['p99']} | "
            f"{r['inspect_ms']['p50']} / {r['inspect_ms']['p99']} | "
            f"{r['mqtt_outbox_ms']['p50']} / {r['mqtt_outbox_ms']['p99']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # python -m edge.bench.station
    logging.basicConfig(level=logging.WARNING)
    print(format_table(bench_end_to_end()))
