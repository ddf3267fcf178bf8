"""``edge soak`` (``make soak``): the station under injected faults on loopback, and what held.

Every scenario runs the real thing: a Mosquitto broker (:class:`edge.runtime.broker.LocalBroker`), the
station as a subprocess (``python -m edge.cli run --config ...``) replaying a folder of generated parts (the
demo's synthetic SKU, :func:`edge.demo.prepare_demo`) without looping, and a recording subscriber in its own
process (:mod:`edge.runtime.soak_subscriber`: QoS 1, persistent session, every message on disk). A fault is
injected while parts flow; then the station ends its replay (or is stopped) and the run is accounted from
what the subscriber received:

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
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

log = logging.getLogger(__name__)

#: The checkout whose ``edge`` package the station subprocesses run (this one, not an installed copy).
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SoakSettings:
    """How long and how hard a soak runs.

    Args:
        frames: Images in each scenario's replay folder (one pass, no loop).
        fps: Replay rate; below what the station sustains on 2 cores (~15 parts/s), so no NOT_INSPECTED.
        commands: Malformed commands sent in ``malformed-commands``.
        deny_s: How long ``acl-denial`` denies the verdict topic.
        start_timeout_s: Longest wait for a station to come online.

    """

    frames: int = 60
    fps: float = 6.0
    commands: int = 200
    deny_s: float = 4.0
    start_timeout_s: float = 180.0


SHORT = SoakSettings()
FULL = SoakSettings(frames=300, fps=8.0, commands=2000, deny_s=10.0)


@dataclass
class ScenarioResult:
    """What one scenario produced and what held."""

    name: str
    produced: int = 0
    received: int = 0
    duplicates: int = 0
    lost: int = 0
    no_verdict: int = 0
    out_of_order: int = 0
    faults: int = 0
    errors: int = 0
    kept: int = 0
    checks: list[str] = field(default_factory=list)  # failed scenario-specific checks
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def held(self) -> bool:
        """Nothing lost, every part has its verdict, nothing left behind, every own check passed."""
        return self.lost == 0 and self.no_verdict == 0 and self.kept == 0 and not self.checks


@dataclass(frozen=True)
class Run:
    """One station process of a scenario.

    ``first_seq`` is the first sequence number it allocates; ``frames`` how many frames it served when it
    ended its replay by itself (``None`` when it was killed).
    """

    first_seq: int
    frames: int | None


def account(
    verdicts: Sequence[dict[str, Any]], runs: Sequence[Run], pending_seqs: Sequence[int] = ()
) -> dict[str, int]:
    """Count a scenario from the verdicts a subscriber received, in arrival order (duplicates included).

    Args:
        verdicts: ``verdict`` payloads as received.
        runs: The station processes of the scenario, in start order.
        pending_seqs: Sequence numbers of verdicts still in the station's outbox.

    Returns:
        ``produced``, ``received``, ``duplicates``, ``lost``, ``no_verdict``, ``out_of_order``, ``errors``.

    """
    first: dict[str, dict[str, Any]] = {}
    out_of_order = 0
    highest = 0
    for body in verdicts:
        if body["part_id"] in first:
            continue
        first[body["part_id"]] = body
        if body["seq"] < highest:
            out_of_order += 1
        highest = max(highest, body["seq"])
    seqs = {int(b["seq"]) for b in first.values()}
    produced = lost = no_verdict = 0
    for i, run in enumerate(runs):
        end = runs[i + 1].first_seq if i + 1 < len(runs) else None
        mine = {s for s in seqs if s >= run.first_seq and (end is None or s < end)}
        seen = mine | {s for s in pending_seqs if s >= run.first_seq and (end is None or s < end)}
        made = max(seen) - run.first_seq + 1 if seen else 0
        produced += made
        lost += made - len(mine)
        no_verdict += max(run.frames - len(mine), 0) if run.frames is not None else made - len(mine)
    return {
        "produced": produced,
        "received": len(first),
        "duplicates": len(verdicts) - len(first),
        "lost": lost,
        "no_verdict": no_verdict,
        "out_of_order": out_of_order,
        "errors": sum(b["verdict"] == "ERROR" for b in first.values()),
    }


def bomb_png(width: int = 50000, height: int = 50000) -> bytes:
    """A tiny PNG (69 bytes) whose header claims ``width`` x ``height`` RGB pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)  # far too little data for the claimed size
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class Recording:
    """Reads the soak subscriber's JSON-lines file as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[dict[str, Any]] = []
        self._offset = 0

    def poll(self) -> list[dict[str, Any]]:
        """Read what was appended since the last call (whole lines only); returns every message so far."""
        if self.path.exists():
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
            end = data.rfind(b"\n") + 1
            for line in data[:end].splitlines():
                self.messages.append(json.loads(line))
            self._offset += end
        return self.messages

    def on(self, topic: str) -> list[dict[str, Any]]:
        """Bodies of the non-retained messages received on ``topic`` (``verdict``, ``state``, ``reply``)."""
        return [m["body"] for m in self.poll() if m["topic"] == topic and not m["retain"]]

    def verdict_count(self) -> int:
        """Distinct verdicts so far."""
        return len({b["part_id"] for b in self.on("verdict")})

    def wait(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll until ``predicate()``.

        Raises:
            TimeoutError: Not within ``timeout_s``; the message says ``what`` was awaited.

        """
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within {timeout_s:.0f} s")
            time.sleep(0.1)


