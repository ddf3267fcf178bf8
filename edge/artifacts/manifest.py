"""``manifest.json``: what an artifact set is, how it was made, and the proof that it passed its gates.

Written by every export step (atomically, after the step's gate passed) and checked by the runtime before it
loads anything: a file whose SHA-256 differs from the manifest, or a set made for another model id, is
refused with an error that names the file or the ids, never loaded "to see".
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from edge.artifacts.names import MANIFEST_FILE
from edge.model.backbone_catalog import file_sha256
from edge.model.io import TensorSpec

MANIFEST_FORMAT = 1
_VERSIONED_PACKAGES = ("torch", "onnx", "onnxruntime", "onnxslim", "numpy", "tensorrt")


class ManifestError(RuntimeError):
    """An artifact set is missing its manifest, or does not match it."""


@dataclass(frozen=True)
class ArtifactFile:
    """One file of the set.

    Attributes:
        sha256: Hex SHA-256 of the file's bytes.
        size: File size in bytes.
        encoder: ``vision`` or ``comparison``.
        precision: ``fp32``, ``int8`` or ``fp16``.
        target: Runtime the file is meant for: ``any``, ``onnxruntime`` or ``tensorrt``.
        parity: Measured gate figures (per output: max_abs, mean/min cosine) and the reference they were
            measured against.

    """

    sha256: str
    size: int
    encoder: str
    precision: str
    target: str
    parity: dict[str, object] = field(default_factory=dict)


@dataclass
class Manifest:
    """Content of ``manifest.json``."""

    model_id: str
    spec: dict[str, object]
    weights_sha256: str
    opset: int
    io: dict[str, object]
    versions: dict[str, str | None] = field(default_factory=dict)
    files: dict[str, ArtifactFile] = field(default_factory=dict)
    calibration: dict[str, object] | None = None
    created: str = ""
    format: int = MANIFEST_FORMAT

    def add_file(
        self,
        directory: Path,
        name: str,
        *,
        encoder: str,
        precision: str,
        target: str = "any",
        parity: Mapping[str, object] | None = None,
    ) -> ArtifactFile:
        """Hash ``directory / name`` and record it (replacing an older entry of the same name)."""
        path = directory / name
        entry = ArtifactFile(
            sha256=file_sha256(path),
            size=path.stat().st_size,
            encoder=encoder,
            precision=precision,
            target=target,
            parity=dict(parity or {}),
        )
        self.files[name] = entry
        return entry

    def to_json(self) -> str:
        """Serialise (stable key order, so two identical exports produce identical manifests but the date)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: Path) -> Manifest:
        """Parse a manifest; raises :class:`ManifestError` naming ``source`` when it is malformed."""
        try:
            raw = json.loads(text)
            if raw.get("format") != MANIFEST_FORMAT:
                raise ManifestError(
                    f"{source}: manifest format {raw.get('format')!r}, this software reads {MANIFEST_FORMAT}"
                )
            files = {name: ArtifactFile(**entry) for name, entry in raw.pop("files").items()}
            return cls(files=files, **raw)
        except ManifestError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ManifestError(f"{source}: malformed manifest: {exc}") from exc


def io_spec(inputs: Iterable[TensorSpec], outputs: Iterable[str]) -> dict[str, object]:
    """JSON form of an encoder's IO contract."""
    return {
        "inputs": [{"name": s.name, "dtype": str(s.dtype), "shape": list(s.shape)} for s in inputs],
        "outputs": list(outputs),
    }


def package_versions() -> dict[str, str | None]:
    """Versions of the packages that shaped the artifacts (None when not installed)."""
    found: dict[str, str | None] = {}
    for name in _VERSIONED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def now_iso() -> str:
    """UTC timestamp for the manifest."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` atomically (a reader sees the old or the new manifest, never half of one)."""
    manifest.versions = {**manifest.versions, **package_versions()}
    manifest.created = manifest.created or now_iso()
    path = directory / MANIFEST_FILE
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".manifest-", suffix=".json")
    os.fchmod(fd, 0o644)  # mkstemp creates 0600; stations read artifacts as another user
    with os.fdopen(fd, "w") as fh:
        fh.write(manifest.to_json())
    Path(tmp).replace(path)
    return path


def load_manifest(directory: Path) -> Manifest:
    """Read ``directory/manifest.json`` without checking the files (see :func:`verify_manifest`)."""
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(f"{directory}: no {MANIFEST_FILE}; export the artifact set with `edge export`")
    return Manifest.from_json(path.read_text(), path)


def verify_manifest(
    directory: Path, expected_model_id: str | None = None, require: Iterable[str] = ()
) -> Manifest:
    """Check an artifact set against its manifest before anything in it is loaded.

    Args:
        directory: The artifact directory.
        expected_model_id: Model id the caller is about to run; a set made for another model is refused.
        require: File names that must be listed (and therefore hash-checked), e.g. the precision to load.

    Returns:
        The verified manifest.

    Raises:
        ManifestError: Missing/malformed manifest, wrong model id, a required file not listed, a listed file
            missing or whose SHA-256 differs.

    """
    manifest = load_manifest(directory)
    if expected_model_id is not None and manifest.model_id != expected_model_id:
        raise ManifestError(
            f"{directory}: artifacts are for model {manifest.model_id}, "
            f"the runtime expects {expected_model_id} "
            "(weights or model settings changed: re-export)"
        )
    unlisted = sorted(set(require) - set(manifest.files))
    if unlisted:
        raise ManifestError(f"{directory}: {', '.join(unlisted)} not in {MANIFEST_FILE} (never gated)")
    for name, entry in sorted(manifest.files.items()):
        path = directory / name
        if not path.is_file():
            raise ManifestError(f"{path}: listed in {MANIFEST_FILE} but missing")
        actual = file_sha256(path)
        if actual != entry.sha256:
            raise ManifestError(
                f"{path}: SHA-256 {actual[:16]}… does not match the manifest's {entry.sha256[:16]}… "
                "(modified or corrupted after export); refusing to load it"
            )
    return manifest
