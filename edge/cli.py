"""``edge`` command line: one entry point, one module per command group.

Each module listed in :data:`COMMAND_MODULES` exposes ``register(subparsers)`` that adds its sub-commands and
sets ``func`` on their parsers; ``func(args) -> int`` is the exit code. An explicit list (not discovery)
so the set of commands is readable in one place.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

COMMAND_MODULES: tuple[str, ...] = (
    "edge.eval.cli",
    "edge.bench.cli",
    "export.cli",
    "edge.config.cli",
    "edge.flash.cli",
    "edge.capture.cli",
    "edge.runtime.cli",
    "edge.demo",
    "edge.soak.cli",
    "edge.enroll.cli",
    "edge.review.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser."""
    parser = argparse.ArgumentParser(prog="edge", description="Edge inspection station.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``edge`` command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
