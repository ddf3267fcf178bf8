"""``edge config validate|schema|show|diff|sign|keygen``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from edge.config.errors import ConfigError
from edge.config.loader import load_config, read_document, validate_document
from edge.config.render import config_hash, diff, masked_view
from edge.config.resolve import default_allowed_roots, resolve_config
from edge.config.schema import SCHEMA_PATH, schema_text

ENV_STATION_ROOT = "EDGE_STATION_ROOT"
DEFAULT_STATION_ROOT = Path("/var/lib/edge/station")


def station_root(args: argparse.Namespace) -> Path:
    """``--root``, else ``$EDGE_STATION_ROOT``, else ``/var/lib/edge/station``."""
    root = getattr(args, "root", None) or os.environ.get(ENV_STATION_ROOT)
    return Path(root) if root else DEFAULT_STATION_ROOT


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``config`` command group."""
    parser = subparsers.add_parser("config", help="check, show and compare station configs")
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("validate", help="validate config files (pure: touches no camera, broker or GPU)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.set_defaults(func=_validate)

    p = sub.add_parser("schema", help="print the JSON Schema of station configs")
    p.add_argument("--write", action="store_true", help=f"write it to {SCHEMA_PATH.name} in station_configs/")
    p.add_argument("--out", type=Path, help="write it to this file")
    p.set_defaults(func=_schema)

    p = sub.add_parser("show", help="print a config resolved on this machine, secrets masked")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--root", type=Path, help=f"station root (default ${ENV_STATION_ROOT})")
    p.add_argument("--allow", type=Path, action="append", default=[], help="extra allowed data root")
    p.set_defaults(func=_show)

    p = sub.add_parser("diff", help="what changes from config A to config B (exit 1 when they differ)")
    p.add_argument("a", type=Path, metavar="A")
    p.add_argument("b", type=Path, metavar="B")
    p.set_defaults(func=_diff)

    from edge.config import signing_cli  # local: keeps `cryptography` off the validate path

    signing_cli.register(sub)


def _validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            config = load_config(path)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        print(
            f"{path}: ok (station {config.topic_root}, {len(config.skus)} SKUs, hash {config_hash(config)})"
        )
    return 1 if failed else 0


def _schema(args: argparse.Namespace) -> int:
    text = schema_text()
    targets = [p for p in (args.out, SCHEMA_PATH if args.write else None) if p is not None]
    for target in targets:
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}", file=sys.stderr)
    if not targets:
        sys.stdout.write(text)
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        document = read_document(args.file)
        config = validate_document(document, source=str(args.file))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    roots = default_allowed_roots(args.file, station_root(args), args.allow)
    try:
        resolved = resolve_config(config, source=args.file, roots=roots, lines=document.lines)
    except ConfigError as exc:
        print(f"# not resolvable on this machine:\n{exc}", file=sys.stderr)
        return 1
    print(f"# {args.file} (hash {config_hash(config)}), resolved; secrets masked")
    sys.stdout.write(yaml.safe_dump(masked_view(resolved), sort_keys=False))
    return 0


def _diff(args: argparse.Namespace) -> int:
    try:
        a, b = load_config(args.a), load_config(args.b)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    lines = diff(a, b)
    for line in lines:
        print(line)
    if not lines:
        print("no differences", file=sys.stderr)
    return 1 if lines else 0
