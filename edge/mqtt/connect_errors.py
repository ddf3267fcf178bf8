"""Why the station cannot reach its broker, in the words a line engineer needs to fix it.

paho reports a failed connection attempt with no reason at all (``on_connect_fail`` has no argument), and a
socket or TLS exception text such as ``[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to
get local issuer certificate (_ssl.c:1006)`` names neither the setting to look at nor what is wrong. This
module turns the exception of one attempt into one sentence that does, naming the config keys involved.
"""

from __future__ import annotations

import socket
import ssl

from paho.mqtt.reasoncodes import ReasonCode

#: OpenSSL X509 verify codes (``X509_V_ERR_*``) the station meets, in plain words.
_VERIFY_CODES = {
    2: "it is not signed by a CA in mqtt.tls.ca",
    10: "it has expired",
    9: "it is not valid yet (check the station's clock)",
    18: "it is self-signed and not in mqtt.tls.ca",
    19: "it is not signed by a CA in mqtt.tls.ca (its chain ends at another CA)",
    20: "it is not signed by a CA in mqtt.tls.ca",
    21: "it is not signed by a CA in mqtt.tls.ca",
    62: "it is not valid for this host name",
}

#: OpenSSL alert reasons sent by a broker that does not accept the station's client certificate.
_CLIENT_CERT_REASONS = (
    "CERTIFICATE_REQUIRED",
    "BAD_CERTIFICATE",
    "UNKNOWN_CA",
    "CERTIFICATE_UNKNOWN",
    "HANDSHAKE_FAILURE",
)


def explain_connect_error(exc: BaseException | None, host: str, port: int, tls: bool) -> str:
    """One sentence on why connecting to ``host:port`` failed.

    Args:
        exc: the exception of the failed attempt (``None`` when paho gave none).
        host: broker host as configured (``mqtt.host``).
        port: broker port (``mqtt.port``).
        tls: whether the station speaks TLS (``mqtt.tls`` is set).

    """
    where = f"{host}:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        detail = _VERIFY_CODES.get(code) if isinstance(code, int) else None
        if code == 62 or "Hostname mismatch" in str(getattr(exc, "verify_message", "")):
            detail = (
                f"it is not valid for the host name '{host}' (mqtt.host must be a name in the certificate)"
            )
        message = getattr(exc, "verify_message", None) or str(exc)
        return f"TLS: the broker's certificate at {where} is refused: {detail or message}"
    if isinstance(exc, ssl.SSLError):
        reason = str(getattr(exc, "reason", "") or "")
        if reason == "WRONG_VERSION_NUMBER" or "wrong version number" in str(exc):
            return f"TLS: {where} does not speak TLS (a plain MQTT port? check mqtt.port and mqtt.tls)"
        if any(r in reason for r in _CLIENT_CERT_REASONS):
            return (
                f"TLS: the broker at {where} refused the station's client certificate ({reason}): it needs "
                "mqtt.tls.cert and mqtt.tls.key signed by a CA the broker trusts"
            )
        return f"TLS handshake with {where} failed: {reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"the broker host name '{host}' does not resolve (mqtt.host; DNS or /etc/hosts)"
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing accepts connections on {where} (broker not running, or wrong mqtt.port)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer from {where} (network, firewall or wrong mqtt.host)"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ssl.SSLEOFError) and tls:
        return f"{where} closed the connection during the TLS handshake: {_EARLY_CLOSE_TLS}"
    if isinstance(exc, OSError):
        return f"cannot connect to broker {where}: {exc.strerror or exc}"
    return f"cannot connect to broker {where}"


_EARLY_CLOSE_TLS = (
    "is it a plain MQTT port (mqtt.port), or does the broker require a client certificate "
    "(mqtt.tls.cert and mqtt.tls.key)?"
)


def explain_early_close(reason: ReasonCode | str, host: str, port: int, tls: bool) -> str:
    """One sentence on a broker that closed the connection before it accepted (or refused) the station.

    Over TLS 1.3 a broker that wants a client certificate finds out only after the client's side of the
    handshake is done, so the refusal arrives as a closed connection rather than a handshake error.
    """
    closed = f"broker {host}:{port} closed the connection before accepting the station ({reason})"
    return f"{closed}: {_EARLY_CLOSE_TLS}" if tls else closed


def explain_refusal(reason: ReasonCode, host: str, port: int) -> str:
    """One sentence on a CONNACK that refuses the station (``reason`` is the broker's reason code)."""
    where = f"{host}:{port}"
    text = str(reason)
    if text in ("Bad user name or password", "Not authorized"):
        return (
            f"broker {where} refused connection: {text} (check mqtt.username and mqtt.password, and the "
            "broker's password file or ACL)"
        )
    if text == "Client identifier not valid":
        return f"broker {where} refused connection: {text} (mqtt.client_id)"
    return f"broker {where} refused connection: {text}"
