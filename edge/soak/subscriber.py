"""The soak's recording subscriber, in its own process, as a PLC or an MES would be.

``python -m edge.soak.subscriber HOST PORT TOPIC_ROOT OUT`` subscribes (QoS 1) to the station's
``verdict``, ``state`` and ``reply`` and appends every message it receives, duplicates included, to ``OUT`` as
one JSON line ``{"at": epoch_s, "topic": "verdict", "retain": false, "body": {...}}``, flushed before the
message is acknowledged: the broker only forgets a message that is on disk here. It prints ``ready`` once the
first subscription is granted and exits on SIGTERM.

It keeps a persistent session (MQTT 5 ``clean_start=false``, session expiry one hour, a fixed client id) so a
broker with persistence redelivers what arrived while the subscriber was cut off, and it subscribes again on
every connect, because a broker restarted without persistence has forgotten the session.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

#: Topics under the station's root that are recorded.
TOPICS: tuple[str, ...] = ("verdict", "state", "reply")
SESSION_EXPIRY_S = 3600


class Recorder:
    """Appends each received message to a JSON-lines file.

    Args:
        out: Open text file the lines go to.
        topic_root: The station's topic root (stripped from recorded topics).

    """

    def __init__(self, out: IO[str], topic_root: str) -> None:
        self._out = out
        self._prefix = topic_root + "/"
        self._lock = threading.Lock()

    def on_message(self, _client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        """Record one message (paho acknowledges a QoS-1 message after this returns)."""
        try:
            body: Any = json.loads(message.payload)
        except ValueError:
            body = {"raw": message.payload.decode("utf-8", "replace")}
        line = {
            "at": time.time(),
            "topic": message.topic.removeprefix(self._prefix),
            "retain": bool(message.retain),
            "body": body,
        }
        with self._lock:
            self._out.write(json.dumps(line) + "\n")
            self._out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Record until SIGTERM."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 4:
        print("usage: python -m edge.soak.subscriber HOST PORT TOPIC_ROOT OUT", file=sys.stderr)
        return 2
    host, port, topic_root, out = args
    stop = threading.Event()
    subscribed = threading.Event()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    with Path(out).open("a", encoding="utf-8") as handle:
        recorder = Recorder(handle, topic_root)
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"edge-soak-recorder-{topic_root.replace('/', '-')}",
            protocol=mqtt.MQTTv5,
        )
        client.on_message = recorder.on_message
        client.on_connect = lambda c, *_: c.subscribe([(f"{topic_root}/{t}", 1) for t in TOPICS])
        client.on_subscribe = lambda *_: subscribed.set()
        client.reconnect_delay_set(1, 2)  # a restarted broker is back within a second or two
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        client.connect(host, int(port), clean_start=False, properties=properties)
        client.loop_start()
        if not subscribed.wait(30):
            print("no subscription within 30 s", file=sys.stderr)
            return 1
        print("ready", flush=True)
        stop.wait()
        client.disconnect()
        client.loop_stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
