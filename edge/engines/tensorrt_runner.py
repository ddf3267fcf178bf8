"""TensorRT backend behind the common :class:`~edge.engines.base.Runner` interface.

TensorRT 10+ name-based IO: every tensor gets its device address with ``set_tensor_address`` and the engine
runs with ``execute_async_v3`` on a CUDA stream. Device buffers and page-locked host staging buffers are
allocated once, at the optimisation profile's maximum shapes (the engine's own shape for an input without a
dynamic dimension), and reused for every frame (no allocation in the hot loop). The CUDA primary context is
pushed around each call so any thread may run the engine.

Thread safety: an execution context holds per-inference state (input shapes, tensor addresses) and the
staging buffers are overwritten by each call, while ``execute_async_v3`` and pycuda's copies release the GIL.
So one execution context, its stream and its buffers serve one call at a time: the runner keeps a small pool
of them, created on demand. A second worker (e.g. the watchdog's replacement for a hung one) takes its own
context instead of waiting behind the hung call; beyond :data:`MAX_CONTEXTS` concurrent calls a caller waits
for a free one, and after :data:`CONTEXT_WAIT_S` fails loudly instead of blocking forever.

An engine is only trusted after :func:`open_tensorrt` compared it with ONNX Runtime on the source ONNX model
(fixed inputs, tolerances per precision): the same gate the exporter applies, applied again on the device,
where TensorRT's kernel choices are made.

``tensorrt`` and ``pycuda`` are imported lazily (the optional ``gpu`` extra).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.artifacts.names import Encoder, Precision
from edge.engines.base import Array, Runner
from edge.engines.parity import Tolerance, compare
from edge.model.io import TensorSpec

if TYPE_CHECKING:
    import pycuda.driver as cuda
    import tensorrt as trt

log = logging.getLogger(__name__)

#: Execution contexts (each with its stream and buffers) one runner creates at most: one per inspection
#: worker plus replacements of hung ones; each costs its activation memory and a set of max-shape buffers.
MAX_CONTEXTS = 4
#: How long a call waits for a free execution context when all :data:`MAX_CONTEXTS` are busy.
CONTEXT_WAIT_S = 30.0

_logger: trt.ILogger | None = None
_logger_lock = threading.Lock()


def tensorrt_logger() -> trt.ILogger:
    """The process-wide TensorRT logger, shared by every builder and runtime.

    TensorRT keeps the first logger it is given for the whole process (a different one later only draws a
    warning and is not used for everything), and builders/runtimes keep a pointer to it: one logger, created
    once and never released, is the only arrangement that is right for all of them.
    """
    import tensorrt as trt

    global _logger
    with _logger_lock:
        if _logger is None:
            _logger = trt.Logger(trt.Logger.WARNING)
        return _logger


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


@dataclass
class _Slot:
    """What one inference at a time needs: an execution context, its stream and its buffers."""

    context: trt.IExecutionContext
    stream: cuda.Stream
    device: dict[str, cuda.DeviceAllocation]
    host: dict[str, Array]


class TensorRtRunner(Runner):
    """Runs one serialized TensorRT engine; safe to call from several threads."""

    backend = "tensorrt"

    def __init__(self, engine_path: Path, device: int = 0, max_contexts: int = MAX_CONTEXTS) -> None:
        import pycuda.driver as cuda
        import tensorrt as trt

        self.path = Path(engine_path)
        self._max_contexts = max_contexts
        cuda.init()
        self._context_cuda: cuda.Context = cuda.Device(device).retain_primary_context()
        self._context_cuda.push()
        try:
            self._runtime = trt.Runtime(tensorrt_logger())
            engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
            if engine is None:
                raise RuntimeError(
                    f"{self.path}: TensorRT could not deserialize the engine (built by another TensorRT "
                    "version or for another GPU?)"
                )
            self._engine: trt.ICudaEngine = engine
            self._inputs, self._outputs = self._describe_io()
            self._max_inputs = self._input_max_shapes()
            self._dynamic = frozenset(spec.name for spec in self._inputs if self._is_dynamic(spec))
            # One context at load: a profile or memory problem shows here, not at the first part.
            self._free: list[_Slot] = [self._new_slot()]
        finally:
            cuda.Context.pop()
        self._slots = 1
        self._available = threading.Condition()

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

    def _input_max_shapes(self) -> dict[str, tuple[int, ...]]:
        """Largest shape of each input: the engine's own when static, else the profile's maximum."""
        shapes: dict[str, tuple[int, ...]] = {}
        for spec in self._inputs:
            declared = tuple(int(d) for d in spec.shape)
            if all(d >= 0 for d in declared):
                shapes[spec.name] = declared  # no dynamic dim: no profile entry to ask
            else:
                shapes[spec.name] = tuple(
                    int(d) for d in self._engine.get_tensor_profile_shape(spec.name, 0)[2]
                )
        return shapes

    def _is_dynamic(self, spec: TensorSpec) -> bool:
        return any(int(d) < 0 for d in spec.shape)

    def _new_slot(self) -> _Slot:
        """Create an execution context with its own stream and max-shape buffers (CUDA context pushed)."""
        import pycuda.driver as cuda
        import tensorrt as trt

        context = self._engine.create_execution_context()
        if context is None:
            raise RuntimeError(f"{self.path}: could not create an execution context (GPU memory?)")
        shapes: list[tuple[str, np.dtype[np.generic], tuple[int, ...]]] = []
        for spec in self._inputs:
            max_shape = self._max_inputs[spec.name]
            if self._is_dynamic(spec) and not context.set_input_shape(spec.name, max_shape):
                raise RuntimeError(f"{self.path}: profile max shape {max_shape} rejected for '{spec.name}'")
            shapes.append((spec.name, spec.dtype, max_shape))
        for name in self._outputs:
            # With every input at its maximum, the context reports each output's largest shape.
            shape = tuple(int(d) for d in context.get_tensor_shape(name))
            shapes.append((name, np.dtype(trt.nptype(self._engine.get_tensor_dtype(name))), shape))
        slot = _Slot(context=context, stream=cuda.Stream(), device={}, host={})
        for name, dtype, shape in shapes:
            staging = cuda.pagelocked_empty(tuple(shape), dtype)
            slot.host[name] = staging
            slot.device[name] = cuda.mem_alloc(max(1, staging.nbytes))
            if not context.set_tensor_address(name, int(slot.device[name])):
                raise RuntimeError(f"{self.path}: set_tensor_address failed for '{name}'")
        return slot

    @property
    def contexts(self) -> int:
        """Execution contexts created so far (one per concurrent call seen, at most ``max_contexts``)."""
        return self._slots

    @contextmanager
    def _slot(self) -> Iterator[_Slot]:
        """A free execution context for one call (created when none is free, up to ``max_contexts``)."""
        with self._available:
            if not self._available.wait_for(
                lambda: bool(self._free) or self._slots < self._max_contexts, timeout=CONTEXT_WAIT_S
            ):
                raise RuntimeError(
                    f"{self.path}: all {self._max_contexts} TensorRT execution contexts busy for "
                    f"{CONTEXT_WAIT_S:.0f} s (hung inferences?)"
                )
            slot = self._free.pop() if self._free else None
            if slot is None:
                self._slots += 1  # reserved: created outside the lock
        if slot is None:
            try:
                slot = self._new_slot()
            except BaseException:
                with self._available:
                    self._slots -= 1
                    self._available.notify()
                raise
            log.info("%s: execution context %d created for a concurrent call", self.path.name, self._slots)
        try:
            yield slot
        finally:
            with self._available:
                self._free.append(slot)
                self._available.notify()

    def infer_impl(self, feeds: Mapping[str, Array]) -> dict[str, Array]:
        """Copy feeds into one context's buffers, run on its stream, copy outputs back."""
        import pycuda.driver as cuda

        self._context_cuda.push()
        try:
            with self._slot() as slot:
                return self._run(slot, feeds)
        finally:
            cuda.Context.pop()

    def _run(self, slot: _Slot, feeds: Mapping[str, Array]) -> dict[str, Array]:
        import pycuda.driver as cuda

        for name, value in feeds.items():
            staging = slot.host[name]
            limit = self._max_inputs[name]
            if any(got > most for got, most in zip(value.shape, limit, strict=True)):
                raise ValueError(
                    f"input '{name}' shape {value.shape} exceeds the engine profile's maximum {limit}"
                )
            if name in self._dynamic and not slot.context.set_input_shape(name, value.shape):
                raise ValueError(f"input '{name}': shape {value.shape} outside the engine's profile")
            view = staging.reshape(-1)[: value.size].reshape(value.shape)
            np.copyto(view, value)
            cuda.memcpy_htod_async(slot.device[name], view, slot.stream)
        if not slot.context.execute_async_v3(slot.stream.handle):
            raise RuntimeError(f"{self.path}: execute_async_v3 failed")
        results: dict[str, Array] = {}
        for name in self._outputs:
            shape = tuple(int(d) for d in slot.context.get_tensor_shape(name))
            view = slot.host[name].reshape(-1)[: int(np.prod(shape))].reshape(shape)
            cuda.memcpy_dtoh_async(view, slot.device[name], slot.stream)
            results[name] = view
        slot.stream.synchronize()
        # Copies: the staging buffers are overwritten by the next call on this context.
        return {name: np.array(value) for name, value in results.items()}


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
