"""The IO contract: output names spelled without torch agree with the NamedTuples (the ONNX names)."""

from __future__ import annotations

from edge.model.comparison import ComparisonOutput
from edge.model.encoder import EncoderOutput
from edge.model.io import COMPARISON_OUTPUTS, VISION_OUTPUTS


def test_output_names_are_the_namedtuple_fields() -> None:
    assert EncoderOutput._fields == VISION_OUTPUTS
    assert ComparisonOutput._fields == COMPARISON_OUTPUTS
