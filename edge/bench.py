"""``edge bench`` (``make bench``): measured latency of the inspection on this machine.

Per frame: encode, retrieve, register, compare, post-process, with the golden bank's features cached, at the
station's default input size, on ONNX Runtime and on PyTorch. Every figure in the README comes from here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge.eval.metrics import percentiles
from edge.inspection.backbone_catalog import BACKBONES, DEFAULT_BACKBONE, BackboneName
from edge.inspection.inspector import Inspector
from edge.inspection.model import ModelSpec, load_encoders
from edge.inspection.synthetic import DEFECTS, make_part

STAGES = (
    "encode",
    "retrieve",
    "register",
    "pixel_compare",
    "feature_compare",
    "memory_compare",
    "whole_part",
    "postprocess",
    "total",
)


def bench_inspection(
    backend: str,
    frames: int = 200,
    size: int = 640,
    golden: int = 16,
    warmup: int = 10,
    seed: int = 0,
    every_branch: bool = False,
    backbone: BackboneName = DEFAULT_BACKBONE,
) -> dict[str, Any]:
    """Per-stage latency (p50/p99 ms) of ``Inspector.inspect`` on synthetic parts of ``size`` px.

    The bench SKU configures itself like any SKU (a rigid, pixel-repeatable part: it may leave the patch
    memory out). ``every_branch`` then switches on every comparison (template, pixel, patch memory, whole
    part) whatever it chose: the per-frame cost of a SKU that needs all of them. ``backbone`` picks the vision
    encoder's ImageNet backbone (``model.backbone``).
    """
    rng = np.random.default_rng(seed)
    inspector = Inspector(load_encoders(ModelSpec(backbone=backbone), backend))
    bank = inspector.enroll("bench", [(f"g{i}", make_part(rng, size).image) for i in range(golden)])
    label = f"{inspector.encoders.backend} {backbone}"
    if every_branch and bank.calibration is not None:
        bank.calibration.maps = ["template", "pixel", "memory"]
        bank.calibration.whole_part = "max" if bank.whole_part is not None else "off"
        label += " (every branch)"
    parts = [make_part(rng, size, DEFECTS[i % len(DEFECTS)] if i % 3 == 0 else None).image for i in range(32)]
    for i in range(warmup):
        inspector.inspect(parts[i % len(parts)], "bench")
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    wall = []
    for i in range(frames):
        t0 = time.perf_counter()
        result = inspector.inspect(parts[i % len(parts)], "bench")
        wall.append((time.perf_counter() - t0) * 1e3)
        for stage in STAGES:
            per_stage[stage].append(result.latency_ms.get(stage, 0.0))
    return {
        "backend": label,
        "chosen": None if bank.calibration is None else bank.calibration.capability.get("choice"),
        "frames": frames,
        "frame_size": f"{size}x{size}",
        "input_size": "x".join(str(v) for v in inspector.encoders.spec.input_size),
        "stages_ms": {s: percentiles(v) for s, v in per_stage.items()},
        "wall_ms": percentiles(wall),
        "fps_p50": round(1000.0 / float(np.median(wall)), 1),
    }


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "malloc_tuned": "MALLOC_MMAP_THRESHOLD_" in os.environ,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    """Per-stage p50/p99 table, one column pair per measured configuration."""
    widths = [max(12, len(r["backend"])) for r in rows]
    print(f"{'':<16}" + "".join(f"  {r['backend']:>{w + 8}}" for r, w in zip(rows, widths, strict=True)))
    header = f"{'stage':<16}" + "".join(f"  {'p50':>{w}}{'p99':>8}" for w in widths)
    print(header)
    print("-" * len(header))
    for stage in STAGES:
        line = f"{stage:<16}"
        for r, w in zip(rows, widths, strict=True):
            p = r["stages_ms"][stage] or {"p50": 0.0, "p99": 0.0}
            line += f"  {p['p50']:>{w}.2f}{p['p99']:>8.2f}"
        print(line)
    for r in rows:
        print(
            f"{r['backend']}: {r['fps_p50']} frames/s at p50 ({r['frames']} frames {r['frame_size']}, "
            f"model input {r['input_size']}; the SKU chose: {r.get('chosen')})"
        )


def register(sub: Any) -> None:
    """Add the ``bench`` command."""
    p = sub.add_parser("bench", help="measure inspection latency (ONNX Runtime and PyTorch) on this machine")
    p.add_argument("--frames", type=int, default=200, help="frames per backend (>= 200 for p99)")
    p.add_argument("--size", type=int, default=640, help="frame side in pixels")
    p.add_argument("--backend", action="append", choices=["onnxruntime", "torch"], help="default: both")
    p.add_argument(
        "--backbone",
        action="append",
        choices=sorted(BACKBONES),
        help=f"vision encoder backbone(s) to measure on ONNX Runtime besides the default {DEFAULT_BACKBONE}",
    )
    p.add_argument("--out", type=Path, default=Path("runs/bench/bench.json"))
    p.add_argument("--skip-precisions", action="store_true", help="skip the FP32 vs INT8 encoder table")
    p.add_argument("--skip-e2e", action="store_true", help="skip the end-to-end station run (MQTT)")
    p.add_argument("--e2e-seconds", type=float, default=15.0, help="measured seconds per replay rate")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmarks, print the table, write JSON."""
    rows = [bench_inspection(b, args.frames, args.size) for b in (args.backend or ["onnxruntime", "torch"])]
    rows.append(bench_inspection("onnxruntime", args.frames, args.size, every_branch=True))
    for backbone in args.backbone or []:
        if backbone != DEFAULT_BACKBONE:
            rows.append(bench_inspection("onnxruntime", args.frames, args.size, backbone=backbone))
            rows.append(
                bench_inspection("onnxruntime", args.frames, args.size, every_branch=True, backbone=backbone)
            )
    print("\n== inspection latency per frame (edge/bench.py) ==")
    print_table(rows)
    report: dict[str, Any] = {"machine": machine(), "inspection": rows}
    if not args.skip_precisions:
        from export.bench import bench_precisions

        precisions = bench_precisions(runs=max(200, args.frames))
        print("\n== vision encoder, ONNX Runtime CPU, batch 1: FP32 vs INT8 (export/bench.py) ==")
        for r in precisions:
            print(
                f"{r['precision']:>6}: p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
                f"speed-up {r['speedup_p50']}x"
            )
        report["precisions"] = precisions
    if not args.skip_e2e:
        from edge.runtime.bench import bench_end_to_end, format_table

        e2e = bench_end_to_end(seconds=args.e2e_seconds)
        print(
            "\n== station end to end: replay -> inspect -> outbox -> MQTT -> subscriber (runtime/bench.py) =="
        )
        print(format_table(e2e))
        report["end_to_end"] = e2e
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0
