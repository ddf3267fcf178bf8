"""A minimal station for the kill tests: streams numbered verdicts through the outbox, then exits 0.

Run as a real process (``python tests/mqtt/stream_publisher.py ...``) so that a test can SIGKILL it. The next
part number is kept in ``--progress`` (written after each part is in the outbox), so a restarted process
continues where the killed one stopped; a part put just before the kill may be put twice, a duplicate that
QoS 1 subscribers must tolerate anyway.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from edge.mqtt import MqttSettings, Outbox, StationMqtt, VerdictPayload


def part_id(index: int) -> str:
    """The part id of part number ``index``."""
    return f"P{index:06d}"


def main() -> int:
    """Stream the remaining parts, wait until all are acknowledged, exit 0."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--progress", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--interval-s", type=float, default=0.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    start = int(args.progress.read_text()) if args.progress.exists() else 0
    settings = MqttSettings(
        host=args.host,
        port=args.port,
        topic_root=args.root,
        client_id="stream-station",
        reconnect_min_s=1,
        reconnect_max_s=2,
    )
    with Outbox(args.outbox) as outbox:
        print(f"START {start} backlog={outbox.depth()}", flush=True)
        station = StationMqtt(settings, outbox)
        station.start()
        for index in range(start, args.count):
            station.publish_verdict(
                VerdictPayload.uninspected(part_id=part_id(index), seq=index, reason="stream test part")
            )
            tmp = args.progress.with_suffix(".tmp")
            tmp.write_text(str(index + 1))
            tmp.replace(args.progress)
            if args.interval_s:
                time.sleep(args.interval_s)
        while not station.wait_drained(1.0):
            pass
        print("DONE", flush=True)
        station.stop(flush_timeout_s=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
