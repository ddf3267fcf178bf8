"""A Sparkplug edge node as a real process, so that a test can SIGKILL it and see the broker's NDEATH.

Prints ``BORN <bdSeq file content>`` once NBIRTH and DBIRTH are out, publishes ``--verdicts`` verdicts, then
waits to be killed (or exits after ``--linger-s``).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from edge.mqtt import MqttSettings, VerdictPayload
from edge.mqtt.sparkplug import SparkplugNode, SparkplugSettings


def main() -> int:
    """Start the node, publish, linger."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bd-seq-file", type=Path, required=True)
    parser.add_argument("--verdicts", type=int, default=0)
    parser.add_argument("--linger-s", type=float, default=120.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    connection = MqttSettings(host=args.host, port=args.port, topic_root="t/l/s", client_id="spb-kill-node")
    node = SparkplugNode(SparkplugSettings(connection, "g", "l-s", "inspection", args.bd_seq_file))
    node.start()
    if not node.wait_born(20):
        print(f"NOT BORN {node.last_error}", flush=True)
        return 1
    print("BORN", flush=True)
    for index in range(args.verdicts):
        node.publish_verdict(
            VerdictPayload.uninspected(part_id=f"K{index}", seq=index + 1, reason="kill test")
        )
    print("PUBLISHED", flush=True)
    time.sleep(args.linger_s)
    node.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
