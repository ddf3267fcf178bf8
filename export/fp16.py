"""FP16 variant of an FP32 ONNX model, for GPUs (TensorRT 11 builds it as a strongly typed network).

Uses the float16 pass that ships inside onnxruntime (``onnxruntime.transformers.float16``): no extra
dependency, and with ``keep_io_types`` the contract is unchanged (uint8 image or float32 features in, float32
out), so the runtime feeds every precision the same arrays.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from export.graph import toposort


def convert_fp16(fp32_path: Path, out_path: Path) -> None:
    """Write an FP16 copy of ``fp32_path`` with float32 inputs/outputs kept."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)
    # The pass appends the IO casts after their consumers; ONNX requires topological order.
    toposort(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))
