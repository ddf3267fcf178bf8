"""A throw-away local MQTT broker for the demo, the benchmark and the soak: Mosquitto on a free loopback port.

Why not a pure-Python broker (amqtt): the station speaks MQTT 5 (it needs "retain as published" to refuse
retained commands) and amqtt 0.12 only speaks 3.1.1 -- it refuses the station's CONNECT with "unsupported
protocol version". Mosquitto is the broker the tests use too (Debian package ``mosquitto``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class BrokerCerts:
    """PEM files of a throw-away CA and a server certificate it signed."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_certs(
    directory: Path, common_name: str = "localhost", names: str = "DNS:localhost,IP:127.0.0.1"
) -> BrokerCerts:
    """Create a CA and a server certificate with ``openssl`` (EC P-256, valid for two days).

    Args:
        directory: Where the PEM files go (created).
        common_name: Subject CN of the server certificate.
        names: Its subjectAltName (what a client checks the host name against).

    Raises:
        subprocess.CalledProcessError: ``openssl`` failed (or is not installed: ``FileNotFoundError``).

    """
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=edge CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={common_name}")
    (directory / "server.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={names}\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "server.ext",
    )  # fmt: skip
    return BrokerCerts(directory / "ca.crt", directory / "server.crt", directory / "server.key")


class LocalBroker:
    """Mosquitto on ``127.0.0.1:<free port>``, anonymous; a context manager.

    The defaults are the demo's and the benchmark's broker (no persistence). The soak (``edge soak``) also
    crashes it, keeps its sessions on disk, denies topics and serves TLS; :meth:`restart` keeps the ports.

    Args:
        workdir: Config, log and persistence database go here (a temporary folder by default).
        persistence: Keep sessions and queued messages across restarts (saved every second and on a clean
            stop; a SIGKILL loses what changed since the last save).
        acl: Text of an ACL file (``topic`` lines before any ``user`` line apply to anonymous clients);
            :meth:`reload` replaces and re-reads it.
        certs: Also serve MQTT over TLS with these files, on :attr:`tls_port`.

    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        persistence: bool = False,
        acl: str | None = None,
        certs: BrokerCerts | None = None,
    ) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise BrokerUnavailable(
                f"no MQTT broker configured and mosquitto is not installed: {INSTALL_HINT}"
            )
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.tls_port = free_port(self.host) if certs is not None else None
        self.persistence = persistence
        self._tmp = None if workdir is not None else tempfile.TemporaryDirectory(prefix="edge-broker-")
        self.workdir = workdir if workdir is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_file = self.workdir / "broker.log"
        self.acl_file = self.workdir / "acl"
        # Settings before the first listener are global (no per_listener_settings): they apply to both.
        lines = [
            "allow_anonymous true",
            # 0 = no limit: the default (1000) silently drops what is queued for a slow or offline
            # subscriber, which a soak would mistake for a station that lost verdicts.
            "max_queued_messages 0",
            "set_tcp_nodelay true",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise mosquitto drops to a user that cannot read the work dir
        if persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/", "autosave_interval 1"]
        else:
            lines.append("persistence false")
        if acl is not None:
            self.acl_file.write_text(acl, encoding="utf-8")
            lines.append(f"acl_file {self.acl_file}")
        lines.append(f"listener {self.port} {self.host}")
        if certs is not None:
            lines += [
                f"listener {self.tls_port} {self.host}",
                f"cafile {certs.ca_file}",
                f"certfile {certs.cert_file}",
                f"keyfile {certs.key_file}",
            ]
        self.config_file = self.workdir / "mosquitto.conf"
        self.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = 10.0) -> LocalBroker:
        """Start and wait until the port accepts connections."""
        self._process = launch_mosquitto(
            self._binary, self.config_file, self.host, self.port, timeout_s, self.log
        )
        return self

    def kill(self) -> None:
        """SIGKILL the broker: a crash, nothing is saved."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)

    def restart(self, timeout_s: float = 10.0) -> None:
        """Start again on the same ports (after :meth:`kill`, or killing it first)."""
        self.kill()
        self.start(timeout_s)

    def reload(self, acl: str | None = None) -> None:
        """Re-read the configuration (SIGHUP), after replacing the ACL file with ``acl`` when given."""
        if self._process is None or self._process.poll() is not None:
            raise RuntimeError("broker is not running")
        if acl is not None:
            self.acl_file.write_text(acl, encoding="utf-8")
        self._process.send_signal(signal.SIGHUP)

    def log(self) -> str:
        """The broker's log so far."""
        return (
            self.log_file.read_text(errors="replace")
            if self.log_file.exists()
            else f"(no log in {self.workdir})"
        )

    def stop(self) -> None:
        """Stop the broker (SIGTERM, which saves persistence) and remove a temporary work dir."""
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
