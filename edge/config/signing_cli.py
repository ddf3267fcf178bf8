"""``edge config sign`` and ``edge config keygen``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.config.signing import SignatureError, generate_keypair, sign_file


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sign`` and ``keygen`` to the ``config`` group."""
    p = sub.add_parser("sign", help="write an ed25519 signature FILE.sig next to a config")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--key", type=Path, required=True, help="private key (PEM) from `edge config keygen`")
    p.set_defaults(func=_sign)

    p = sub.add_parser("keygen", help="create an ed25519 key pair for signing configs")
    p.add_argument("--out", type=Path, required=True, help="private key file; the public key goes to OUT.pub")
    p.set_defaults(func=_keygen)


def _sign(args: argparse.Namespace) -> int:
    try:
        out = sign_file(args.file, args.key)
    except (OSError, ValueError, SignatureError) as exc:
        print(f"cannot sign {args.file}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    public = args.out.with_name(args.out.name + ".pub")
    try:
        generate_keypair(args.out, public)
    except OSError as exc:
        print(f"cannot write keys: {exc}", file=sys.stderr)
        return 1
    print(
        f"private key: {args.out} (keep it off stations)\npublic key: {public} (copy to <root>/trusted_keys/)"
    )
    return 0
