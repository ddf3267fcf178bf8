"""``edge review hash-password`` and ``edge review serve`` (the UI over an archive, without a station)."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
import threading
from pathlib import Path

from edge.config.errors import ConfigError
from edge.config.resolve import default_allowed_roots, load_and_resolve
from edge.review.auth import PBKDF2_ITERATIONS, hash_password
from edge.review.live import StationSnapshot
from edge.review.station import StationReview, review_setup

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
