"""What every soak scenario is made of: the station subprocess, the recording subscriber, the workspace."""

from __future__ import annotations

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
from pathlib import Path
from typing import Any

import yaml

from edge.mqtt.outbox import Outbox
from edge.soak.accounting import Run, ScenarioResult, SoakSettings, account
from edge.synthetic.workspace import prepare_demo
from export.ensure import ensure_artifacts

log = logging.getLogger(__name__)

#: The checkout whose ``edge`` package the station subprocesses run (this one, not an installed copy).
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


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


class SoakWorkspace:
    """The building blocks of every scenario in ``workdir`` (SKU, encoders and banks made once, then reused).

    Args:
        workdir: Where everything goes; reused across soaks (the first one exports encoders and builds banks).
        settings: Frames, rates and counts.

    """

    def __init__(self, workdir: Path, settings: SoakSettings) -> None:
        self.workdir = workdir.resolve()
        self.settings = settings
        self.workspace = prepare_demo(self.workdir / "station", fps=settings.fps)
        # The station subprocesses only load their encoders (`edge run` never exports): build them here.
        ensure_artifacts(self.workspace.model_spec(), self.workspace.artifact_dir)
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
                "edge.soak.subscriber",
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
