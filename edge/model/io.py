"""The encoders' IO contract: declared inputs (:class:`TensorSpec`) and output names.

The output names are the field names of the modules' NamedTuples (:class:`edge.model.encoder.EncoderOutput`,
:class:`edge.model.comparison.ComparisonOutput`), which become the ONNX output names at export; they are
spelled here too so that the engines and the manifest can name them without importing torch
(``tests/model/test_io.py`` checks that both spellings agree).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Outputs of the vision encoder, in order (``EncoderOutput._fields``).
VISION_OUTPUTS: tuple[str, ...] = ("features", "descriptor")
#: Outputs of the comparison encoder, in order (``ComparisonOutput._fields``).
COMPARISON_OUTPUTS: tuple[str, ...] = ("anomaly", "valid")


class EngineInputError(ValueError):
    """A feed does not match the engine's declared inputs."""


@dataclass(frozen=True)
class TensorSpec:
    """Declared input: name, numpy dtype, shape with ``-1`` (or a name) for dynamic dimensions."""

    name: str
    dtype: np.dtype[np.generic]
    shape: tuple[int | str, ...]

    def check(self, value: npt.NDArray[np.generic]) -> None:
        """Raise :class:`EngineInputError` when ``value`` does not fit this spec."""
        if value.dtype != self.dtype:
            raise EngineInputError(f"input '{self.name}': dtype {value.dtype}, expected {self.dtype}")
        if value.ndim != len(self.shape):
            raise EngineInputError(
                f"input '{self.name}': {value.ndim} dims {value.shape}, "
                f"expected {len(self.shape)} {self.shape}"
            )
        for axis, (got, want) in enumerate(zip(value.shape, self.shape, strict=True)):
            if isinstance(want, int) and want >= 0 and got != want:
                raise EngineInputError(
                    f"input '{self.name}': dim {axis} is {got}, expected {want} (shape {self.shape})"
                )
