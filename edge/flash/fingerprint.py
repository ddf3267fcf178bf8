"""TensorRT engines are not portable across TensorRT, CUDA or GPU changes: detect when they are stale.

The ``post-update`` hook compares the fingerprint recorded next to the engines (``engines/fingerprint.json``
in the artifact folder, or ``manifest.json``'s ``engine_fingerprint``, written by the export) with the
current one and, when they differ, calls ``edge export engines --if-stale`` to rebuild them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FINGERPRINT_KEYS = ("tensorrt", "cuda", "gpu")


def current_fingerprint() -> dict[str, str | None]:
    """Return TensorRT version, CUDA driver and GPU name/compute capability here (None if absent)."""
    try:
        import tensorrt

        trt: str | None = str(tensorrt.__version__)
    except ImportError:
        trt = None
    cuda = gpu = None
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = (
                subprocess.run(
                    [smi, "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
                    capture_output=True,
                    text=True,
                    timeout=20,
                    check=True,
                )
                .stdout.strip()
                .splitlines()
            )
        except (OSError, subprocess.SubprocessError):
            out = []
        if out:
            name, cap, driver = ([p.strip() for p in out[0].split(",")] + ["", "", ""])[:3]
            gpu, cuda = f"{name} sm_{cap}", driver
    elif Path("/etc/nv_tegra_release").exists():  # Jetson: no nvidia-smi; L4T release identifies the stack
        cuda = Path("/etc/nv_tegra_release").read_text().splitlines()[0].strip()
    return {"tensorrt": trt, "cuda": cuda, "gpu": gpu}


def recorded_fingerprint(artifact_dir: Path) -> dict[str, Any] | None:
    """Fingerprint the engines were built for, or None when the artifacts hold no engines."""
    candidates = [artifact_dir / "engines" / "fingerprint.json"]
    for path in candidates:
        if path.is_file():
            data = json.loads(path.read_text())
            return {k: data.get(k) for k in FINGERPRINT_KEYS}
    manifest = artifact_dir / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text()).get("engine_fingerprint")
        if isinstance(data, dict):
            return {k: data.get(k) for k in FINGERPRINT_KEYS}
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0: engines current (or none to rebuild) or rebuilt; non-zero: stale and not rebuilt."""
    parser = argparse.ArgumentParser(prog="rebuild-engines", description=__doc__)
    parser.add_argument("--artifact-dir", type=Path, default=Path(os.environ.get("EDGE_ARTIFACT_DIR") or "."))
    parser.add_argument(
        "--edge", default=os.environ.get("EDGE_PYTHON", sys.executable), help="python running edge"
    )
    args = parser.parse_args(argv)
    recorded = recorded_fingerprint(args.artifact_dir)
    current = current_fingerprint()
    if recorded is None:
        print(f"no TensorRT engines recorded in {args.artifact_dir}: nothing to rebuild")
        return 0
    if recorded == current:
        print(f"engines match this device ({current}): nothing to rebuild")
        return 0
    print(f"engines were built for {recorded}, this device is {current}: rebuilding")
    cmd = [
        args.edge,
        "-m",
        "edge.cli",
        "export",
        "engines",
        "--if-stale",
        "--artifacts",
        str(args.artifact_dir),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    sys.stdout.write(proc.stdout)
    sys.stdout.write(proc.stderr)
    if proc.returncode != 0:
        if "invalid choice" in proc.stderr or "No module named" in proc.stderr:
            print("`edge export engines` is not available in this software version: engines NOT rebuilt")
        else:
            print(f"`edge export engines --if-stale` failed (exit {proc.returncode}): engines NOT rebuilt")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
