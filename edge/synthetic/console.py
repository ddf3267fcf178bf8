"""What a subscriber of the station's ``verdict`` and ``state`` topics sees, printed line by line.

The demo prints it; the bench's subscriber process records with it. A paho client of its own, in the
subscriber's place (a PLC or HMI), never inside the station.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class ConsoleView:
    """Subscribes to the station's verdicts and state and prints them as they arrive from the broker."""

    def __init__(
        self,
        host: str,
        port: int,
        topic_root: str,
        out: Any = sys.stdout,
        quiet: bool = False,
        truth: Callable[[int], tuple[str, str] | None] | None = None,
    ) -> None:
        self.topic_root = topic_root
        self.out = out
        self.quiet = quiet
        self.truth = truth  # seq -> (replayed file, what the demo knows the part to be)
        self.verdicts: dict[str, dict[str, Any]] = {}
        self.received_at: dict[str, float] = {}
        self.latencies_ms: list[float] = []
        self.states: list[str] = []
        self.duplicates = 0
        self._lock = threading.Lock()
        self._limit: tuple[int, Any] | None = None
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id="edge-demo-view", protocol=mqtt.MQTTv5
        )
        self.subscribed = threading.Event()  # set once the broker granted the subscriptions
        self._client.on_connect = lambda c, *_: c.subscribe(
            [(f"{topic_root}/verdict", 1), (f"{topic_root}/state", 1)]
        )
        self._client.on_subscribe = lambda *_: self.subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(host, port)
        self._client.loop_start()

    def stop_after(self, parts: int, stop: Any) -> None:
        """Call ``stop()`` once ``parts`` distinct verdicts have arrived."""
        self._limit = (parts, stop)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        received = time.time()
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        if message.topic.endswith("/state"):
            line = f"  state: {body.get('status')}" + (f" ({body['reason']})" if body.get("reason") else "")
            self.states.append(str(body.get("status")))
            if not self.quiet:
                print(line, file=self.out, flush=True)
            return
        with self._lock:
            if body["part_id"] in self.verdicts:
                self.duplicates += 1  # QoS 1 redelivery: drop by part_id, as the contract says
                return
            self.verdicts[body["part_id"]] = body
            self.received_at[body["part_id"]] = received
            latency = None
            if body.get("frame_ts"):
                latency = (received - epoch(body["frame_ts"])) * 1e3
                self.latencies_ms.append(latency)
            count = len(self.verdicts)
        if not self.quiet:
            known = self.truth(int(body["seq"])) if self.truth is not None else None
            print(_row(body, latency, known), file=self.out, flush=True)
        if self._limit is not None and count >= self._limit[0]:
            self._limit[1]()

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()

    def summary(self) -> str:
        """Summarise: counts per verdict, the verdicts against the known answers, latency percentiles."""
        counts = Counter(v["verdict"] for v in self.verdicts.values())
        parts = ", ".join(f"{k} {counts[k]}" for k in VERDICTS)
        text = f"{len(self.verdicts)} parts received from the broker: {parts}"
        if self.truth is not None:
            text += "\n" + self.confusion()
        if self.latencies_ms:
            p50, p99 = np.percentile(self.latencies_ms, [50, 99])
            text += f"\nframe -> subscriber latency: p50 {p50:.0f} ms, p99 {p99:.0f} ms"
        if self.duplicates:
            text += f"\n{self.duplicates} QoS-1 duplicate(s) dropped by part_id"
        return text

    def confusion(self) -> str:
        """Verdicts against what the demo knows each part to be (good, or which defect)."""
        table: dict[str, Counter[str]] = {}
        for body in self.verdicts.values():
            known = self.truth(int(body["seq"])) if self.truth is not None else None
            row = "unknown" if known is None else ("good" if known[1] == "good" else "defective")
            table.setdefault(row, Counter())[body["verdict"]] += 1
        lines = [f"{'known to be':<14}" + "".join(f"{v:>15}" for v in VERDICTS)]
        for row in ("good", "defective", "unknown"):
            if row in table:
                lines.append(f"{row:<14}" + "".join(f"{table[row][v]:>15}" for v in VERDICTS))
        good, bad = table.get("good", Counter()), table.get("defective", Counter())
        right = good["OK"] + bad["NG"]
        judged = sum(good[v] + bad[v] for v in ("OK", "NG"))
        if judged:
            missed, false_ng = bad["OK"], good["NG"]
            lines.append(
                f"right {right} of {judged} inspected ({missed} defective passed, {false_ng} good flagged)"
            )
        return "\n".join(lines)


#: Verdict columns of the console summary.
VERDICTS = ("OK", "NG", "NOT_INSPECTED", "ERROR")
#: One line printed before the verdicts, so that a newcomer can read them.
LEGEND = (
    "  part                 replayed file         known to be   verdict       score / threshold"
    "   latency  right?    boxes [x,y wxh]"
)


def epoch(iso: str) -> float:
    """Epoch seconds of an ISO 8601 UTC timestamp of the contract."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _row(body: dict[str, Any], latency: float | None, known: tuple[str, str] | None = None) -> str:
    verdict = body["verdict"]
    score = "" if body.get("score") is None else f"{body['score']:7.2f} / {body['threshold']:.2f}"
    boxes = body.get("boxes") or []
    box_text = " ".join(f"[{b[0]},{b[1]} {b[2]}x{b[3]}]" for b in boxes[:3]) + (
        " ..." if len(boxes) > 3 else ""
    )
    lat = "" if latency is None else f"{latency:5.0f} ms"
    reason = f"  ({body['reason']})" if body.get("reason") else ""
    file, label = known or ("", "")
    right = ""
    if known is not None and verdict in ("OK", "NG"):
        right = (
            "yes" if (verdict == "NG") == (label != "good") else ("MISSED" if verdict == "OK" else "FALSE NG")
        )
    return (
        f"  {body['part_id']:<20} {file:<21} {label:<13} {verdict:<13} {score:<19} {lat:>8}  {right:<8}  "
        f"{box_text}{reason}"
    )
