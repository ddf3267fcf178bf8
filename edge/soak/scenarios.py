"""The soak's scenarios: one injected fault each (:mod:`edge.soak.cli` lists them and what "held" means)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import cv2
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.mqtt.outbox import Outbox
from edge.runtime.broker import LocalBroker, make_certs
from edge.soak.accounting import Run, ScenarioResult
from edge.soak.harness import SoakWorkspace, Station, bomb_png


class Soak(SoakWorkspace):
    """Runs the scenarios in ``workdir`` (:class:`SoakWorkspace` holds what they share)."""

    def broker_kill(self, persistent: bool) -> ScenarioResult:
        """SIGKILL the broker twice while parts flow; restart it on the same port each time."""
        name = "broker-kill-persistent" if persistent else "broker-kill"
        result = ScenarioResult(name)
        sdir = self._dir(name)
        frames = self.replay(sdir / "replay", self.settings.frames)
        broker = LocalBroker(sdir / "broker", persistence=persistent).start()
        try:
            config = self.config(sdir, broker.port)
            with self.subscriber(broker.host, broker.port, sdir) as rec:
                station = Station(config, sdir / "station.log")
                runs = [Run(self.first_seq(sdir), frames)]
                station.start()
                self.online(rec, station)
                for fraction in (0.3, 0.6):
                    wanted = int(frames * fraction)
                    rec.wait(lambda: rec.verdict_count() >= wanted, 120, "verdicts")  # noqa: B023 (now)
                    broker.kill()
                    time.sleep(1.0)  # parts keep coming; their verdicts wait in the outbox
                    broker.restart()
                code = self._run_to_end(station)
                if code != 0:
                    result.checks.append(f"station exit code {code}")
            return self.finish(result, rec, sdir, runs)
        finally:
            broker.stop()

    def station_kill(self) -> ScenarioResult:
        """SIGKILL the station mid-run, start it again on the same data folder (it replays the folder)."""
        result = ScenarioResult("station-kill")
        sdir = self._dir(result.name)
        frames = self.replay(sdir / "replay", self.settings.frames)
        with LocalBroker(sdir / "broker") as broker:
            config = self.config(sdir, broker.port)
            with self.subscriber(broker.host, broker.port, sdir) as rec:
                station = Station(config, sdir / "station.log")
                runs = [Run(self.first_seq(sdir), None)]
                station.start()
                self.online(rec, station)
                rec.wait(lambda: rec.verdict_count() >= frames // 3, 120, "verdicts")
                station.kill()
                runs.append(Run(self.first_seq(sdir), frames))
                station.start()
                self.online(rec, station, after=1)
                code = self._run_to_end(station)
                if code != 0:
                    result.checks.append(f"station exit code {code}")
            return self.finish(result, rec, sdir, runs)

    def malformed_commands(self) -> ScenarioResult:
        """A flood of malformed commands on ``cmd/*`` while parts flow: each answered, verdicts flow."""
        result = ScenarioResult("malformed-commands")
        sdir = self._dir(result.name)
        frames = self.replay(sdir / "replay", self.settings.frames)
        root = self.topic_root
        bad: list[tuple[str, bytes]] = [
            (f"{root}/cmd/sku", b"{not json"),
            (f"{root}/cmd/sku", json.dumps({"sku": 42}).encode()),
            (f"{root}/cmd/sku", json.dumps({"sku": "no-such-sku"}).encode()),
            (f"{root}/cmd/trigger", b"x" * 5000),
            (f"{root}/cmd/ack", json.dumps({"part_id": 7, "extra": True}).encode()),
            (f"{root}/cmd/launch", b"{}"),
            (f"{root}/cmd/pause", b"\xff\xfe\x00"),
            (f"{root}/cmd/reload", b"[1, 2, 3]"),
        ]
        with LocalBroker(sdir / "broker") as broker:
            config = self.config(sdir, broker.port)
            with self.subscriber(broker.host, broker.port, sdir) as rec:
                station = Station(config, sdir / "station.log")
                runs = [Run(self.first_seq(sdir), frames)]
                station.start()
                self.online(rec, station)
                rec.wait(lambda: rec.verdict_count() >= frames // 4, 120, "verdicts")
                client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
                client.connect(broker.host, broker.port)
                client.loop_start()
                before = rec.verdict_count()
                flood_start = time.time()
                for i in range(self.settings.commands):
                    topic, payload = bad[i % len(bad)]
                    client.publish(topic, payload, qos=1).wait_for_publish(10)
                    time.sleep(0.002)  # a fast PLC gone mad, not a benchmark of the broker
                flood_s = time.time() - flood_start
                client.disconnect()
                client.loop_stop()
                during = rec.verdict_count() - before
                sent = self.settings.commands
                rec.wait(lambda: len(rec.on("reply")) >= sent, 60, f"{sent} replies")
                code = self._run_to_end(station)
                if code != 0:
                    result.checks.append(f"station exit code {code}")
            replies = rec.on("reply")
            answered_wrongly = sum(r.get("ok") is not False for r in replies)
            if len(replies) != sent or answered_wrongly:
                result.checks.append(f"{len(replies)} replies to {sent} bad commands, {answered_wrongly} ok")
            if during == 0:
                result.checks.append("no verdict arrived during the flood")
            result.notes.append(
                f"{sent} bad commands in {flood_s:.1f} s, {len(replies)} error replies, "
                f"{during} verdicts during the flood"
            )
            return self.finish(result, rec, sdir, runs)

    def bad_frames(self, huge: bool = False) -> ScenarioResult:
        """Unreadable frames among the parts (or one huge valid frame): one ERROR verdict each."""
        result = ScenarioResult("huge-frame" if huge else "bad-frames")
        sdir = self._dir(result.name)
        frames = self.settings.frames
        if huge:
            ok, png = cv2.imencode(".png", np.full((12000, 12000, 3), 128, np.uint8))
            assert ok
            extra = {f"{frames // 2:05d}_huge.png": png.tobytes()}
        else:
            valid = self.images[0].read_bytes()
            extra = {
                f"{frames // 4:05d}_corrupt.png": b"\x89PNG\r\n\x1a\n" + os.urandom(2048),
                f"{frames // 2:05d}_truncated.png": valid[: len(valid) // 2],
                f"{3 * frames // 4:05d}_bomb.png": bomb_png(),
            }
        total = self.replay(sdir / "replay", frames, extra)
        with LocalBroker(sdir / "broker") as broker:
            config = self.config(sdir, broker.port)
            with self.subscriber(broker.host, broker.port, sdir) as rec:
                station = Station(config, sdir / "station.log")
                runs = [Run(self.first_seq(sdir), total)]
                station.start()
                self.online(rec, station)
                code = self._run_to_end(station)
                if code != 0:
                    result.checks.append(f"station exit code {code}")
            result = self.finish(result, rec, sdir, runs)
        reasons = [v.get("reason") or "" for v in rec.on("verdict") if v["verdict"] == "ERROR"]
        if result.errors != len(extra):
            result.checks.append(f"{result.errors} ERROR verdicts for {len(extra)} bad frames")
        result.notes.append(
            f"{len(extra)} bad frame(s) among {frames}: " + "; ".join(sorted(set(reasons)))[:300]
        )
        return result

    def acl_denial(self) -> ScenarioResult:
        """The broker denies the station the verdict topic for ``deny_s``, then allows it."""
        result = ScenarioResult("acl-denial")
        sdir = self._dir(result.name)
        # Long enough that the refused verdicts' retry (every 30 s) comes while the station still runs.
        frames = max(self.settings.frames, int((self.settings.deny_s + 40) * self.settings.fps))
        frames = self.replay(sdir / "replay", frames)
        root = self.topic_root
        allow = "topic read #\ntopic write #\n"
        deny = "topic read #\n" + "".join(
            f"topic write {root}/{t}\n" for t in ("state", "result", "ready", "metrics", "reply", "review")
        )
        with LocalBroker(sdir / "broker", acl=allow) as broker:
            config = self.config(sdir, broker.port)
            with self.subscriber(broker.host, broker.port, sdir) as rec:
                station = Station(config, sdir / "station.log")
                runs = [Run(self.first_seq(sdir), frames)]
                station.start()
                self.online(rec, station)
                rec.wait(lambda: rec.verdict_count() >= frames // 10, 120, "verdicts")
                broker.reload(deny)
                before = rec.verdict_count()
                time.sleep(self.settings.deny_s)
                broker.reload(allow)
                code = self._run_to_end(station)
                if code != 0:
                    result.checks.append(f"station exit code {code}")
            result = self.finish(result, rec, sdir, runs)
        refused_reasons = [s.get("reason") or "" for s in rec.on("state") if s.get("status") == "fault"]
        if not any("refuses" in r for r in refused_reasons):
            result.checks.append("no state fault naming the refusal")
        result.notes.append(
            f"verdict denied {self.settings.deny_s:g} s after {before} verdicts; state: "
            + (refused_reasons[0][:160] if refused_reasons else "no fault")
        )
        return result

    def tls_wrong_ca(self) -> ScenarioResult:
        """The station trusts another CA: no connection, every verdict kept; restarted right, all arrive."""
        result = ScenarioResult("tls-wrong-ca")
        sdir = self._dir(result.name)
        frames = self.replay(sdir / "replay", max(self.settings.frames // 2, 10))
        certs = make_certs(sdir / "certs")
        make_certs(sdir / "other-ca")  # the CA the station wrongly trusts
        with LocalBroker(sdir / "broker", certs=certs) as broker:
            assert broker.tls_port is not None
            rel = os.path.relpath(sdir, self.root)
            with self.subscriber(broker.host, broker.port, sdir) as rec:
                wrong = self.config(sdir, broker.tls_port, tls={"ca": f"{rel}/other-ca/ca.crt"})
                station = Station(wrong, sdir / "station.log")
                runs = [Run(self.first_seq(sdir), frames)]
                station.start()
                code = self._run_to_end(station)  # the replay ends; the flush at stop cannot reach the broker
                delivered_wrong = rec.verdict_count()
                if delivered_wrong:
                    result.checks.append(
                        f"{delivered_wrong} verdicts went through a broker it must not trust"
                    )
                if "not signed by a CA" not in station.log():
                    result.checks.append("the station log does not say the CA is wrong")
                with Outbox(sdir / "data" / "outbox.db") as outbox:
                    kept_wrong = outbox.depth()
                right = self.config(sdir, broker.tls_port, tls={"ca": f"{rel}/certs/ca.crt"})
                station = Station(right, sdir / "station.log")
                runs.append(Run(self.first_seq(sdir), frames))
                station.start()
                code = self._run_to_end(station)
                if code != 0:
                    result.checks.append(f"station exit code {code}")
            result = self.finish(result, rec, sdir, runs)
        result.notes.append(
            f"wrong CA: {delivered_wrong} delivered, {kept_wrong} messages kept in the outbox "
            f"(verdict + result of {frames} parts); right CA: all delivered"
        )
        return result


#: Scenario name -> how to run it; ``huge-frame`` is full-only (a 12000x12000 PNG is 430 MB to encode).
SCENARIOS: dict[str, Callable[[Soak], ScenarioResult]] = {
    "broker-kill": lambda s: s.broker_kill(persistent=False),
    "broker-kill-persistent": lambda s: s.broker_kill(persistent=True),
    "station-kill": Soak.station_kill,
    "malformed-commands": Soak.malformed_commands,
    "bad-frames": Soak.bad_frames,
    "acl-denial": Soak.acl_denial,
    "tls-wrong-ca": Soak.tls_wrong_ca,
    "huge-frame": lambda s: s.bad_frames(huge=True),
}
