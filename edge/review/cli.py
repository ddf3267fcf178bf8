"""``edge review``: hash a password, serve an archive without a station, API tokens, the OpenAPI document."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import pwd
import sys
import threading
import time
from pathlib import Path

from edge.config.errors import ConfigError
from edge.config.resolve import default_allowed_roots, load_and_resolve
from edge.flash.active import ActiveConfig, load_active_config
from edge.review.api.openapi import openapi_json
from edge.review.app import create_app
from edge.review.auth import PBKDF2_ITERATIONS, hash_password
from edge.review.live import StationSnapshot
from edge.review.station import StationReview, review_setup
from edge.review.tokens import ROLES, TOKENS_NAME, TokenError, TokenStore

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``review`` command group."""
    p = subparsers.add_parser("review", help="review UI: hash a password, serve an archive")
    sub = p.add_subparsers(dest="review_command", metavar="SUBCOMMAND")
    sub.required = True

    h = sub.add_parser(
        "hash-password",
        help="print a password hash for review.users[].password_hash",
        description="Reads the password from stdin when it is not a terminal, else prompts twice.",
    )
    h.add_argument("--iterations", type=int, default=PBKDF2_ITERATIONS, help="PBKDF2 iterations")
    h.set_defaults(func=hash_command)

    s = sub.add_parser(
        "serve",
        help="serve the review UI over the archive of a config (no station: dispositions are stored only)",
    )
    s.add_argument("--config", type=Path, required=True, help="station config (review and storage sections)")
    s.add_argument("--port", type=int, help="instead of review.port")
    s.set_defaults(func=serve_command)

    t = sub.add_parser(
        "token",
        help="API tokens of machine clients (HMI, MES): create, list, revoke",
        description="Tokens live hashed in <storage.data_dir>/review-tokens.json; a running station sees "
        "changes at its next request.",
    )
    tsub = t.add_subparsers(dest="token_command", metavar="ACTION")
    tsub.required = True
    create = tsub.add_parser("create", help="make a token (printed once, on stdout)")
    create.add_argument("name", help="which client it is for, e.g. mes or hmi-line2")
    create.add_argument("--role", choices=ROLES, default="operator", help="operator (default) or engineer")
    create.set_defaults(func=token_create_command)
    listing = tsub.add_parser("list", help="list tokens (never the tokens themselves)")
    listing.add_argument("--json", action="store_true", help="as JSON")
    listing.set_defaults(func=token_list_command)
    revoke = tsub.add_parser("revoke", help="refuse a token from now on")
    revoke.add_argument("name")
    revoke.set_defaults(func=token_revoke_command)
    for command in (create, listing, revoke):
        where = command.add_mutually_exclusive_group(required=True)
        where.add_argument("--root", type=Path, help="a flashed station root (its active config's data_dir)")
        where.add_argument("--config", type=Path, help="a station config (its storage.data_dir)")
        where.add_argument("--data-dir", type=Path, help="the data folder itself")

    o = sub.add_parser("openapi", help="print the OpenAPI document of the JSON API (docs/openapi.json)")
    o.set_defaults(func=openapi_command)


def hash_command(args: argparse.Namespace) -> int:
    """Print ``pbkdf2_sha256$...`` for a password read from stdin or the terminal."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Again: "):
            print("passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("empty password refused", file=sys.stderr)
        return 2
    print(hash_password(password, iterations=args.iterations))
    return 0


def serve_command(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    try:
        resolved = load_and_resolve(
            args.config, roots=default_allowed_roots(args.config), load_producer=False
        )
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    data_dir = resolved.paths.get("storage.data_dir", Path(resolved.config.storage.data_dir))
    setup = review_setup(resolved, data_dir, port=args.port)
    if setup is None:
        print(f"{args.config}: review.enabled is false (or no archive folder)", file=sys.stderr)
        return 2
    review = StationReview(
        setup, status=lambda: StationSnapshot("offline", "review only: no station running"), publish=None
    )
    print(f"review UI on {review.url} (Ctrl-C stops)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        review.stop()
    return 0


def _token_store(args: argparse.Namespace) -> TokenStore:
    """The token file of the station that ``--root``, ``--config`` or ``--data-dir`` names.

    Raises:
        ConfigError: The config does not load.
        TokenError: The station root has no valid active config.

    """
    if args.data_dir is not None:
        return TokenStore(args.data_dir / TOKENS_NAME)
    if args.root is not None:
        active = load_active_config(args.root)
        if not isinstance(active, ActiveConfig):
            raise TokenError(f"{args.root}: no valid active config ({active.reason})")
        resolved = active.resolved
    else:
        resolved = load_and_resolve(
            args.config, roots=default_allowed_roots(args.config), load_producer=False
        )
    data_dir = resolved.paths.get("storage.data_dir", Path(resolved.config.storage.data_dir))
    return TokenStore(data_dir / TOKENS_NAME)


def _shell_user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def token_create_command(args: argparse.Namespace) -> int:
    """Make a token and print it once (stdout); where it is stored goes to stderr."""
    try:
        store = _token_store(args)
        token, entry = store.create(args.name, args.role, created_by=_shell_user())
    except (ConfigError, TokenError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(token)
    print(
        f"token {entry.name!r} ({entry.role}) stored hashed in {store.path}; it is shown only now. "
        "Clients send it as 'Authorization: Bearer <token>'.",
        file=sys.stderr,
    )
    return 0


def token_list_command(args: argparse.Namespace) -> int:
    """One line per token: name, role, created, by whom, revoked."""
    try:
        tokens = _token_store(args).tokens()
    except (ConfigError, TokenError) as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.json:
        rows = [
            {
                "name": t.name,
                "role": t.role,
                "created": t.created,
                "created_by": t.created_by,
                "revoked": t.revoked,
            }
            for t in tokens
        ]
        print(json.dumps(rows, indent=2))
        return 0
    for t in tokens:
        state = (
            "active" if t.active else f"revoked {time.strftime('%Y-%m-%d %H:%M', time.localtime(t.revoked))}"
        )
        made = time.strftime("%Y-%m-%d %H:%M", time.localtime(t.created))
        print(f"{t.name:24} {t.role:9} made {made} by {t.created_by or '-':12} {state}")
    return 0


def token_revoke_command(args: argparse.Namespace) -> int:
    """Revoke the active token of that name."""
    try:
        entry = _token_store(args).revoke(args.name)
    except (ConfigError, TokenError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"token {entry.name!r} revoked", file=sys.stderr)
    return 0


def openapi_command(args: argparse.Namespace) -> int:
    """Print the OpenAPI document (``edge review openapi > docs/openapi.json``)."""
    sys.stdout.write(openapi_json(create_app(None).routes))
    return 0
