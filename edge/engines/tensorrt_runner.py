"""TensorRT backend behind the common :class:`~edge.engines.base.Runner` interface.

TensorRT 10+ name-based IO: every tensor gets its device address with ``set_tensor_address`` and the engine
runs with ``execute_async_v3`` on a private CUDA stream. Device buffers and page-locked host staging buffers
are allocated once, at the optimisation profile's maximum shapes, and reused for every frame (no allocation in
the hot loop). The CUDA primary context is pushed around each call so any thread may run the engine.

An engine is only trusted after :func:`open_tensorrt` compared it with ONNX Runtime on the source ONNX model
(fixed inputs, tolerances per precision): the same gate the exporter applies, applied again on the device,
where TensorRT's kernel choices are made.

``tensorrt`` and ``pycuda`` are imported lazily (the optional ``gpu`` extra).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.engines.artifacts import Encoder, Precision
from edge.engines.base import Array, Runner, TensorSpec
from edge.engines.parity import Tolerance, compare

if TYPE_CHECKING:
    import pycuda.driver as cuda
    import tensorrt as trt

log = logging.getLogger(__name__)

#: TensorRT vs ONNX Runtime (CPU) on the same ONNX model. FP32 allows for TF32 tensor cores; INT8 for
#: TensorRT fusing Q/DQ differently than ONNX Runtime (same scales, different rounding points).
ENGINE_TOLERANCES: dict[tuple[Encoder, Precision], dict[str, Tolerance]] = {
    ("vision", "fp32"): {
        "features": Tolerance(mean_cosine=0.9999, min_cosine=0.999),
        "descriptor": Tolerance(min_cosine=0.9999),
    },
    ("vision", "fp16"): {
        "features": Tolerance(mean_cosine=0.999, min_cosine=0.99),
        "descriptor": Tolerance(min_cosine=0.999),
    },
    ("vision", "int8"): {
        "features": Tolerance(mean_cosine=0.98, min_cosine=0.8),
        "descriptor": Tolerance(min_cosine=0.97),
    },
    ("comparison", "fp32"): {"anomaly": Tolerance(max_abs=2e-3), "valid": Tolerance(max_abs=0.0)},
    ("comparison", "fp16"): {"anomaly": Tolerance(max_abs=5e-3), "valid": Tolerance(max_abs=0.0)},
    ("comparison", "int8"): {"anomaly": Tolerance(max_abs=2e-3), "valid": Tolerance(max_abs=0.0)},
}


class TensorRtRunner(Runner):
    """Runs one serialized TensorRT engine."""

    backend = "tensorrt"

    def __init__(self, engine_path: Path, device: int = 0) -> None:
        import pycuda.driver as cuda
        import tensorrt as trt

        self.path = Path(engine_path)
        cuda.init()
        self._context_cuda: cuda.Context = cuda.Device(device).retain_primary_context()
        self._context_cuda.push()
        try:
            self._logger = trt.Logger(trt.Logger.WARNING)
            self._runtime = trt.Runtime(self._logger)
            engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
            if engine is None:
                raise RuntimeError(
                    f"{self.path}: TensorRT could not deserialize the engine (built by another TensorRT "
                    "version or for another GPU?)"
                )
            self._engine: trt.ICudaEngine = engine
            context = engine.create_execution_context()
            if context is None:
                raise RuntimeError(f"{self.path}: could not create an execution context (GPU memory?)")
            self._context: trt.IExecutionContext = context
            self._stream = cuda.Stream()
            self._inputs, self._outputs = self._describe_io()
            self._device: dict[str, cuda.DeviceAllocation] = {}
            self._host: dict[str, Array] = {}
            for name, dtype, max_shape in self._io_max_shapes():
                staging = cuda.pagelocked_empty(tuple(max_shape), dtype)
                self._host[name] = staging
                self._device[name] = cuda.mem_alloc(max(1, staging.nbytes))
                if not self._context.set_tensor_address(name, int(self._device[name])):
                    raise RuntimeError(f"{self.path}: set_tensor_address failed for '{name}'")
        finally:
            cuda.Context.pop()

    def _describe_io(self) -> tuple[tuple[TensorSpec, ...], tuple[str, ...]]:
        import tensorrt as trt

        inputs: list[TensorSpec] = []
        outputs: list[str] = []
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            if self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
                shape = tuple(int(d) for d in self._engine.get_tensor_shape(name))
                inputs.append(TensorSpec(name, dtype, shape))
            else:
                outputs.append(name)
        return tuple(inputs), tuple(outputs)

    def _io_max_shapes(self) -> list[tuple[str, np.dtype[np.generic], tuple[int, ...]]]:
        import tensorrt as trt

        shapes: list[tuple[str, np.dtype[np.generic], tuple[int, ...]]] = []
        for spec in self._inputs:
            max_shape = tuple(int(d) for d in self._engine.get_tensor_profile_shape(spec.name, 0)[2])
            if not self._context.set_input_shape(spec.name, max_shape):
                raise RuntimeError(f"{self.path}: profile max shape {max_shape} rejected for '{spec.name}'")
            shapes.append((spec.name, spec.dtype, max_shape))
        for name in self._outputs:
            # With every input at its maximum, the context reports each output's largest shape.
            shape = tuple(int(d) for d in self._context.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
            shapes.append((name, dtype, shape))
        return shapes

    def infer_impl(self, feeds: Mapping[str, Array]) -> dict[str, Array]:
        """Copy feeds into the reused buffers, run on the private stream, copy outputs back."""
        import pycuda.driver as cuda

        self._context_cuda.push()
        try:
            for name, value in feeds.items():
                staging = self._host[name]
                if value.size > staging.size:
                    raise ValueError(
                        f"input '{name}' shape {value.shape} exceeds the engine profile {staging.shape}"
                    )
                if not self._context.set_input_shape(name, value.shape):
                    raise ValueError(f"input '{name}': shape {value.shape} outside the engine's profile")
                view = staging.reshape(-1)[: value.size].reshape(value.shape)
                np.copyto(view, value)
                cuda.memcpy_htod_async(self._device[name], view, self._stream)
            if not self._context.execute_async_v3(self._stream.handle):
                raise RuntimeError(f"{self.path}: execute_async_v3 failed")
            results: dict[str, Array] = {}
            for name in self._outputs:
                shape = tuple(int(d) for d in self._context.get_tensor_shape(name))
                view = self._host[name].reshape(-1)[: int(np.prod(shape))].reshape(shape)
                cuda.memcpy_dtoh_async(view, self._device[name], self._stream)
                results[name] = view
            self._stream.synchronize()
            # Copies: the staging buffers are overwritten by the next frame.
            return {name: np.array(value) for name, value in results.items()}
        finally:
            cuda.Context.pop()


#: Sizes the load-time parity check feeds for the dynamic image and feature-map sides.
PARITY_SIDES = {"height": 128, "width": 128, "fh": 16, "fw": 16}


def parity_feeds(inputs: tuple[TensorSpec, ...], dynamic: int = 2, seed: int = 0) -> dict[str, Array]:
    """Build fixed inputs for a load-time parity check, shaped like real ones.

    uint8 inputs get random pixels; float inputs with several channels get unit vectors along axis 1 (the
    encoders' feature contract); single-channel float inputs get a 0/1 validity mask. Dynamic image and
    feature-map sides take :data:`PARITY_SIDES` (a 128x128 image, a 16x16 map), other dynamic dims
    ``dynamic``.
    """
    rng = np.random.default_rng(seed)
    feeds: dict[str, Array] = {}
    for spec in inputs:
        shape = tuple(
            d if isinstance(d, int) and d >= 0 else PARITY_SIDES.get(str(d), dynamic) for d in spec.shape
        )
        if spec.dtype == np.uint8:
            feeds[spec.name] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        elif len(shape) >= 2 and shape[1] > 1:
            x = rng.normal(size=shape)
            feeds[spec.name] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(spec.dtype)
        else:
            mask = (rng.random(size=shape) > 0.1).astype(spec.dtype)
            feeds[spec.name] = mask
    return feeds


def open_tensorrt(
    engine_path: Path, reference_onnx: Path, encoder: Encoder, precision: Precision, device: int = 0
) -> tuple[TensorRtRunner, dict[str, dict[str, float]]]:
    """Load an engine and check it against ONNX Runtime (CPU) on its source ONNX model.

    Returns:
        The runner and the measured parity figures.

    Raises:
        ParityError: The engine's outputs differ beyond :data:`ENGINE_TOLERANCES`.

    """
    from edge.engines.onnxruntime_runner import OnnxRuntimeRunner

    runner = TensorRtRunner(engine_path, device)
    reference = OnnxRuntimeRunner(reference_onnx, providers=("CPUExecutionProvider",))
    feeds = parity_feeds(reference.inputs)
    figures = compare(
        reference.infer(feeds),
        runner.infer(feeds),
        ENGINE_TOLERANCES[(encoder, precision)],
        f"{engine_path.name} (TensorRT) vs {reference_onnx.name} (ONNX Runtime)",
    )
    log.info("TensorRT engine %s matches ONNX Runtime: %s", engine_path.name, figures)
    return runner, figures
