"""Review UI accounts: password hashes, signed session cookies, CSRF tokens, login throttling.

Password hashes use the format the config documents (``review.users[].password_hash``):
``pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`` (also read: ``scrypt$<n>$<r>$<p>$<salt>$<base64 hash>``).
``edge review hash-password`` prints one.

A session is a cookie ``<base64 JSON {user, role, exp, sid}>.<base64 HMAC-SHA256>`` signed with a key kept in
the station's data folder (sessions survive a restart of the station). The user's role is re-read from the
config on every request, so removing an account or changing its role takes effect at once; logging out
revokes the session id. The CSRF token of a form is ``HMAC(key, "csrf:" + sid)``: an attacker's page can
neither read it nor compute it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge.review.throttle import LoginThrottle

Role = Literal["operator", "engineer"]

PBKDF2_ITERATIONS = 600_000
"""OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256."""

SESSION_TTL_S = 8 * 3600.0
"""A session lasts one shift."""


class PasswordHashError(ValueError):
    """A stored password hash is malformed or uses an algorithm this station cannot check."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: str | None = None) -> str:
    """Hash ``password`` as ``pbkdf2_sha256$<iterations>$<salt>$<base64 hash>``."""
    if not password:
        raise ValueError("the password must not be empty")
    salt = salt or secrets.token_urlsafe(16)
    if "$" in salt:
        raise ValueError("the salt must not contain '$'")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("utf-8"), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time comparison).

    Raises:
        PasswordHashError: ``stored`` is malformed or its algorithm (e.g. argon2) is not supported here.

    """
    algorithm, _, rest = stored.partition("$")
    try:
        if algorithm == "pbkdf2_sha256":
            iterations, salt, expected = rest.split("$")
            digest = hashlib.pbkdf2_hmac(
                "sha256", password.encode("utf-8"), salt.encode("utf-8"), int(iterations)
            )
        elif algorithm == "scrypt":
            n, r, p, salt, expected = rest.split("$")
            digest = hashlib.scrypt(
                password.encode("utf-8"), salt=salt.encode("utf-8"), n=int(n), r=int(r), p=int(p),
                maxmem=256 << 20, dklen=len(_unb64(expected)),
            )  # fmt: skip
        else:
            raise PasswordHashError(
                f"password hash algorithm {algorithm!r} is not supported; use `edge review hash-password`"
            )
        return hmac.compare_digest(digest, _unb64(expected))
    except (ValueError, TypeError) as exc:
        if isinstance(exc, PasswordHashError):
            raise
        raise PasswordHashError(f"malformed password hash ({algorithm}): {exc}") from None


@dataclass(frozen=True)
class User:
    """An account of the review UI."""

    name: str
    role: Role
    password_hash: str

    @property
    def is_engineer(self) -> bool:
        """Engineers may also promote images and change thresholds."""
        return self.role == "engineer"


@dataclass(frozen=True)
class Session:
    """A logged-in user (from a verified cookie)."""

    user: User
    sid: str
    expires: float


def load_key(path: Path | None) -> bytes:
    """The session signing key from ``path`` (created, mode 0600, when missing); random when ``None``."""
    if path is None:
        return secrets.token_bytes(32)
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return key


class Authenticator:
    """Checks passwords, issues and verifies session cookies and CSRF tokens. Thread-safe.

    Args:
        users: The accounts (from the config's ``review.users``).
        key: Signing key (:func:`load_key`).
        ttl_s: Session lifetime.

    """

    def __init__(self, users: Iterable[User], key: bytes, ttl_s: float = SESSION_TTL_S) -> None:
        self.users: Mapping[str, User] = {u.name: u for u in users}
        self._key = key
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._revoked: dict[str, float] = {}
        self.throttle = LoginThrottle()
        self._dummy: str | None = None

    def _dummy_hash(self) -> str:
        """A hash of a random password, checked for unknown names (same cost as the accounts' hashes).

        A login then takes as long whether the name exists or not: no user enumeration by timing.
        """
        if self._dummy is None:
            iterations = PBKDF2_ITERATIONS
            for user in self.users.values():
                parts = user.password_hash.split("$")
                if parts[0] == "pbkdf2_sha256" and len(parts) == 4 and parts[1].isdigit():
                    iterations = int(parts[1])
                    break
            self._dummy = hash_password(secrets.token_urlsafe(12), iterations=iterations)
        return self._dummy

    # -- login -------------------------------------------------------------------------------------------

    def login(self, name: str, password: str, address: str = "") -> User | None:
        """The user when ``password`` is right; ``None`` otherwise.

        Call :meth:`wait_s` first: an attempt made during a wait must be refused unchecked. A wrong password
        counts against ``address`` (the client) and ``name`` (see :mod:`edge.review.throttle`).
        """
        user = self.users.get(name)
        try:
            ok = (
                verify_password(password, user.password_hash if user else self._dummy_hash())
                and user is not None
            )
        except PasswordHashError:
            ok = False
        if not ok:
            self.throttle.failed(address, name)
            return None
        self.throttle.succeeded(address, name)
        return user

    def wait_s(self, name: str, address: str = "") -> float:
        """Seconds before ``address`` may try a password for ``name`` again (0: now)."""
        return self.throttle.wait_s(address, name)

    # -- sessions ----------------------------------------------------------------------------------------

    def _sign(self, data: bytes) -> str:
        return (
            base64.urlsafe_b64encode(hmac.new(self._key, data, hashlib.sha256).digest()).decode().rstrip("=")
        )

    def issue(self, user: User) -> tuple[str, Session]:
        """A new session for ``user``: ``(cookie value, session)``."""
        session = Session(user, secrets.token_urlsafe(18), time.time() + self._ttl_s)
        body = json.dumps({"u": user.name, "sid": session.sid, "exp": int(session.expires)}).encode()
        data = base64.urlsafe_b64encode(body).decode().rstrip("=")
        return f"{data}.{self._sign(data.encode())}", session

    def verify(self, cookie: str | None) -> Session | None:
        """The session of a cookie; ``None`` when absent, forged, expired, revoked or the user is gone."""
        if not cookie or cookie.count(".") != 1:
            return None
        data, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign(data.encode())):
            return None
        try:
            body = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
            name, sid, expires = str(body["u"]), str(body["sid"]), float(body["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time()
        with self._lock:
            self._revoked = {s: t for s, t in self._revoked.items() if t > now}
            if sid in self._revoked:
                return None
        user = self.users.get(name)
        if user is None or expires <= now:
            return None
        return Session(user, sid, expires)

    def revoke(self, session: Session) -> None:
        """Log out: the session's cookie is refused from now on (until it would have expired anyway)."""
        with self._lock:
            self._revoked[session.sid] = session.expires

    def csrf_token(self, sid: str) -> str:
        """The CSRF token of forms shown in session ``sid`` (or a pre-login nonce)."""
        return self._sign(f"csrf:{sid}".encode())

    def check_csrf(self, sid: str, token: str | None) -> bool:
        """Whether ``token`` is the CSRF token of ``sid``."""
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(sid))
