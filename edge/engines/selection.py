"""Backend choice at start-up: TensorRT engine -> ONNX Runtime CUDA -> ONNX Runtime CPU.

Each backend is tried in order and must *load and pass its parity check* to be chosen; every skipped backend
leaves a reason (logged as a warning and carried in :class:`BackendChoice` for the ``state`` topic), so an
operator sees "tensorrt: engines for trt10.3-cuda12.6-sm87 missing; run `edge export engines`" rather than a
station that is silently five times slower than yesterday.

The artifact set's manifest is verified before any backend is tried: a tampered or foreign artifact is an
error, never a reason to fall back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edge.artifacts.engines import engines_stale
from edge.artifacts.fingerprint import DeviceFingerprint, GpuUnavailableError, device_fingerprint
from edge.artifacts.manifest import ManifestError, verify_manifest
from edge.artifacts.names import ENCODERS, Encoder, Precision, engine_file, onnx_file
from edge.engines.base import Runner
from edge.engines.onnxruntime_runner import OnnxRuntimeRunner
from edge.engines.parity import compare
from edge.engines.tensorrt_runner import ENGINE_TOLERANCES, open_tensorrt, parity_feeds

log = logging.getLogger(__name__)

BACKEND_ORDER: tuple[str, ...] = ("tensorrt", "onnxruntime-cuda", "onnxruntime-cpu")


class BackendUnavailableError(RuntimeError):
    """A backend cannot be used on this machine; the message is the reason recorded for the fallback."""


@dataclass(frozen=True)
class BackendChoice:
    """The backend in use and why each preferred one was skipped.

    Attributes:
        backend: ``tensorrt``, ``onnxruntime-cuda`` or ``onnxruntime-cpu``.
        precision: Precision of the loaded artifacts.
        reasons: One ``"<backend>: <reason>"`` per skipped backend, in preference order.

    """

    backend: str
    precision: Precision
    reasons: tuple[str, ...] = ()

    def as_state(self) -> dict[str, object]:
        """Fields for the retained ``state`` message."""
        return {"backend": self.backend, "precision": self.precision, "fallback_reasons": list(self.reasons)}


@dataclass(frozen=True)
class Probe:
    """Facts about the machine the choice depends on (replaceable in tests to inject faults).

    Attributes:
        gpu: Returns the device fingerprint; raises ``GpuUnavailableError`` without GPU/TensorRT.
        onnxruntime_providers: Execution providers this ONNX Runtime build offers.

    """

    gpu: Callable[[], object]
    onnxruntime_providers: Callable[[], list[str]]


def default_probe() -> Probe:
    """Probe the real machine."""
    import onnxruntime as ort  # here: importing it costs ~0.3 s, and only a station start probes

    return Probe(gpu=device_fingerprint, onnxruntime_providers=lambda: list(ort.get_available_providers()))


@dataclass
class SelectedRunners:
    """Runners for both encoders on the chosen backend."""

    choice: BackendChoice
    vision: Runner
    comparison: Runner
    parity: dict[str, object] = field(default_factory=dict)


def _files(precision: Precision, target: str) -> dict[Encoder, str]:
    return {
        e: onnx_file(e, precision, "tensorrt" if target == "tensorrt" else "onnxruntime") for e in ENCODERS
    }


def _open_tensorrt(
    artifact_dir: Path, precision: Precision, probe: Probe, model_id: str | None
) -> SelectedRunners:
    try:
        fingerprint = probe.gpu()
    except GpuUnavailableError as exc:
        raise BackendUnavailableError(str(exc)) from exc
    assert isinstance(fingerprint, DeviceFingerprint)
    sources = _files(precision, "tensorrt")
    manifest = verify_manifest(artifact_dir, model_id, require=sources.values())
    status = engines_stale(artifact_dir, precision, fingerprint, manifest)
    if status.stale:
        raise BackendUnavailableError(f"{status.reason}; run `edge export engines {artifact_dir}`")
    runners: dict[str, Runner] = {}
    parity: dict[str, object] = {}
    for encoder, source in sources.items():
        runner, figures = open_tensorrt(
            status.directory / engine_file(encoder, precision), artifact_dir / source, encoder, precision
        )
        runners[encoder], parity[encoder] = runner, figures
    return SelectedRunners(
        BackendChoice("tensorrt", precision), runners["vision"], runners["comparison"], parity
    )


def _open_onnxruntime(
    artifact_dir: Path, precision: Precision, cuda: bool, probe: Probe, threads: int | None
) -> SelectedRunners:
    files = _files(precision, "onnxruntime")
    if not cuda:
        vision = OnnxRuntimeRunner(artifact_dir / files["vision"], threads=threads)
        comparison = OnnxRuntimeRunner(artifact_dir / files["comparison"], threads=threads)
        return SelectedRunners(BackendChoice("onnxruntime-cpu", precision), vision, comparison)
    if "CUDAExecutionProvider" not in probe.onnxruntime_providers():
        raise BackendUnavailableError(
            "this onnxruntime build has no CUDAExecutionProvider (install onnxruntime-gpu)"
        )
    providers = ("CUDAExecutionProvider", "CPUExecutionProvider")
    runners: dict[str, Runner] = {}
    parity: dict[str, object] = {}
    for encoder, name in files.items():
        runner = OnnxRuntimeRunner(artifact_dir / name, providers=providers, threads=threads)
        if runner.backend != "onnxruntime-cuda":
            # ONNX Runtime falls back to CPU silently when the CUDA libraries fail to load.
            raise BackendUnavailableError("CUDAExecutionProvider failed to initialise (CUDA/cuDNN libs?)")
        reference = OnnxRuntimeRunner(artifact_dir / name, threads=threads)
        feeds = parity_feeds(reference.inputs)
        parity[encoder] = compare(
            reference.infer(feeds),
            runner.infer(feeds),
            ENGINE_TOLERANCES[(encoder, precision)],
            f"{name} on CUDA",
        )
        runners[encoder] = runner
    return SelectedRunners(
        BackendChoice("onnxruntime-cuda", precision), runners["vision"], runners["comparison"], parity
    )


def open_runners(
    artifact_dir: Path,
    precision: Precision = "fp32",
    model_id: str | None = None,
    preference: Sequence[str] = BACKEND_ORDER,
    probe: Probe | None = None,
    threads: int | None = None,
) -> SelectedRunners:
    """Open both encoders on the first backend of ``preference`` that loads and passes its parity check.

    Args:
        artifact_dir: Exported artifact set.
        precision: ``fp32``, ``int8`` or ``fp16``.
        model_id: Model id the caller expects (the manifest must match).
        preference: Backends to try, best first (a station config may drop ``tensorrt``, say).
        probe: Machine facts; the real machine by default.
        threads: ONNX Runtime intra-op threads.

    Returns:
        The runners and the :class:`BackendChoice` (with a reason per skipped backend).

    Raises:
        ManifestError: The artifact set does not verify (never a fallback).
        BackendUnavailableError: No backend in ``preference`` could be opened (all reasons listed).

    """
    unknown = [b for b in preference if b not in BACKEND_ORDER]
    if unknown:
        raise ValueError(f"unknown backend(s) {unknown} (expected some of {BACKEND_ORDER})")
    probe = probe or default_probe()
    verify_manifest(artifact_dir, model_id, require=_files(precision, "onnxruntime").values())
    reasons: list[str] = []
    for backend in preference:
        try:
            if backend == "tensorrt":
                selected = _open_tensorrt(artifact_dir, precision, probe, model_id)
            else:
                selected = _open_onnxruntime(
                    artifact_dir, precision, backend == "onnxruntime-cuda", probe, threads
                )
        except ManifestError:
            raise
        except Exception as exc:  # any failure of a backend is a reason to try the next one
            reason = f"{backend}: {exc}"
            log.warning("backend %s not used, falling back: %s", backend, exc)
            reasons.append(reason)
            continue
        choice = BackendChoice(selected.choice.backend, precision, tuple(reasons))
        log.info(
            "inference backend: %s (%s)%s",
            choice.backend,
            precision,
            f"; skipped: {'; '.join(reasons)}" if reasons else "",
        )
        selected.choice = choice
        return selected
    raise BackendUnavailableError("no inference backend could be opened: " + "; ".join(reasons))
