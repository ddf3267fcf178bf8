"""PyTorch backend: the reference the exported engines are checked against."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from edge.engines.base import Array, Runner
from edge.model.io import TensorSpec


class TorchRunner(Runner):
    """Runs an ``nn.Module`` whose ``forward`` takes the inputs positionally and returns a NamedTuple."""

    backend = "torch-cpu"

    def __init__(
        self, module: nn.Module, inputs: tuple[TensorSpec, ...], output_names: tuple[str, ...]
    ) -> None:
        self.module = module.eval()
        self._inputs = inputs
        self._outputs = output_names

    def infer_impl(self, feeds: Mapping[str, Array]) -> dict[str, Array]:
        """Run the module without autograd."""
        args = [torch.from_numpy(np.ascontiguousarray(feeds[spec.name])) for spec in self._inputs]
        with torch.inference_mode():
            out = self.module(*args)
        return {name: getattr(out, name).numpy() for name in self._outputs}
