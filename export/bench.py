"""FP32 vs INT8 latency of the vision encoder in ONNX Runtime on this machine (batch 1), for ``make bench``.

Runs are interleaved (one FP32 run, one INT8 run, ...) so that load from other processes on a shared machine
hits both precisions alike; the ratio is more trustworthy than either absolute figure.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge.artifacts.manifest import load_manifest, verify_manifest
from edge.artifacts.names import Precision, onnx_file
from edge.engines.onnxruntime_runner import OnnxRuntimeRunner, default_threads
from edge.model.spec import ModelSpec, default_artifact_dir, spec_model_id


def _bench_image(spec: ModelSpec) -> np.ndarray:
    from edge.model.preprocess import ViewSettings, prepare
    from edge.synthetic.parts import make_part

    part = make_part(np.random.default_rng(0))
    return prepare(part.image, spec.input_size, ViewSettings(), "bench").model_input[None]


def _ensure_artifacts(spec: ModelSpec, artifact_dir: Path, precisions: Sequence[Precision]) -> None:
    from export.onnx_export import ensure_onnx

    ensure_onnx(spec, artifact_dir)
    listed = load_manifest(artifact_dir).files
    if "int8" in precisions and onnx_file("vision", "int8") not in listed:
        from export.calibration import synthetic_calibration
        from export.pipeline import export_int8

        export_int8(spec, artifact_dir, synthetic_calibration(spec.input_size))
    if "fp16" in precisions and onnx_file("vision", "fp16") not in listed:
        from export.pipeline import export_fp16

        export_fp16(spec, artifact_dir)


def bench_precisions(
    artifact_dir: Path | None = None,
    spec: ModelSpec | None = None,
    precisions: Sequence[Precision] = ("fp32", "int8"),
    runs: int = 200,
    warmup: int = 20,
    threads: int | None = None,
) -> list[dict[str, object]]:
    """Measure the vision encoder's latency per precision with ONNX Runtime CPU, batch 1.

    Missing artifacts are exported first (INT8 calibrated on the synthetic SKU when no golden images were
    given to ``edge export int8``); the manifest is verified before timing.

    Args:
        artifact_dir: Artifact set (default: the runtime's cache for ``spec``).
        spec: Model settings (default :class:`ModelSpec`).
        precisions: Precisions to time (``fp32`` first: it is the reference of the speed-up).
        runs: Timed runs per precision (at least 200 for a meaningful p99).
        warmup: Untimed runs per precision first.
        threads: ONNX Runtime intra-op threads (default: every core available).

    Returns:
        One row per precision: name, backend, precision, batch, input size, threads, runs, p50/p99/mean
        milliseconds and p50 speed-up relative to the first precision.

    """
    spec = spec or ModelSpec()
    directory = artifact_dir or default_artifact_dir(spec)
    _ensure_artifacts(spec, directory, precisions)
    files = {p: onnx_file("vision", p) for p in precisions}
    verify_manifest(directory, spec_model_id(spec), require=files.values())
    threads = threads or default_threads()
    runners = {p: OnnxRuntimeRunner(directory / f, threads=threads) for p, f in files.items()}
    feeds = {"image": _bench_image(spec)}
    for runner in runners.values():
        for _ in range(warmup):
            runner.infer(feeds)
    times: dict[Precision, list[float]] = {p: [] for p in precisions}
    for _ in range(runs):
        for precision, runner in runners.items():
            start = time.perf_counter()
            runner.infer(feeds)
            times[precision].append((time.perf_counter() - start) * 1e3)
    rows: list[dict[str, object]] = []
    base = float(np.percentile(times[precisions[0]], 50))
    for precision in precisions:
        t = np.asarray(times[precision])
        p50 = float(np.percentile(t, 50))
        rows.append(
            {
                "name": "vision_encoder",
                "backend": runners[precision].backend,
                "precision": precision,
                "batch": 1,
                "input_size": list(spec.input_size),
                "threads": threads,
                "runs": runs,
                "p50_ms": round(p50, 3),
                "p99_ms": round(float(np.percentile(t, 99)), 3),
                "mean_ms": round(float(t.mean()), 3),
                "speedup_p50": round(base / p50, 3),
            }
        )
    return rows
