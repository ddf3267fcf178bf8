"""``mqtt:`` section: the broker the station publishes verdicts and state to."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from edge.config.base import ConfigPath, Identifier, Section
from edge.config.secrets import SecretRef

#: One DNS label (RFC 1123: letters, digits and inner hyphens, at most 63 characters); underscores too,
#: because container and Windows host names that resolve on plant networks have them.
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def check_host(value: str) -> str:
    """A broker host is a host name or an IPv4/IPv6 address (``[::1]`` accepted); anything else is refused.

    Raises:
        ValueError: with what is wrong, e.g. an octet above 255 or a character no host name has.

    """
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(bare)
        return value
    except ValueError:
        pass
    labels = bare.removesuffix(".").split(".")
    if all(label.isdigit() for label in labels):
        raise ValueError(f"'{value}' is not a valid IPv4 address (four numbers 0-255)")
    if len(bare) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError(
            f"'{value}' is not a host name or IP address (host names have letters, digits, '-', '_' and '.')"
        )
    return value


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


class SparkplugSection(Section):
    """Sparkplug B edge node: the station as ``spBv1.0/<group_id>/N*/<node_id>``, its device ``device_id``.

    Every id may be left out; the defaults come from the ``station`` section: the group is the site, the
    node is ``<line>-<station id>`` (a station id is only unique on its line, and a SCADA host sees one
    group per site), the device is ``inspection``. ``StationConfig.sparkplug_ids()`` fills them in.
    """

    enabled: bool = Field(default=True, description="Publish Sparkplug B (a section without it: on).")
    group_id: Identifier | None = Field(
        default=None, description="Sparkplug group id; default: station.site."
    )
    node_id: Identifier | None = Field(
        default=None, description="Sparkplug edge node id; default: <station.line>-<station.id>."
    )
    device_id: Identifier = Field(
        default="inspection", description="Sparkplug device id of the station's inspection device."
    )
    client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="MQTT client id of the Sparkplug connection; default <mqtt client id>-spb.",
    )
    primary_host_id: Identifier | None = Field(
        default=None,
        description="Sparkplug 3.0 primary host application id: births wait for its STATE online on "
        "spBv1.0/STATE/<id>, and its STATE offline ends the session (NDEATH) until it is back.",
    )


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
    resend_window: float = Field(
        default=5.0,
        ge=0,
        le=600,
        description=(
            "Seconds: after a lost connection, verdicts, results and reviews the broker acknowledged this "
            "long before the loss are sent again once reconnected (a broker that crashed without "
            "persistence may have lost them); subscribers drop the duplicates by part_id. 0: off."
        ),
    )
    resend_delay: float = Field(
        default=3.0,
        ge=0,
        le=60,
        description=(
            "Seconds after the reconnect before that re-send (time for subscribers to subscribe again to "
            "a restarted broker); what the broker acknowledges meanwhile is sent again too."
        ),
    )
    # ``true``/``false`` is the original form of this field and stays valid (no schema version bump); the
    # section form names the ids. Read it through StationConfig.sparkplug_ids(), which folds both forms.
    sparkplug: Annotated[
        Annotated[bool, Tag("flag")] | Annotated[SparkplugSection, Tag("section")],
        # Picks the branch by the value's type, so a bad section is reported once, as a section, and not
        # also as "expected a valid boolean".
        Discriminator(lambda value: "flag" if isinstance(value, bool) else "section"),
    ] = Field(
        default=False,
        description=(
            "Also publish Sparkplug B (NBIRTH/NDATA/NDEATH on spBv1.0/...): true, or a section naming "
            "the group, node and device ids."
        ),
    )

    @field_validator("host")
    @classmethod
    def _valid_host(cls, value: str) -> str:
        return check_host(value)

    @field_validator("username")
    @classmethod
    def _visible_username(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value)):
            raise ValueError("must not be blank or contain control characters")
        return value

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
