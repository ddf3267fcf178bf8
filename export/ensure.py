"""Build whatever part of an artifact set is missing: the one entry point of the commands that need one.

``edge export``, the flash path (``edge flash refresh``), and the tools that stand a station up on this
machine (``edge demo``, ``edge bench``, ``edge soak``, ``edge eval``) call it before they load encoders;
``edge run`` never does (it loads, and names the command that builds what is missing).
"""

from __future__ import annotations

from pathlib import Path

from edge.artifacts.names import Precision, onnx_file
from edge.model.spec import ModelSpec, default_artifact_dir
from export.calibration import load_calibration, synthetic_calibration
from export.onnx_export import ensure_onnx
from export.pipeline import export_fp16, export_int8


def ensure_artifacts(
    spec: ModelSpec,
    artifact_dir: Path | None = None,
    precision: Precision = "fp32",
    calibration_dir: Path | None = None,
) -> Path:
    """Make sure ``artifact_dir`` holds verified encoders of ``spec`` in ``precision``; export the missing.

    Args:
        spec: The model.
        artifact_dir: Artifact directory (default: the per-user cache of ``spec``).
        precision: ``fp32``, ``int8`` or ``fp16`` (a reduced precision builds on the FP32 export).
        calibration_dir: Golden images INT8 is calibrated on; without them the synthetic SKU is used.

    Returns:
        The artifact directory.

    Raises:
        ManifestError: The artifacts present do not match their manifest or ``spec`` (never replaced).
        ParityError: A new artifact failed its gate (nothing installed).

    """
    directory = artifact_dir or default_artifact_dir(spec)
    ensure_onnx(spec, directory)
    if precision == "fp32" or (directory / onnx_file("vision", precision)).exists():
        return directory
    if precision == "int8":
        calib = (
            load_calibration(calibration_dir, spec.input_size)
            if calibration_dir is not None
            else synthetic_calibration(spec.input_size)
        )
        export_int8(spec, directory, calib)
    elif precision == "fp16":
        export_fp16(spec, directory)
    else:
        raise ValueError(f"unknown precision '{precision}' (expected fp32, int8 or fp16)")
    return directory
