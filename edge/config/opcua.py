"""``opcua:`` section: an OPC UA server for PLCs and hosts that do not speak MQTT (off by default)."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, model_validator

from edge.config.base import ConfigPath, Identifier, Section

#: Security policies the server can offer (OPC UA names, policy + message security mode).
SecurityPolicyName = Literal["Basic256Sha256_SignAndEncrypt", "Basic256Sha256_Sign", "None"]


def _encrypted_only() -> list[SecurityPolicyName]:
    return ["Basic256Sha256_SignAndEncrypt"]


class OpcUaUser(Section):
    """An OPC UA account (user name token); the password is stored hashed, never in clear."""

    name: Identifier = Field(description="User name.")
    role: Literal["reader", "controller"] = Field(
        default="reader",
        description="reader: browse, read, subscribe; controller: also select the recipe (ActivateRecipe).",
    )
    password_hash: str = Field(
        pattern=r"^(pbkdf2_sha256|scrypt)\$\S+$",
        description="Algorithm-prefixed password hash (`edge review hash-password`), e.g. "
        "pbkdf2_sha256$<iterations>$<salt>$<hash>.",
    )


class OpcUaSection(Section):
    """OPC UA server following OPC 40100-1 (Machine Vision) where it maps (docs/opcua.md)."""

    enabled: bool = Field(default=False, description="Serve OPC UA.")
    bind: str = Field(default="0.0.0.0", description="Address to listen on (0.0.0.0: every interface).")
    port: int = Field(default=4840, ge=1, le=65535, description="TCP port (4840: the OPC UA default).")
    security: list[SecurityPolicyName] = Field(
        default_factory=_encrypted_only,
        min_length=1,
        description="Endpoints offered. 'None' (no signing, no encryption) only when listed here.",
    )
    certificate: ConfigPath | None = Field(
        default=None,
        description="Server application certificate (DER or PEM); default: a self-signed one made at first "
        "start in <storage.data_dir>/opcua/ and kept.",
    )
    private_key: ConfigPath | None = Field(
        default=None, description="Private key of `certificate` (PEM); required with `certificate`."
    )
    trusted_clients: ConfigPath | None = Field(
        default=None,
        description="Folder of trusted client certificates (DER/PEM, or their CAs): only these clients may "
        "open a secure channel. Default: any client certificate; users still log in.",
    )
    allow_anonymous: bool = Field(
        default=False, description="Accept anonymous sessions (read-only). Refused unless set."
    )
    users: list[OpcUaUser] = Field(default_factory=list, description="Accounts allowed to log in.")

    @model_validator(mode="after")
    def _someone_can_connect(self) -> OpcUaSection:
        names = [u.name for u in self.users]
        if len(set(names)) != len(names):
            raise ValueError("user names must be unique")
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("'certificate' and 'private_key' go together")
        if len(set(self.security)) != len(self.security):
            raise ValueError("security: each policy once")
        if not self.enabled:
            return self
        if not self.users and not self.allow_anonymous:
            raise ValueError("OPC UA server without users and without allow_anonymous: nobody could log in")
        if "None" in self.security and self.users:
            try:
                loopback = ipaddress.ip_address(self.bind).is_loopback
            except ValueError:
                loopback = self.bind == "localhost"
            if not loopback:
                # A user name token on an unencrypted channel is readable by anyone on the network.
                raise ValueError(
                    f"security 'None' with users on {self.bind}: passwords would cross the network in clear"
                )
        return self
