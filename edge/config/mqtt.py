"""``mqtt:`` section: the broker the station publishes verdicts and state to."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from edge.config.base import ConfigPath, Section
from edge.config.secrets import SecretRef


class MqttTls(Section):
    """TLS to the broker: CA to trust, optional client certificate for mutual TLS."""

    ca: ConfigPath = Field(description="CA certificate (PEM) that signed the broker's certificate.")
    cert: ConfigPath | None = Field(default=None, description="Client certificate (PEM) for mutual TLS.")
    key: ConfigPath | None = Field(default=None, description="Client private key (PEM) for mutual TLS.")

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> MqttTls:
        if (self.cert is None) != (self.key is None):
            raise ValueError("give both 'cert' and 'key' for mutual TLS, or neither")
        return self


class MqttSection(Section):
    """Broker connection and topic layout."""

    host: str = Field(default="localhost", min_length=1, description="Broker host name or address.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker port (1883 plain, 8883 TLS).")
    tls: MqttTls | None = Field(default=None, description="TLS settings; plain TCP when absent.")
    username: str | None = Field(default=None, min_length=1, description="User name for broker auth.")
    password: SecretRef | None = Field(
        default=None, description="Password, by reference only: {env: NAME} or {file: PATH}."
    )
    topic_root: str | None = Field(
        default=None, description="Topic root; default <site>/<line>/<station id>."
    )
    client_id: str | None = Field(
        default=None, max_length=128, description="MQTT client id; default edge-<station id>."
    )
    keepalive: int = Field(default=30, ge=5, le=3600, description="Keepalive interval in seconds.")
    sparkplug: bool = Field(default=False, description="Also publish Sparkplug B (NBIRTH/NDATA/NDEATH).")

    @field_validator("topic_root")
    @classmethod
    def _plain_topic(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value or value.startswith("/") or value.endswith("/"):
            raise ValueError("must be non-empty and must not start or end with '/'")
        if any(c in value for c in "+#\x00"):
            raise ValueError("must not contain the wildcards '+' or '#'")
        return value

    @model_validator(mode="after")
    def _password_needs_username(self) -> MqttSection:
        if self.password is not None and self.username is None:
            raise ValueError("'password' needs 'username'")
        return self
