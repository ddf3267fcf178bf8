"""The benchmark's subscriber, in its own process, as a PLC or HMI would be.

``python -m edge.bench.subscriber HOST PORT TOPIC_ROOT OUT`` subscribes to the station's verdicts,
prints ``ready`` once the broker granted the subscription, and on SIGTERM writes every verdict it received
with its arrival time (``{"part_id": [received_epoch_s, body], ...}``) to ``OUT``. In the station's own
process the subscriber would compete with inspection for the interpreter and inflate the measured publishing
latency; a real subscriber never does.
"""

from __future__ import annotations

import io
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from edge.synthetic.console import ConsoleView


def main(argv: Sequence[str] | None = None) -> int:
    """Run until SIGTERM, then write what arrived."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 4:
        print("usage: python -m edge.bench.subscriber HOST PORT TOPIC_ROOT OUT", file=sys.stderr)
        return 2
    host, port, topic_root, out = args
    stop = threading.Event()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    view = ConsoleView(host, int(port), topic_root, out=io.StringIO(), quiet=True)
    if not view.subscribed.wait(30):
        print("no subscription within 30 s", file=sys.stderr)
        return 1
    print("ready", flush=True)
    stop.wait()
    view.close()
    received = {pid: [view.received_at[pid], body] for pid, body in view.verdicts.items()}
    tmp = Path(out).with_suffix(".tmp")
    tmp.write_text(json.dumps(received))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
