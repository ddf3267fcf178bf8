"""One engine interface for every backend (ONNX Runtime, PyTorch, TensorRT).

Modelled on Polygraphy's base runner: the public :meth:`Runner.infer` checks names, dtypes and shapes of the
feeds against the declared inputs before any backend code runs, so a wrong frame never reaches a GPU kernel
and the error names the offending input.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from edge.model.io import EngineInputError, TensorSpec

Array = npt.NDArray[np.generic]


class Runner(ABC):
    """A loaded inference engine: ``infer({name: array}) -> {name: array}``."""

    #: short backend name published in ``state`` and verdicts, e.g. ``onnxruntime-cpu``.
    backend: str = "abstract"
    #: set by each backend when it loads its model: declared inputs and output names, in order.
    _inputs: tuple[TensorSpec, ...]
    _outputs: tuple[str, ...]

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """Declared inputs."""
        return self._inputs

    @property
    def output_names(self) -> tuple[str, ...]:
        """Output names, in order."""
        return self._outputs

    def infer(self, feeds: Mapping[str, Array]) -> dict[str, Array]:
        """Validate ``feeds`` against :attr:`inputs` and run the engine."""
        expected = {spec.name: spec for spec in self.inputs}
        missing = sorted(set(expected) - set(feeds))
        extra = sorted(set(feeds) - set(expected))
        if missing or extra:
            raise EngineInputError(f"feeds mismatch: missing {missing}, unexpected {extra}")
        for name, value in feeds.items():
            expected[name].check(value)
        return self.infer_impl(feeds)

    @abstractmethod
    def infer_impl(self, feeds: Mapping[str, Array]) -> dict[str, Array]:
        """Backend-specific inference on validated feeds."""
