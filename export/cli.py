"""``edge export ...``: the export toolchain's commands.

    edge export onnx    [--out DIR] [--input-size H W] [--backbone B]  FP32 encoders, gated on PyTorch parity
    edge export int8    [--out DIR] (--calib DIR | --synthetic-calib)  Q/DQ INT8 vision encoder, cosine gate
    edge export fp16    [--out DIR]                                    FP16 encoders, gated on FP32
    edge export all     [--out DIR] [--calib DIR]                      the three above, in order
    edge export verify  DIR                                            check files against manifest.json
    edge export engines DIR [--precision P] [--if-stale]               TensorRT engines for this device
    edge export fingerprint                                            TensorRT/CUDA/GPU key of this device
    edge export bench   [--out DIR] [--runs N]                         FP32 vs INT8 latency (ONNX Runtime CPU)

Exit codes: 0 success; 1 a gate or build failed; 2 bad input (missing calibration images, bad manifest);
3 no GPU for ``engines`` when ``--require-gpu`` is given.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from edge.artifacts.names import PRECISIONS, Precision, parse_precision
from edge.model.backbone_catalog import BACKBONE_NAMES, DEFAULT_BACKBONE

log = logging.getLogger(__name__)


def _spec(args: argparse.Namespace) -> Any:
    from edge.model.spec import ModelSpec

    if args.input_size:
        return ModelSpec(input_size=tuple(args.input_size), backbone=args.backbone)
    return ModelSpec(backbone=args.backbone)


def _out(args: argparse.Namespace, spec: Any) -> Path:
    from edge.model.spec import default_artifact_dir

    return Path(args.out) if args.out else default_artifact_dir(spec)


def _calibration(args: argparse.Namespace, spec: Any) -> Any:
    from export.calibration import load_calibration, synthetic_calibration

    if args.calib:
        return lambda: load_calibration(Path(args.calib), spec.input_size)
    if args.synthetic_calib:
        return lambda: synthetic_calibration(spec.input_size)
    return None


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None, help="artifact directory (default: the runtime's cache)")
    p.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="vision encoder input size (multiples of 64; default 320 320)",
    )
    p.add_argument(
        "--backbone",
        choices=BACKBONE_NAMES,
        default=DEFAULT_BACKBONE,
        help=f"vision encoder backbone (default {DEFAULT_BACKBONE}; must match the station's model.backbone)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")


def _add_calib(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--calib", type=Path, default=None, help="golden images of the SKU (every 5th held out)"
    )
    group.add_argument("--synthetic-calib", action="store_true", help="calibrate on the synthetic SKU")


def register(sub: Any) -> None:
    """Add ``edge export`` and its sub-commands."""
    export = sub.add_parser(
        "export", help="export, quantize and gate model artifacts; build TensorRT engines"
    )
    cmds = export.add_subparsers(dest="export_command", metavar="STEP")
    cmds.required = True

    p = cmds.add_parser("onnx", help="export the FP32 ONNX encoders (parity-gated)")
    _add_common(p)
    p.set_defaults(func=_run_steps, precisions=["fp32"], calib=None, synthetic_calib=False)

    p = cmds.add_parser("int8", help="quantize the vision encoder to Q/DQ INT8 (cosine-gated)")
    _add_common(p)
    _add_calib(p)
    p.set_defaults(func=_run_steps, precisions=["int8"])

    p = cmds.add_parser("fp16", help="convert the encoders to FP16 for GPUs (parity-gated)")
    _add_common(p)
    p.set_defaults(func=_run_steps, precisions=["fp16"], calib=None, synthetic_calib=False)

    p = cmds.add_parser("all", help="FP32, INT8 and FP16 in order")
    _add_common(p)
    _add_calib(p)
    p.set_defaults(func=_run_steps, precisions=list(PRECISIONS))

    p = cmds.add_parser("verify", help="check an artifact set against its manifest")
    p.add_argument("dir", type=Path)
    p.add_argument("--model-id", default=None, help="also require this model id")
    p.set_defaults(func=_run_verify)

    p = cmds.add_parser("engines", help="build TensorRT engines for this device (post-update hook)")
    p.add_argument("dir", type=Path, help="artifact directory")
    p.add_argument(
        "--precision",
        action="append",
        type=parse_precision,
        default=None,
        help=f"repeatable; one of {', '.join(PRECISIONS)} (default: every exported one)",
    )
    p.add_argument(
        "--if-stale",
        action="store_true",
        help="only rebuild engines whose TensorRT/CUDA/GPU key or source ONNX changed",
    )
    p.add_argument("--require-gpu", action="store_true", help="exit 3 instead of 0 when there is no GPU")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_engines)

    p = cmds.add_parser("fingerprint", help="print this device's TensorRT/CUDA/GPU fingerprint as JSON")
    p.set_defaults(func=_run_fingerprint)

    p = cmds.add_parser("bench", help="FP32 vs INT8 vision encoder latency, ONNX Runtime CPU, batch 1")
    _add_common(p)
    p.add_argument("--runs", type=int, default=200)
    p.set_defaults(func=_run_bench)


def _run_steps(args: argparse.Namespace) -> int:
    from edge.artifacts.manifest import ManifestError
    from edge.engines.parity import ParityError
    from export.calibration import CalibrationError
    from export.onnx_export import ensure_onnx
    from export.pipeline import export_all, export_fp16, export_int8

    spec = _spec(args)
    out = _out(args, spec)
    precisions: list[Precision] = args.precisions
    try:
        if precisions == ["int8"] or precisions == ["fp16"]:
            # A single reduced-precision step builds on the FP32 export (made if absent, verified if present).
            ensure_onnx(spec, out)
            if precisions == ["int8"]:
                calibration = _calibration(args, spec)
                if calibration is None:
                    log.error(
                        "INT8 needs calibration images: --calib DIR (golden images) or --synthetic-calib"
                    )
                    return 2
                report: object = export_int8(spec, out, calibration())
            else:
                report = export_fp16(spec, out)
        else:
            report = export_all(
                spec, out, precisions, _calibration(args, spec), progress=not args.no_progress
            )
    except ParityError as exc:
        log.error("gate failed, nothing installed: %s", exc)
        return 1
    except (CalibrationError, ManifestError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    print(json.dumps(report, indent=2, default=str))
    print(f"artifacts in {out}")
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    from edge.artifacts.manifest import ManifestError, verify_manifest

    try:
        manifest = verify_manifest(args.dir, args.model_id)
    except ManifestError as exc:
        log.error("%s", exc)
        return 2
    print(json.dumps({"model_id": manifest.model_id, "files": sorted(manifest.files)}, indent=2))
    return 0


def _run_engines(args: argparse.Namespace) -> int:
    from edge.artifacts.fingerprint import GpuUnavailableError
    from edge.artifacts.manifest import ManifestError, load_manifest
    from edge.engines.parity import ParityError
    from export.tensorrt_build import EngineBuildError, build_engines

    try:
        precisions: list[Precision] = args.precision or sorted(
            {parse_precision(e.precision) for e in load_manifest(args.dir).files.values()},
            key=PRECISIONS.index,
        )
        report = build_engines(args.dir, precisions, if_stale=args.if_stale, progress=not args.no_progress)
    except GpuUnavailableError as exc:
        # A CPU-only station has nothing to rebuild: not a failed firmware update, unless a GPU is required.
        log.warning("no TensorRT engines built: %s", exc)
        return 3 if args.require_gpu else 0
    except ManifestError as exc:
        log.error("%s", exc)
        return 2
    except (EngineBuildError, ParityError) as exc:
        log.error("engine build failed: %s", exc)
        return 1
    print(json.dumps(report, indent=2, default=str))
    return 0


def _run_fingerprint(args: argparse.Namespace) -> int:
    from edge.artifacts.fingerprint import GpuUnavailableError, device_fingerprint

    try:
        print(device_fingerprint().to_json())
    except GpuUnavailableError as exc:
        print(json.dumps({"gpu": None, "reason": str(exc)}))
        return 3
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    from export.bench import bench_precisions

    spec = _spec(args)
    rows = bench_precisions(_out(args, spec), spec, runs=args.runs)
    print(json.dumps(rows, indent=2))
    return 0
