"""``review:`` section: the local web UI where engineers look at NG parts."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, model_validator

from edge.config.base import ConfigPath, Identifier, Section


class ReviewUser(Section):
    """A review UI account; the password is stored hashed, never in clear."""

    name: Identifier = Field(description="Login name.")
    role: Literal["operator", "engineer"] = Field(
        default="operator", description="operator: view and acknowledge; engineer: also change settings."
    )
    password_hash: str = Field(
        pattern=r"^(pbkdf2_sha256|scrypt|argon2id?)\$\S+$",
        description="Algorithm-prefixed password hash, e.g. pbkdf2_sha256$<iterations>$<salt>$<hash>.",
    )


class ReviewTls(Section):
    """HTTPS certificate of the review UI."""

    cert: ConfigPath = Field(description="Server certificate (PEM).")
    key: ConfigPath = Field(description="Server private key (PEM).")


class ReviewSection(Section):
    """Review web UI."""

    enabled: bool = Field(default=False, description="Serve the review UI.")
    port: int = Field(default=8080, ge=1, le=65535, description="HTTP(S) port.")
    bind: str = Field(default="127.0.0.1", description="Address to listen on (127.0.0.1: this device only).")
    users: list[ReviewUser] = Field(default_factory=list, description="Accounts allowed to log in.")
    tls: ReviewTls | None = Field(default=None, description="HTTPS; required when listening beyond loopback.")

    @model_validator(mode="after")
    def _exposed_ui_is_protected(self) -> ReviewSection:
        if not self.enabled:
            return self
        names = [u.name for u in self.users]
        if len(set(names)) != len(names):
            raise ValueError("user names must be unique")
        try:
            loopback = ipaddress.ip_address(self.bind).is_loopback
        except ValueError:
            loopback = self.bind == "localhost"
        if not loopback:
            if not self.users:
                raise ValueError(f"review UI listening on {self.bind} needs at least one user")
            if self.tls is None:
                raise ValueError(f"review UI listening on {self.bind} needs 'tls' (cert and key)")
        return self
