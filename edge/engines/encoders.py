"""Runners for both encoders, loaded from an exported artifact set (or the PyTorch reference).

Loading only: nothing here exports. When the artifacts a station asks for are missing, the error names the
one command that builds them (:class:`ArtifactsMissingError`); ``edge export`` and the flash path build them
(``export/``), ``edge run`` never does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edge.artifacts.manifest import ManifestError, load_manifest
from edge.artifacts.names import Precision, onnx_file
from edge.engines.base import Runner
from edge.engines.selection import BACKEND_ORDER, open_runners
from edge.model.backbone_catalog import DEFAULT_BACKBONE, BackboneName
from edge.model.io import COMPARISON_OUTPUTS, VISION_OUTPUTS
from edge.model.spec import ModelSpec, default_artifact_dir, spec_model_id, torch_modules


class ArtifactsMissingError(ManifestError, FileNotFoundError):
    """The artifacts a station needs are missing or made for another model; the message names the fix.

    A :class:`ManifestError` (the set does not verify for this model) and a :class:`FileNotFoundError` (an
    expected start-up problem, said in plain words in the safe-mode reason).

    Attributes:
        command: The one command that builds the missing artifacts.

    """

    def __init__(self, message: str, command: str) -> None:
        super().__init__(f"{message}: run `{command}` first")
        self.command = command


@dataclass
class Encoders:
    """Runners for both encoders plus the id of the model they implement."""

    spec: ModelSpec
    vision: Runner
    comparison: Runner
    model_id: str
    #: precision of the artifacts and why preferred backends were skipped (for the ``state`` topic).
    state: dict[str, object] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        """Backend of the vision encoder (the one that dominates latency)."""
        return self.vision.backend


def torch_encoders(spec: ModelSpec) -> Encoders:
    """Encoders running in PyTorch (the reference path; needs no export)."""
    from edge.engines.torch_runner import TorchRunner  # torch only on this path

    vision, comparison = torch_modules(spec)
    return Encoders(
        spec=spec,
        vision=TorchRunner(vision, spec.vision_inputs(), VISION_OUTPUTS),
        comparison=TorchRunner(comparison, spec.comparison_inputs(), COMPARISON_OUTPUTS),
        model_id=spec_model_id(spec),
    )


def export_command(spec: ModelSpec, artifact_dir: Path, precision: Precision = "fp32") -> str:
    """The ``edge export`` command that builds ``precision`` for ``spec`` into ``artifact_dir``."""
    step = "onnx" if precision == "fp32" else precision
    options = ""
    if spec.input_size != ModelSpec().input_size:
        options += f" --input-size {spec.input_size[0]} {spec.input_size[1]}"
    if spec.backbone != DEFAULT_BACKBONE:
        options += f" --backbone {spec.backbone}"
    if precision == "int8":
        options += " --calib <golden images>"
    return f"edge export {step} --out {artifact_dir}{options}"


def onnx_encoders(
    spec: ModelSpec,
    artifact_dir: Path | None = None,
    threads: int | None = None,
    precision: Precision = "fp32",
    preference: Sequence[str] | None = None,
) -> Encoders:
    """Encoders on the best available exported backend (TensorRT -> ONNX Runtime CUDA -> CPU).

    Args:
        spec: The model the caller runs (the artifacts' manifest must name its id).
        artifact_dir: Exported artifact set (default: the per-user cache of ``spec``).
        threads: ONNX Runtime intra-op threads.
        precision: ``fp32``, ``int8`` or ``fp16``.
        preference: Backends to try, best first (default :data:`BACKEND_ORDER`).

    Raises:
        ArtifactsMissingError: ``artifact_dir`` holds no export of ``precision`` for this model.
        ManifestError: The artifact set does not verify (a tampered file).

    """
    directory = artifact_dir or default_artifact_dir(spec)
    model_id = spec_model_id(spec)
    _check_present(spec, directory, precision, model_id)
    selected = open_runners(directory, precision, model_id, preference or BACKEND_ORDER, threads=threads)
    return Encoders(
        spec=spec,
        vision=selected.vision,
        comparison=selected.comparison,
        model_id=model_id,
        state=selected.choice.as_state(),
    )


def _check_present(spec: ModelSpec, directory: Path, precision: Precision, model_id: str) -> None:
    """Raise :class:`ArtifactsMissingError` when the set is absent, incomplete or for another model."""
    command = export_command(spec, directory, precision)
    if not (directory / onnx_file("vision", precision)).is_file():
        raise ArtifactsMissingError(
            f"model.precision is {precision} but {directory} has no {precision} encoders", command
        )
    try:
        exported = load_manifest(directory).model_id
    except ManifestError as exc:
        raise ArtifactsMissingError(str(exc), command) from exc
    if exported != model_id:
        raise ArtifactsMissingError(
            f"{directory} holds model {exported}, this software runs {model_id} "
            "(weights, model settings or graph code changed)",
            command,
        )


def load_encoders(
    spec: ModelSpec,
    backend: str = "onnxruntime",
    artifact_dir: Path | None = None,
    precision: Precision = "fp32",
) -> Encoders:
    """Encoders for a backend name: ``onnxruntime`` (best exported backend) or ``torch``."""
    if backend == "torch":
        if precision != "fp32":
            raise ValueError("the PyTorch reference runs in fp32 only")
        return torch_encoders(spec)
    if backend == "onnxruntime":
        return onnx_encoders(spec, artifact_dir, precision=precision)
    raise ValueError(f"unknown backend '{backend}' (expected 'onnxruntime' or 'torch')")


def configured_encoders(
    input_size: tuple[int, int],
    artifact_dir: Path,
    precision: Precision,
    backends: Sequence[str],
    backbone: BackboneName = DEFAULT_BACKBONE,
) -> Encoders:
    """Encoders as a station config asks for them: its precision and its backend preference.

    Raises:
        ArtifactsMissingError: The configured precision of this model was not exported into
            ``artifact_dir`` (the message names the ``edge export`` command that builds it).

    """
    return onnx_encoders(
        ModelSpec(input_size=(int(input_size[0]), int(input_size[1])), backbone=backbone),
        artifact_dir,
        precision=precision,
        preference=tuple(backends),
    )
