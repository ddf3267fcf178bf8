"""Names of the files in an artifact set, per encoder, precision and target runtime.

One place for the naming so the exporter, the manifest, the engine builder and the runtime cannot disagree.

Precisions:
    ``fp32``: the reference export, runs everywhere.
    ``int8``: explicit quantization (Q/DQ) of the vision encoder; the comparison encoder stays FP32 (it
        is tiny and its softmax over cosine similarities is where 8 bits would hurt). Two Q/DQ flavours
        exist because the runtimes want different ones: ONNX Runtime on x86 is fast with asymmetric
        ``uint8`` activations (U8S8), TensorRT accepts only symmetric ``int8`` with zero point 0.
    ``fp16``: both encoders with FP16 weights and compute, IO types kept (uint8 image in, float32 out);
        for GPUs.
"""

from __future__ import annotations

from typing import Literal

Precision = Literal["fp32", "int8", "fp16"]
Target = Literal["onnxruntime", "tensorrt"]
Encoder = Literal["vision", "comparison"]

PRECISIONS: tuple[Precision, ...] = ("fp32", "int8", "fp16")
ENCODERS: tuple[Encoder, ...] = ("vision", "comparison")
MANIFEST_FILE = "manifest.json"
ENGINES_DIR = "engines"

_STEMS: dict[Encoder, str] = {"vision": "vision_encoder", "comparison": "comparison_encoder"}


def onnx_file(encoder: Encoder, precision: Precision = "fp32", target: Target = "onnxruntime") -> str:
    """File name of one encoder's ONNX model for a precision and the runtime that will execute it.

    Args:
        encoder: ``vision`` or ``comparison``.
        precision: ``fp32``, ``int8`` or ``fp16``.
        target: ``onnxruntime`` or ``tensorrt`` (only changes the INT8 vision file, see the module doc).

    Returns:
        A file name relative to the artifact directory, e.g. ``vision_encoder.int8.onnx``.

    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}' (expected one of {PRECISIONS})")
    stem = _STEMS[encoder]
    if precision == "fp32" or (precision == "int8" and encoder == "comparison"):
        return f"{stem}.onnx"
    if precision == "int8" and target == "tensorrt":
        return f"{stem}.int8-sym.onnx"
    return f"{stem}.{precision}.onnx"


def engine_file(encoder: Encoder, precision: Precision) -> str:
    """File name of a TensorRT engine (inside the device-keyed engine directory)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}' (expected one of {PRECISIONS})")
    if precision == "int8" and encoder == "comparison":
        precision = "fp32"
    return f"{_STEMS[encoder]}.{precision}.engine"


def parse_precision(value: str) -> Precision:
    """Validate a precision name from a CLI flag or config."""
    for precision in PRECISIONS:
        if value == precision:
            return precision
    raise ValueError(f"unknown precision '{value}' (expected one of {', '.join(PRECISIONS)})")
