"""API tokens of machine clients (HMI, MES): created by an engineer on the station, stored hashed, revocable.

A token is ``edge_<43 random URL-safe characters>`` (256 bits), shown once when it is made
(``edge review token create NAME --role operator``). The store keeps only its SHA-256: a token carries full
entropy, so a slow password hash would add nothing but latency to every API request, and a stolen
``review-tokens.json`` gives no usable token. Clients send it as ``Authorization: Bearer <token>``.

The store is one JSON file (mode 0600) next to the session key in the station's data folder. The command
line writes it (atomically, under a lock file so two commands cannot lose each other's change); the running
review service re-reads it when it changed, so a revoked token is refused from the next request on, without
a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.review.auth import Role

log = logging.getLogger(__name__)

TOKENS_NAME = "review-tokens.json"
PREFIX = "edge_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ROLES: tuple[Role, ...] = ("operator", "engineer")


class TokenError(ValueError):
    """A token cannot be created or revoked as asked (bad name or role, name taken, unknown name)."""


@dataclass(frozen=True)
class ApiToken:
    """A stored token (never the token itself).

    Attributes:
        name: Which client it is for (``mes``, ``hmi-line2``); dispositions it sets are by ``token:<name>``.
        role: ``operator`` or ``engineer``, as for accounts.
        sha256: Hex SHA-256 of the token.
        created: Epoch seconds.
        created_by: Who made it (the shell user of the command).
        revoked: Epoch seconds of the revocation; ``None`` while valid.

    """

    name: str
    role: Role
    sha256: str
    created: float
    created_by: str = ""
    revoked: float | None = None

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked is None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """The token file of one station. Thread-safe; several processes may use the same file.

    Args:
        path: The JSON file (usually ``<data_dir>/review-tokens.json``); missing means no tokens.

    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._tokens: list[ApiToken] = []

    # -- reading -----------------------------------------------------------------------------------------

    def _fresh(self) -> list[ApiToken]:
        """The tokens, re-read when the file changed since the last look (one ``stat`` per call)."""
        try:
            st = self.path.stat()
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._tokens = self._read() if stamp is not None else []
                except (OSError, ValueError, TypeError) as exc:
                    # Fail closed: a damaged file refuses every token (and says so) rather than failing
                    # every request; the command line refuses to edit it until it is fixed or removed.
                    log.error("API tokens refused: %s is unreadable: %s", self.path, exc)
                    self._tokens = []
                self._stamp = stamp
            return list(self._tokens)

    def _read(self) -> list[ApiToken]:
        data = json.loads(self.path.read_text(encoding="utf-8"))
        return [ApiToken(**entry) for entry in data.get("tokens", [])]

    def tokens(self) -> list[ApiToken]:
        """Every stored token, revoked ones too (oldest first)."""
        return self._fresh()

    def verify(self, token: str) -> ApiToken | None:
        """The active token whose hash matches ``token``; ``None`` for unknown, malformed or revoked ones."""
        if not token.startswith(PREFIX) or len(token) > 128:
            return None
        digest = _digest(token)
        for entry in self._fresh():
            # Looking up by the hash of a 256-bit secret: timing reveals nothing an attacker can use, but
            # compare_digest costs nothing here either.
            if entry.active and secrets.compare_digest(entry.sha256, digest):
                return entry
        return None

    # -- writing (the command line) ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _editing(self) -> Iterator[list[ApiToken]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                tokens = self._read() if self.path.exists() else []
            except (ValueError, TypeError) as exc:
                raise TokenError(f"{self.path} is unreadable ({exc}): fix or remove it") from None
            yield tokens
            body = json.dumps({"version": 1, "tokens": [asdict(t) for t in tokens]}, indent=2) + "\n"
            tmp = self.path.with_name(self.path.name + ".tmp")
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(out, "w", encoding="utf-8") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        finally:
            os.close(fd)  # releases the lock

    def create(self, name: str, role: str, created_by: str = "") -> tuple[str, ApiToken]:
        """Make a token: ``(the token, shown once; its stored entry)``.

        Raises:
            TokenError: The name is malformed or already used by an active token, or the role is unknown.

        """
        if not NAME_PATTERN.match(name):
            raise TokenError(f"token name {name!r}: 1-64 letters, digits, '_', '.', '-', starting alnum")
        if role not in ROLES:
            raise TokenError(f"role {role!r}: expected one of {', '.join(ROLES)}")
        token = PREFIX + secrets.token_urlsafe(32)
        with self._editing() as tokens:
            if any(t.name == name and t.active for t in tokens):
                raise TokenError(f"an active token named {name!r} exists: revoke it first, or pick a name")
            entry = ApiToken(name, role, _digest(token), time.time(), created_by)
            tokens.append(entry)
        return token, entry

    def revoke(self, name: str) -> ApiToken:
        """Revoke the active token called ``name`` (it is kept, marked revoked, for the record).

        Raises:
            TokenError: No active token has this name.

        """
        with self._editing() as tokens:
            for i, entry in enumerate(tokens):
                if entry.name == name and entry.active:
                    tokens[i] = revoked = ApiToken(**{**asdict(entry), "revoked": time.time()})
                    return revoked
            raise TokenError(f"no active token named {name!r}")
