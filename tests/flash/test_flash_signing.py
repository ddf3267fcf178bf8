from __future__ import annotations

import shutil
from pathlib import Path

from edge.config.signing import generate_keypair, sign_file
from edge.flash.flash import FlashOptions, flash
from flash.flash_helpers import standin_builder


def opts(root: Path) -> FlashOptions:
    return FlashOptions(root=root, bank_builder=standin_builder())


def test_unsigned_config_flashes_when_no_key_is_trusted(bundle: Path, root: Path) -> None:
    assert flash(bundle, opts(root)).ok


def test_trusted_key_requires_a_valid_signature(bundle: Path, root: Path, tmp_path: Path) -> None:
    key = tmp_path / "keys" / "eng.key"
    key.parent.mkdir()
    generate_keypair(key, key.with_suffix(".pub"))
    (root / "trusted_keys").mkdir(parents=True)
    shutil.copy(key.with_suffix(".pub"), root / "trusted_keys" / "eng.pub")

    result = flash(bundle, opts(root))
    assert result.result == "aborted" and "only accepts signed configs" in result.reason

    sign_file(bundle, key)
    result = flash(bundle, opts(root))
    assert result.ok, result.reason

    bundle.write_text(
        bundle.read_text().replace("top_k", "top_k").replace("st1", "st2")
    )  # tampered after signing
    result = flash(bundle, opts(root))
    assert result.result == "aborted" and "signature does not match" in result.reason

    other = tmp_path / "keys" / "intruder.key"
    generate_keypair(other, other.with_suffix(".pub"))
    sign_file(bundle, other)
    assert "signature does not match" in flash(bundle, opts(root)).reason