class Station:
    """``edge run --config CONFIG`` as a subprocess, its output in ``log_file``."""

    def __init__(self, config: Path, log_file: Path) -> None:
        self.config = config
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the station process."""
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edge.cli", "run", "--config", str(self.config), "--no-metrics"],
                cwd=self.config.parent,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the station: a crash (power cut of the process)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def wait(self, timeout_s: float) -> int:
        """Wait for the station to end by itself (its replay ended); SIGTERM it after ``timeout_s``."""
        assert self.process is not None
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("station still running after %.0f s: stopping it", timeout_s)
            self.process.terminate()
            try:
                return self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
                return -signal.SIGKILL

    def log(self) -> str:
        """The station's output so far."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


class Soak:
    """Runs scenarios in ``workdir`` (the synthetic SKU, encoders and banks are made once and reused).

    Args:
        workdir: Where everything goes; reused across soaks (the first one exports encoders and builds banks).
        settings: Frames, rates and counts.

    """

    def __init__(self, workdir: Path, settings: SoakSettings) -> None:
        from edge.demo import prepare_demo

        self.workdir = workdir.resolve()
        self.settings = settings
        self.workspace = prepare_demo(self.workdir / "station", fps=settings.fps)
        self.root = self.workspace.root
        self.topic_root = self.workspace.topic_root
        self.template: dict[str, Any] = yaml.safe_load(self.workspace.config.read_text(encoding="utf-8"))
        self.images = sorted(self.workspace.replay_dir.glob("*.png"))
        self.bank_cache = self.root / "soak" / "bank-cache"

    # -- building blocks -------------------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        path = self.root / "soak" / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def replay(self, where: Path, frames: int, extra: dict[str, bytes] | None = None) -> int:
        """Fill ``where`` with ``frames`` parts (copies of the demo's) plus ``extra`` files placed among them.

        Returns:
            How many images the folder holds (one part each).

        """
        where.mkdir(parents=True, exist_ok=True)
        for i in range(frames):
            os.link(self.images[i % len(self.images)], where / f"{i:05d}.png")
        for name, data in (extra or {}).items():
            (where / name).write_bytes(data)
        return frames + len(extra or {})

    def config(self, sdir: Path, port: int, tls: dict[str, str] | None = None) -> Path:
        """A station config for scenario folder ``sdir`` (its own replay, data and archive)."""
        config = json.loads(json.dumps(self.template))
        rel = os.path.relpath(sdir, self.root)
        config["camera"]["replay"] = {"dir": f"{rel}/replay", "fps": self.settings.fps, "loop": False}
        config["mqtt"] = {"host": "127.0.0.1", "port": port, **({"tls": tls} if tls else {})}
        config["storage"].update(data_dir=f"{rel}/data", archive_dir=f"{rel}/archive")
        path = self.root / f"soak-{sdir.name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        data = sdir / "data"
        if self.bank_cache.is_dir() and not (data / "bank-cache").exists():
            data.mkdir(parents=True, exist_ok=True)
            shutil.copytree(self.bank_cache, data / "bank-cache")
        return path

    @staticmethod
    def first_seq(sdir: Path) -> int:
        """The sequence number the next station start allocates first (its reserved high-water mark)."""
        counter = sdir / "data" / "part-counter.json"
        return int(json.loads(counter.read_text())["next"]) if counter.exists() else 1

    @contextmanager
    def subscriber(self, host: str, port: int, sdir: Path) -> Iterator[Recording]:
        """The recording subscriber process for the scenario; stopped at the end."""
        out = sdir / "received.jsonl"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edge.runtime.soak_subscriber",
                host,
                str(port),
                self.topic_root,
                str(out),
            ],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        try:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the soak subscriber did not subscribe (exit {proc.wait(10)})")
            yield Recording(out)
        finally:
            time.sleep(1.0)  # the last QoS-1 deliveries after the station's outbox flush
            proc.terminate()
            proc.wait(30)
            if proc.stdout is not None:
                proc.stdout.close()

    def online(self, rec: Recording, station: Station, after: int = 0) -> None:
        """Wait until the station publishes ``online`` (the ``after``-th such state or later)."""

        def up() -> bool:
            if station.process is not None and station.process.poll() is not None:
                raise RuntimeError(
                    f"the station exited with {station.process.returncode}:\n{station.log()[-3000:]}"
                )
            return sum(s.get("status") == "online" for s in rec.on("state")) > after  # type: ignore[no-any-return]

        rec.wait(up, self.settings.start_timeout_s, "state online")

    def finish(
        self, result: ScenarioResult, rec: Recording, sdir: Path, runs: Sequence[Run]
    ) -> ScenarioResult:
        """Account the scenario (after its last station process ended)."""
        from edge.mqtt.outbox import Outbox

        pending: list[int] = []
        outbox_file = sdir / "data" / "outbox.db"
        if outbox_file.exists():
            with Outbox(outbox_file) as outbox:
                result.kept = outbox.depth()
                for message in outbox.pending(limit=1_000_000):
                    if message.topic.endswith("/verdict"):
                        pending.append(int(json.loads(message.payload)["seq"]))
        counts = account(rec.on("verdict"), runs, pending)
        for key, value in counts.items():
            setattr(result, key, value)
        result.faults = sum(s.get("status") in ("fault", "safe_mode") for s in rec.on("state"))
        if not self.bank_cache.is_dir() and (sdir / "data" / "bank-cache").is_dir():
            shutil.copytree(sdir / "data" / "bank-cache", self.bank_cache)
        return result

    def _run_to_end(self, station: Station) -> int:
        return station.wait(self.settings.frames / self.settings.fps + 120)

    # -- scenarios -------------------------------------------------------------------------------------

    def broker_kill(self, persistent: bool) -> ScenarioResult:
        """SIGKILL the broker twice while parts flow; restart it on the same port each time."""
        from edge.runtime.broker import LocalBroker

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
        from edge.runtime.broker import LocalBroker

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
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from edge.runtime.broker import LocalBroker

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
        from edge.runtime.broker import LocalBroker

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
        from edge.runtime.broker import LocalBroker

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
        from edge.runtime.broker import LocalBroker, make_certs

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
                from edge.mqtt.outbox import Outbox

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
SHORT_SCENARIOS: tuple[str, ...] = tuple(n for n in SCENARIOS if n != "huge-frame")


