"""The export steps in order: FP32 -> INT8 (Q/DQ) and FP16, each gated, each recorded in the manifest.

Every reduced-precision step starts from a *verified* FP32 set (its manifest checked), writes into a temporary
directory, gates the result, and only then moves it in and records it. The manifest entry of a file being
replaced is dropped before the file moves, so a crash between the two leaves a file the runtime refuses,
never a stale entry that vouches for new bytes.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge.artifacts.manifest import Manifest, verify_manifest, write_manifest
from edge.artifacts.names import Encoder, Precision, onnx_file
from edge.engines.onnxruntime_runner import OnnxRuntimeRunner
from edge.engines.parity import ParityError, Tolerance, compare
from edge.model.spec import ModelSpec, spec_model_id
from export.calibration import CalibrationSet
from export.fp16 import convert_fp16
from export.gates import (
    FP16_COMPARISON_TOLERANCES,
    FP16_VISION_TOLERANCES,
    INT8_GATE,
    CosineGate,
    feature_cosine_gate,
)
from export.onnx_export import example_comparison, example_vision, export_onnx
from export.quantize import ORT_INT8, TRT_INT8, QdqFlavour, quantize_vision

log = logging.getLogger(__name__)


def _verified_fp32(spec: ModelSpec, out_dir: Path) -> Manifest:
    return verify_manifest(
        out_dir, spec_model_id(spec), require=(onnx_file("vision"), onnx_file("comparison"))
    )


def _install(out_dir: Path, tmp_dir: Path, manifest: Manifest, names: Sequence[str]) -> None:
    for name in names:
        manifest.files.pop(name, None)
    write_manifest(out_dir, manifest)
    for name in names:
        (tmp_dir / name).replace(out_dir / name)


def export_int8(
    spec: ModelSpec, out_dir: Path, calibration: CalibrationSet, gate: CosineGate = INT8_GATE
) -> dict[str, object]:
    """Quantize the vision encoder (both Q/DQ flavours), gate each on held-out images, record them.

    Args:
        spec: Model settings; ``out_dir`` must hold its verified FP32 export.
        out_dir: Artifact directory.
        calibration: Golden images (calibration and held-out parts), prepared at ``spec.input_size``.
        gate: Cosine thresholds against FP32.

    Returns:
        Gate figures per file.

    Raises:
        ParityError: A flavour misses the gate (nothing is installed then).
        ManifestError: The FP32 set is missing or does not verify.

    """
    if calibration.input_size != spec.input_size:
        raise ValueError(
            f"calibration images prepared at {calibration.input_size}, model input {spec.input_size}"
        )
    manifest = _verified_fp32(spec, out_dir)
    reference = OnnxRuntimeRunner(out_dir / onnx_file("vision"))
    report: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".int8-") as tmp:
        tmp_dir = Path(tmp)
        names = []
        for flavour in (ORT_INT8, TRT_INT8):
            name = onnx_file("vision", "int8", flavour.target)

            def attempt(extra: int, flavour: QdqFlavour = flavour, name: str = name) -> dict[str, object]:
                quantize_vision(
                    out_dir / onnx_file("vision"), tmp_dir / name, calibration.calibrate, flavour, extra
                )
                return feature_cosine_gate(
                    reference, OnnxRuntimeRunner(tmp_dir / name), calibration.held_out, name, gate
                )

            figures = _fewest_float_convs(attempt)
            figures["calibration_sha256"] = calibration.sha256
            report[name] = figures
            names.append(name)
        _install(out_dir, tmp_dir, manifest, names)
        for name, flavour in zip(names, (ORT_INT8, TRT_INT8), strict=True):
            manifest.add_file(
                out_dir, name, encoder="vision", precision="int8", target=flavour.target, parity=report[name]
            )
    manifest.calibration = calibration.describe()
    write_manifest(out_dir, manifest)
    log.info("INT8 vision encoders gated and installed in %s: %s", out_dir, report)
    return dict(report)


#: Largest number of further convolutions the INT8 fallback keeps in float before it gives up.
MAX_EXTRA_FLOAT_CONVS = 16


def _fewest_float_convs(attempt: Callable[[int], dict[str, object]]) -> dict[str, object]:
    """Gate figures of the passing model with the fewest extra float convolutions (``extra_float_convs``).

    ``attempt(n)`` quantizes with ``n`` extra float convolutions into the output file and gates it (raising
    :class:`ParityError` on a miss). Tries 0, 1, 2, 4, ... then bisects between the last miss and the first
    pass; the file left behind is always the model the returned figures describe.
    """
    last: tuple[int, dict[str, object] | None] = (0, None)

    def tried(n: int) -> dict[str, object] | None:
        nonlocal last
        try:
            figures = attempt(n)
        except ParityError:
            last = (n, None)
            return None
        last = (n, figures)
        return figures

    first = tried(0)
    if first is not None:
        return {**first, "extra_float_convs": 0}
    miss, hit = 0, 1
    while tried(hit) is None:
        miss, hit = hit, hit * 2
        if hit > MAX_EXTRA_FLOAT_CONVS:
            try:
                attempt(0)
            except ParityError as exc:  # report the fully quantized model's own figures
                raise ParityError(
                    f"{exc} (and with up to {MAX_EXTRA_FLOAT_CONVS} more convolutions kept in float)"
                ) from None
            raise ParityError("INT8 gate: inconsistent results between identical quantizations")
    while hit - miss > 1:
        mid = (miss + hit) // 2
        if tried(mid) is None:
            miss = mid
        else:
            hit = mid
    figures = last[1] if last[0] == hit else tried(hit)
    assert figures is not None  # `hit` passed before; quantization is deterministic
    log.warning("INT8 gate missed with every convolution quantized; passes with %d more in float", hit)
    return {**figures, "extra_float_convs": hit}


def export_fp16(spec: ModelSpec, out_dir: Path) -> dict[str, object]:
    """Convert both encoders to FP16 (IO types kept), gate them against FP32 in ONNX Runtime CPU, record them.

    Raises:
        ParityError: An FP16 model misses its tolerance (nothing is installed then).
        ManifestError: The FP32 set is missing or does not verify.

    """
    manifest = _verified_fp32(spec, out_dir)
    cases: tuple[tuple[Encoder, dict[str, np.ndarray], dict[str, Tolerance]], ...] = (
        ("vision", {"image": example_vision(spec)}, FP16_VISION_TOLERANCES),
        ("comparison", example_comparison(spec), FP16_COMPARISON_TOLERANCES),
    )
    report: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".fp16-") as tmp:
        tmp_dir = Path(tmp)
        for encoder, feeds, tolerances in cases:
            name = onnx_file(encoder, "fp16")
            convert_fp16(out_dir / onnx_file(encoder), tmp_dir / name)
            reference = OnnxRuntimeRunner(out_dir / onnx_file(encoder)).infer(feeds)
            candidate = OnnxRuntimeRunner(tmp_dir / name).infer(feeds)
            report[name] = {"reference": "fp32", **compare(reference, candidate, tolerances, name)}
        _install(out_dir, tmp_dir, manifest, list(report))
        for (encoder, _, _), name in zip(cases, report, strict=True):
            manifest.add_file(out_dir, name, encoder=encoder, precision="fp16", parity=report[name])
    write_manifest(out_dir, manifest)
    log.info("FP16 encoders gated and installed in %s", out_dir)
    return dict(report)


def export_all(
    spec: ModelSpec,
    out_dir: Path,
    precisions: Sequence[Precision] = ("fp32", "int8", "fp16"),
    calibration: Callable[[], CalibrationSet] | None = None,
    progress: bool = True,
) -> dict[str, object]:
    """Run the export steps for ``precisions`` in order (FP32 is always (re-)exported first).

    Args:
        spec: Model settings.
        out_dir: Artifact directory.
        precisions: Which variants to produce.
        calibration: Loads the calibration set (called only when INT8 is requested).
        progress: Show a progress bar.

    Returns:
        Report per step.

    """
    steps: list[tuple[str, Callable[[], dict[str, object]]]] = [("fp32", lambda: export_onnx(spec, out_dir))]
    if "int8" in precisions:
        if calibration is None:
            raise ValueError("INT8 needs calibration images (--calib DIR or --synthetic-calib)")
        load = calibration
        steps.append(("int8", lambda: export_int8(spec, out_dir, load())))
    if "fp16" in precisions:
        steps.append(("fp16", lambda: export_fp16(spec, out_dir)))
    report: dict[str, object] = {}
    with tqdm(total=len(steps), desc="export", unit="step", disable=not progress) as bar:
        for name, step in steps:
            bar.set_postfix_str(name)
            report[name] = step()
            bar.update()
    return report
