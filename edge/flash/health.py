"""Station health check for the ``health-check`` hook and A/B OS updaters (RAUC, Mender): exit 0 = healthy.

Healthy means: the active slot is complete and intact, its config validates and resolves, and, when a station
process has registered a pid file, that process is alive.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from edge.flash.active import SafeMode, load_active_config
from edge.flash.reload import PID_FILE, RUN_DIR, running_station_pid

DEFAULT_ROOT = "/var/lib/edge/station"


def check(root: Path) -> tuple[bool, str]:
    """``(healthy, one-line explanation)``."""
    active = load_active_config(root)
    if isinstance(active, SafeMode):
        return False, f"safe mode: {active.reason}"
    if (root / RUN_DIR / PID_FILE).exists() and running_station_pid(root) is None:
        return False, f"station pid file {root / RUN_DIR / PID_FILE} names no running process"
    return True, f"slot {active.slot} config {active.config_hash} ({active.config.topic_root}) ok"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the health check."""
    parser = argparse.ArgumentParser(prog="edge-health-check", description=__doc__)
    parser.add_argument(
        "--root", type=Path, default=Path(os.environ.get("EDGE_STATION_ROOT") or DEFAULT_ROOT)
    )
    args = parser.parse_args(argv)
    healthy, why = check(args.root)
    print(("healthy: " if healthy else "unhealthy: ") + why)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
