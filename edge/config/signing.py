"""Optional signed configs: an ed25519 detached signature ``FILE.sig`` over the exact bytes of ``FILE``.

When the station holds a trusted public key (``<root>/trusted_keys/*.pub``), ``edge flash`` accepts only
configs signed by one of those keys, so changing what a station runs needs the private key, not just
access to the flash command. Keys and signatures are PEM / base64 text so they survive copy-paste and email.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_SUFFIX = ".sig"
PUBLIC_KEY_SUFFIX = ".pub"


class SignatureError(Exception):
    """A config's signature is missing, malformed or made by an untrusted key."""


def signature_path(config_path: Path) -> Path:
    """Where the detached signature of ``config_path`` lives."""
    return config_path.with_name(config_path.name + SIGNATURE_SUFFIX)


def generate_keypair(private_path: Path, public_path: Path) -> None:
    """Write a new ed25519 key pair (PKCS8 PEM private key with mode 0600, SubjectPublicKeyInfo PEM)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private_path.touch(mode=0o600, exist_ok=False)
    private_path.write_bytes(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def sign_file(config_path: Path, private_key_path: Path) -> Path:
    """Sign ``config_path`` with the private key; returns the signature file written next to it."""
    key = serialization.load_pem_private_key(private_key_path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{private_key_path} is not an ed25519 private key")
    signature = key.sign(config_path.read_bytes())
    out = signature_path(config_path)
    out.write_text(base64.b64encode(signature).decode() + "\n", encoding="ascii")
    return out


def load_trusted_keys(folder: Path) -> dict[str, Ed25519PublicKey]:
    """Public keys in ``folder`` (``*.pub``), by file name; empty when the folder does not exist."""
    keys: dict[str, Ed25519PublicKey] = {}
    if not folder.is_dir():
        return keys
    for path in sorted(folder.glob("*" + PUBLIC_KEY_SUFFIX)):
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except ValueError as exc:
            raise SignatureError(f"trusted key {path} is not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SignatureError(f"trusted key {path} is not an ed25519 key")
        keys[path.name] = key
    return keys


def verify_file(data: bytes, signature_file: Path, keys: dict[str, Ed25519PublicKey]) -> str:
    """Check that ``data`` (the config bytes) is signed by one of ``keys``.

    Returns:
        The name of the key that signed it.

    Raises:
        SignatureError: No signature file, malformed signature, or no trusted key verifies it.

    """
    try:
        signature = base64.b64decode(signature_file.read_text(encoding="ascii").strip(), validate=True)
    except FileNotFoundError:
        raise SignatureError(
            f"this station only accepts signed configs and {signature_file} does not exist "
            "(sign with: edge config sign FILE --key KEY)"
        ) from None
    except (OSError, ValueError, binascii.Error) as exc:
        raise SignatureError(f"{signature_file} is not a base64 ed25519 signature: {exc}") from None
    for name, key in keys.items():
        try:
            key.verify(signature, data)
        except InvalidSignature:
            continue
        return name
    raise SignatureError(f"{signature_file}: signature does not match the config or no trusted key made it")
