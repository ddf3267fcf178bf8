"""``make gpu-check``: the whole GPU path on a machine that has one.

Exports every precision (gated), builds the TensorRT engines for this device (each parity-checked against ONNX
Runtime on load), opens them through the runtime's backend selection (which must pick TensorRT with no
fallback), and measures batch-1 latency of the vision encoder per precision. Exit 0 on success, 1 on any
failed gate or fallback, 3 when this machine has no usable GPU.

    python -m export.gpu_check [--out DIR] [--calib DIR] [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge.artifacts.names import PRECISIONS


def _latency(infer: object, feeds: dict[str, np.ndarray], runs: int) -> dict[str, float]:
    assert callable(infer)
    for _ in range(20):
        infer(feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        infer(feeds)
        times.append((time.perf_counter() - start) * 1e3)
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p99_ms": round(float(np.percentile(times, 99)), 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the GPU check; returns the exit code."""
    from edge.artifacts.fingerprint import device_fingerprint, gpu_unavailable_reason
    from edge.engines.selection import open_runners
    from edge.model.spec import ModelSpec
    from export.calibration import load_calibration, synthetic_calibration
    from export.onnx_export import example_vision
    from export.pipeline import export_all
    from export.tensorrt_build import build_engines

    parser = argparse.ArgumentParser(prog="gpu-check", description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="artifact directory (default: a temp dir)")
    parser.add_argument("--calib", type=Path, default=None, help="golden images (default: synthetic SKU)")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args(argv)
    reason = gpu_unavailable_reason()
    if reason is not None:
        print(f"gpu-check: no usable GPU here: {reason}", file=sys.stderr)
        return 3
    spec = ModelSpec()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        out = args.out or Path(tmp)
        calib = args.calib
        export_all(
            spec,
            out,
            PRECISIONS,
            (lambda: load_calibration(calib, spec.input_size))
            if calib
            else (lambda: synthetic_calibration(spec.input_size)),
        )
        build = build_engines(out, PRECISIONS)
        feeds = {"image": example_vision(spec, batch=1)}
        report: dict[str, object] = {
            "fingerprint": device_fingerprint().to_json(),
            "build": build,
        }
        failed = False
        latency: dict[str, dict[str, object]] = {}
        for precision in PRECISIONS:
            selected = open_runners(out, precision)
            cpu = open_runners(out, precision, preference=("onnxruntime-cpu",))
            latency[precision] = {
                "backend": selected.choice.backend,
                "reasons": list(selected.choice.reasons),
                **_latency(selected.vision.infer, feeds, args.runs),
                "onnxruntime_cpu": _latency(cpu.vision.infer, feeds, max(20, args.runs // 4)),
            }
            failed |= selected.choice.backend != "tensorrt"
        report["latency"] = latency
        print(json.dumps(report, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
