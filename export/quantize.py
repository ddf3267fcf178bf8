"""INT8 by explicit quantization: a Q/DQ ONNX vision encoder calibrated on golden images.

Explicit (Q/DQ) rather than implicit quantization because TensorRT deprecated calibrators in 10.1 and removed
them (and ``BuilderFlag.INT8``) in 11: the scales must live in the ONNX graph. The same Q/DQ file runs in ONNX
Runtime, which is how it is gated here, on a machine without a GPU.

Choices, each measured on EfficientNet-Lite0 at 320x320 (docs/export.md):

* Quantized ops: ``Conv``, ``Clip`` (ReLU6) and ``Add`` (residuals). Without ``Clip`` the ReLU6 outputs are
  requantized around every block and feature cosine drops to 0.85.
* The in-graph preprocessing (uint8 -> float, Gaussian blur, normalisation), the stem convolution and the
  first depthwise-separable block stay in float: the blur runs on full-resolution 3-channel images where
  int8 kernels are *slower* than float, and the first block's depthwise convolution is by far the most
  sensitive layer (synthetic SKU at 128 px: mean feature cosine 0.969 with it quantized, 0.995 without).
* When the full INT8 model misses its gate on a SKU's images, the export keeps the fewest further early
  convolutions in float that make it pass (searched 1, 2, 4, ... up to 16, then bisected; the count is
  recorded in the manifest): a slower INT8 model that passes beats a refusal that leaves the station on FP32.
  Measured on MPDD metal plates: mean feature cosine 0.978 fully quantized (refused), 0.984 with three more
  float convolutions; vision encoder 1.38x -> 1.13x faster than FP32 on 2 cores.
* Weights: int8, per output channel, symmetric. Activations: MinMax-calibrated, and
  - ``onnxruntime`` flavour: asymmetric uint8 (U8S8), the fast path of ONNX Runtime on x86;
  - ``tensorrt`` flavour: symmetric int8 with zero point 0, the only form TensorRT accepts (the S8S8 path is
    twice as slow as U8S8 in ONNX Runtime on x86, hence two files).
* Biases: ONNX Runtime quantizes them to int32 by default (a ``DequantizeLinear`` with an INT32 input per
  convolution). TensorRT's Dequantize layer takes only INT8/FP8/INT4 input and its ONNX parser does not fold
  these away (onnx/onnx-tensorrt#850), so the ``tensorrt`` flavour keeps biases in float
  (``QuantizeBias: False``); TensorRT fuses the float bias into its int8 convolution itself. The
  ``onnxruntime`` flavour keeps int32 biases, which its QLinearConv fusion wants.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

from edge.artifacts.names import Target
from export.graph import ancestors

log = logging.getLogger(__name__)
QUANTIZED_OPS = ("Conv", "Clip", "Add")


@dataclass(frozen=True)
class QdqFlavour:
    """How activations are quantized, for the runtime that will execute the file."""

    target: Target
    symmetric_activations: bool
    quantize_bias: bool

    @property
    def extra_options(self) -> dict[str, bool]:
        """``quantize_static`` extra options of this flavour."""
        return {
            "ActivationSymmetric": self.symmetric_activations,
            "WeightSymmetric": True,
            "QuantizeBias": self.quantize_bias,
        }

    @property
    def activation_type(self) -> QuantType:
        """ONNX Runtime quantization type of activations."""
        return QuantType.QInt8 if self.symmetric_activations else QuantType.QUInt8


ORT_INT8 = QdqFlavour(target="onnxruntime", symmetric_activations=False, quantize_bias=True)
#: Float biases: TensorRT rejects a DequantizeLinear with INT32 input (see the module doc).
TRT_INT8 = QdqFlavour(target="tensorrt", symmetric_activations=True, quantize_bias=False)


def float_prefix(model: onnx.ModelProto, extra_convs: int = 0) -> list[str]:
    """Names of the nodes kept in float: preprocessing, the stem and the first depthwise-separable block.

    That is everything up to and including the first pointwise (1x1, ``group == 1``) convolution, in graph
    order, and everything it depends on; plus the next ``extra_convs`` convolutions in graph order (the
    fallback when the full INT8 model misses its gate: early, high-resolution layers are the most
    sensitive to quantization in depthwise-separable networks). Structural rather than by node name, so a
    renamed export keeps it.
    """
    initializers = {i.name: i for i in model.graph.initializer}
    for index, node in enumerate(model.graph.node):
        if node.op_type != "Conv":
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        weight = initializers.get(node.input[1])
        if group != 1 or weight is None or list(weight.dims[2:]) != [1, 1]:
            continue
        later = [n.name for n in model.graph.node[index + 1 :] if n.op_type == "Conv"]
        return [n.name for n in ancestors(model, node)] + [node.name] + later[:extra_convs]
    raise ValueError("no pointwise convolution found: not the vision encoder graph this quantizer expects")


class _Reader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime ships no type information
    def __init__(self, images: Sequence[np.ndarray]) -> None:
        self._it: Iterator[np.ndarray] = iter(images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        image = next(self._it, None)
        return None if image is None else {"image": np.ascontiguousarray(image[None])}


def quantize_vision(
    fp32_path: Path,
    out_path: Path,
    images: Sequence[np.ndarray],
    flavour: QdqFlavour,
    extra_float_convs: int = 0,
) -> None:
    """Write a Q/DQ INT8 copy of the FP32 vision encoder, calibrated on ``images``.

    Args:
        fp32_path: Simplified FP32 vision encoder.
        out_path: Destination of the Q/DQ model.
        images: Calibration images ``[H, W, 3]`` uint8 (prepared like runtime frames).
        flavour: :data:`ORT_INT8` or :data:`TRT_INT8`.
        extra_float_convs: Convolutions after the first block also kept in float (see :func:`float_prefix`).

    """
    if not images:
        raise ValueError("no calibration images")
    model = onnx.load(str(fp32_path))
    keep_float = float_prefix(model, extra_float_convs)
    with _quiet_preprocessing_advice():
        _quantize(fp32_path, out_path, images, flavour, keep_float)
    quantized = onnx.load(str(out_path))
    onnx.checker.check_model(quantized)
    counts = {
        op: sum(n.op_type == op for n in quantized.graph.node)
        for op in ("QuantizeLinear", "DequantizeLinear")
    }
    log.info("quantized %s -> %s (%s flavour, %s)", fp32_path.name, out_path.name, flavour.target, counts)


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Please consider")


@contextmanager
def _quiet_preprocessing_advice() -> Iterator[None]:
    """Silence onnxruntime's "consider pre-processing" root-logger warning: onnxslim already did that step."""
    root = logging.getLogger()
    advice = _DropAdvice()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def _quantize(
    fp32_path: Path, out_path: Path, images: Sequence[np.ndarray], flavour: QdqFlavour, keep_float: list[str]
) -> None:
    quantize_static(
        str(fp32_path),
        str(out_path),
        _Reader(images),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(QUANTIZED_OPS),
        nodes_to_exclude=keep_float,
        per_channel=True,
        activation_type=flavour.activation_type,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options=flavour.extra_options,
    )
