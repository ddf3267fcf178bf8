"""What the OPC UA server needs to know: endpoint, certificates, security, accounts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The namespace of the station's nodes (OPC 40100-1's own namespace is not loaded: docs/opcua.md).
NAMESPACE_URI = "urn:edge-inspection:machine-vision"


@dataclass(frozen=True)
class OpcUaAccount:
    """One user name token account.

    Attributes:
        name: User name.
        password_hash: Algorithm-prefixed hash (:func:`edge.review.auth.hash_password`).
        controller: May select the recipe (``ActivateRecipe``); readers browse, read and subscribe.

    """

    name: str
    password_hash: str
    controller: bool = False


@dataclass(frozen=True)
class OpcUaSettings:
    """The server's endpoint and security.

    Attributes:
        bind: Address to listen on.
        port: TCP port.
        certificate: Server application certificate (DER or PEM).
        private_key: Its private key (PEM).
        generate_certificate: Make a self-signed certificate and key at these paths when they are missing.
        security: Endpoints offered, OPC UA policy names (``Basic256Sha256_SignAndEncrypt``, ...).
        accounts: Who may log in.
        allow_anonymous: Accept anonymous sessions (read-only).
        trusted_clients: Folder of trusted client certificates; ``None``: any client certificate.
        application_uri: The server's application URI (also in its certificate).
        server_name: Shown to clients browsing for servers.
        station_id: The station's id (``VisionSystem`` identification).

    """

    bind: str
    port: int
    certificate: Path
    private_key: Path
    generate_certificate: bool
    security: tuple[str, ...]
    accounts: tuple[OpcUaAccount, ...]
    allow_anonymous: bool
    trusted_clients: Path | None
    application_uri: str
    server_name: str
    station_id: str

    @property
    def endpoint(self) -> str:
        """The endpoint URL clients connect to (``0.0.0.0`` is every interface)."""
        return f"opc.tcp://{self.bind}:{self.port}/edge-inspection/"
