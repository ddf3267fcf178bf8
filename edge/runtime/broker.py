"""A throw-away local MQTT broker for the demo and the benchmark: Mosquitto on a free loopback port.

Why not a pure-Python broker (amqtt): the station speaks MQTT 5 (it needs "retain as published" to refuse
retained commands) and amqtt 0.12 only speaks 3.1.1 -- it refuses the station's CONNECT with "unsupported
protocol version". Mosquitto is the broker the tests use too (Debian package ``mosquitto``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

INSTALL_HINT = "install it with `bash scripts/install-system-deps.sh` (Debian package mosquitto)"


class BrokerUnavailable(RuntimeError):  # noqa: N818 - reads as a state, like the capture errors
    """No broker binary on this machine."""


def mosquitto_binary() -> str | None:
    """Path of the ``mosquitto`` executable, or ``None``."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def launch_mosquitto(
    binary: str, config_file: Path, host: str, port: int, timeout_s: float, log: Callable[[], str]
) -> subprocess.Popen[bytes]:
    """Start ``mosquitto -c config_file`` and wait until ``host:port`` accepts connections.

    Raises:
        RuntimeError: the broker exited or did not listen in time (the message carries ``log()``).

    """
    process = subprocess.Popen(
        [binary, "-c", str(config_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {process.returncode}: {log()}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.02)
    process.kill()
    process.wait(5)
    raise RuntimeError(f"mosquitto did not listen on {host}:{port} within {timeout_s} s: {log()}")


class LocalBroker:
    """Mosquitto on ``127.0.0.1:<free port>``, anonymous, no persistence; a context manager."""

    def __init__(self, workdir: Path | None = None) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise BrokerUnavailable(
                f"no MQTT broker configured and mosquitto is not installed: {INSTALL_HINT}"
            )
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self._tmp = None if workdir is not None else tempfile.TemporaryDirectory(prefix="edge-broker-")
        self.workdir = workdir if workdir is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence false",
            "max_queued_messages 0",
            "set_tcp_nodelay true",
            f"log_dest file {self.workdir / 'broker.log'}",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise mosquitto drops to a user that cannot read the work dir
        self.config_file = self.workdir / "mosquitto.conf"
        self.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> LocalBroker:
        """Start and wait until the port accepts connections."""
        self._process = launch_mosquitto(
            self._binary, self.config_file, self.host, self.port, timeout_s, lambda: f"see {self.workdir}"
        )
        return self

    def stop(self) -> None:
        """Stop the broker."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