def run_soak(
    workdir: Path, *, short: bool = False, scenarios: Sequence[str] | None = None
) -> list[ScenarioResult]:
    """Run the scenarios (all of the chosen version by default) and return what each produced.

    A scenario that cannot run to its end (a timeout, a station that never came online) is reported as
    not held with the reason, and the soak goes on with the next one.
    """
    soak = Soak(workdir, SHORT if short else FULL)
    names = list(scenarios) if scenarios else list(SHORT_SCENARIOS if short else SCENARIOS)
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


def format_table(results: Sequence[ScenarioResult]) -> str:
    """Markdown table of the results, one row per scenario, then the notes."""
    lines = [
        "| scenario | parts produced | verdicts received | duplicates | lost | no verdict | out of order "
        "| faults raised | ERROR verdicts | kept in outbox | s | held |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        held = "yes" if r.held else "**no**: " + "; ".join(r.checks)
        lines.append(
            f"| {r.name} | {r.produced} | {r.received} | {r.duplicates} | {r.lost} | {r.no_verdict} | "
            f"{r.out_of_order} | {r.faults} | {r.errors} | {r.kept} | {r.seconds:.0f} | {held} |"
        )
    notes = [f"- {r.name}: {note}" for r in results for note in r.notes]
    return "\n".join(lines + (["", *notes] if notes else []))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``edge soak``."""
    p = subparsers.add_parser(
        "soak",
        help="fault-injection run of the station on loopback (make soak)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("--short", action="store_true", help="the few-minute version (make test runs it)")
    p.add_argument(
        "--scenario", action="append", choices=sorted(SCENARIOS), help="run only this one (repeatable)"
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
