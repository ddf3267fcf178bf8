"""TensorRT engines on disk: where they live per device, and whether they are up to date.

The contract between the engine builder (``export/tensorrt_build.py``, which writes ``build.json``) and the
runtime's backend selection (:mod:`edge.engines.selection`, which refuses stale engines): kept below both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edge.artifacts.fingerprint import DeviceFingerprint
from edge.artifacts.manifest import Manifest
from edge.artifacts.names import ENCODERS, ENGINES_DIR, Encoder, Precision, engine_file, onnx_file
from edge.model.backbone_catalog import file_sha256

#: Written next to the engines of one device key: fingerprint, source ONNX hashes, parity figures.
BUILD_RECORD = "build.json"


@dataclass(frozen=True)
class EngineStatus:
    """Whether the engines of one precision are usable on this device, and why not."""

    directory: Path
    stale: bool
    reason: str


def engine_dir(artifact_dir: Path, fingerprint: DeviceFingerprint) -> Path:
    """Directory of the engines for a device key."""
    return artifact_dir / ENGINES_DIR / fingerprint.key()


def engine_sources(precision: Precision) -> dict[Encoder, str]:
    """The ONNX file each encoder's TensorRT engine of ``precision`` is built from."""
    return {encoder: onnx_file(encoder, precision, "tensorrt") for encoder in ENCODERS}


def engines_stale(
    artifact_dir: Path, precision: Precision, fingerprint: DeviceFingerprint, manifest: Manifest
) -> EngineStatus:
    """Compare the engines on disk with the device fingerprint and the manifest's ONNX hashes."""
    directory = engine_dir(artifact_dir, fingerprint)
    record_path = directory / BUILD_RECORD
    if not record_path.is_file():
        return EngineStatus(directory, True, f"no engines for device {fingerprint.key()}")
    try:
        record = json.loads(record_path.read_text())
        built = record["precisions"][precision]
    except (ValueError, KeyError) as exc:
        return EngineStatus(directory, True, f"no {precision} engines recorded in {record_path} ({exc})")
    for encoder, source in engine_sources(precision).items():
        entry = built.get(encoder, {})
        expected = manifest.files[source].sha256 if source in manifest.files else None
        if entry.get("source_sha256") != expected:
            return EngineStatus(directory, True, f"{source} changed since its engine was built")
        path = directory / engine_file(encoder, precision)
        if not path.is_file() or file_sha256(path) != entry.get("engine_sha256"):
            return EngineStatus(directory, True, f"{path.name} missing or modified")
    return EngineStatus(directory, False, "up to date")
