"""``edge eval DATASET [--k K] [--perturb line] [--backbone B] [--out DIR]``."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from edge.engines.encoders import load_encoders
from edge.model.backbone_catalog import BACKBONE_NAMES, DEFAULT_BACKBONE
from edge.model.spec import ModelSpec

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the ``eval`` command."""
    p = sub.add_parser("eval", help="score the inspection on an MVTec AD or DeepPCB dataset")
    p.add_argument("dataset", type=Path, help="dataset folder (MVTec category/root or DeepPCB root/group)")
    p.add_argument("--k", type=int, default=None, help="golden images enrolled per SKU (default: all)")
    p.add_argument("--perturb", choices=["none", "line"], default="none", help="line = placement/light/noise")
    p.add_argument("--out", type=Path, default=Path("runs/eval"), help="output folder")
    p.add_argument("--backend", choices=["onnxruntime", "torch"], default="onnxruntime")
    p.add_argument("--category", action="append", help="only this category/group (repeatable)")
    p.add_argument(
        "--precision", choices=["fp32", "int8", "fp16"], default="fp32", help="exported model precision"
    )
    p.add_argument(
        "--calib", type=Path, default=None, help="golden images to calibrate INT8 on (default: synthetic)"
    )
    p.add_argument("--artifacts", type=Path, default=None, help="artifact dir (default: per-user cache)")
    p.add_argument(
        "--backbone",
        choices=BACKBONE_NAMES,
        default=DEFAULT_BACKBONE,
        help=f"ImageNet backbone of the vision encoder (default {DEFAULT_BACKBONE})",
    )
    p.add_argument(
        "--fusion",
        choices=["max", "mean", "geo"],
        default=None,
        help="fix the map fusion of every SKU (default: each SKU chooses)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation and print the metrics."""
    from dataclasses import replace

    from edge.eval.datasets import DatasetError
    from edge.eval.runner import run_eval
    from edge.inspection.inspector import Inspector
    from edge.inspection.settings import InspectorSettings
    from export.ensure import ensure_artifacts  # torch: only when an evaluation runs

    settings = InspectorSettings()
    if args.fusion:
        settings = replace(settings, fusion=args.fusion)
    spec = ModelSpec(backbone=args.backbone)
    if args.backend == "onnxruntime":
        # A workstation tool: it builds the artifacts it evaluates (the station never does).
        ensure_artifacts(spec, args.artifacts, args.precision, args.calib)
    encoders = load_encoders(spec, args.backend, args.artifacts, args.precision)
    log.info("model %s on %s (%s)", encoders.model_id, encoders.backend, encoders.state)
    inspector = Inspector(encoders, settings)
    try:
        metrics = run_eval(inspector, args.dataset, args.out, args.k, args.perturb == "line", args.category)
    except DatasetError as exc:
        log.error("%s", exc)
        return 2
    print(json.dumps(metrics, indent=2))
    print(f"wrote {args.out / 'metrics.json'} and {args.out / 'report.png'}")
    failed = sorted(name for name, m in metrics.items() if "error" in m)
    if failed:
        log.error("evaluation failed for %s (see metrics.json)", ", ".join(failed))
        return 1
    return 0
