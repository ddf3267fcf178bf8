"""ONNX Runtime backend (CPU provider here; the CUDA provider on stations that have it)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge.engines.base import Array, Runner
from edge.model.io import TensorSpec

_ORT_TYPES: dict[str, np.dtype[np.generic]] = {
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
}


def default_threads() -> int:
    """Intra-op threads: every core the process may use."""
    return max(1, len(os.sched_getaffinity(0)))


class OnnxRuntimeRunner(Runner):
    """Runs one ONNX model with ONNX Runtime."""

    def __init__(
        self,
        path: Path,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int | None = None,
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # ORT's pool threads spin after each run by default. A frame runs two sessions (vision, comparison)
        # between OpenCV stages on the same few cores; spinning threads of one steal the cores from all the
        # others. Measured on 2 cores (bottle, k=3): per-frame total 55 ms spinning, 39 ms without.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=list(providers))
        used = self.session.get_providers()[0]
        self.backend = "onnxruntime-cuda" if used == "CUDAExecutionProvider" else "onnxruntime-cpu"
        self._inputs = tuple(
            TensorSpec(
                name=i.name,
                dtype=_ORT_TYPES[i.type],
                shape=tuple(d if isinstance(d, int) else str(d) if d else -1 for d in i.shape),
            )
            for i in self.session.get_inputs()
        )
        self._outputs = tuple(o.name for o in self.session.get_outputs())

    def infer_impl(self, feeds: Mapping[str, Array]) -> dict[str, Array]:
        """Run the session."""
        outputs = self.session.run(list(self._outputs), dict(feeds))
        return {name: np.asarray(value) for name, value in zip(self._outputs, outputs, strict=True)}
