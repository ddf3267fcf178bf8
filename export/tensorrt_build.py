"""Build TensorRT engines on the device from the gated Q/DQ INT8, FP16 or FP32 ONNX models.

TensorRT 10 vs 11 (compared with :class:`packaging.version.Version`, never as strings):

* Precision comes from the ONNX graph in both: Q/DQ nodes for INT8, FP16 tensors for FP16. The networks are
  *strongly typed*, so TensorRT neither picks nor needs ``BuilderFlag.INT8``/``FP16`` (removed in 11) nor a
  calibrator (deprecated in 10.1, removed in 11).
* 10.x: strong typing is opt-in: ``1 << NetworkDefinitionCreationFlag.STRONGLY_TYPED`` at network creation.
* 11.x: strong typing is always on and the flag is deprecated (ignored): pass no flags.

Each engine gets one optimisation profile covering the declared dynamic dims (batch of the vision encoder,
number of templates ``k`` of the comparison encoder); a timing cache file per device key makes rebuilds after
an artifact update take seconds. Engines are written with ``build_serialized_network`` into
``engines/<device key>/`` next to a ``build.json`` recording the fingerprint, the source ONNX hashes and the
load-time parity figures; :func:`engines_stale` compares those with the current device and manifest.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version
from tqdm import tqdm

from edge.engines.artifacts import ENCODERS, ENGINES_DIR, Encoder, Precision, engine_file, onnx_file
from edge.inspection.backbone import file_sha256
from edge.inspection.sizing import MAX_ELONGATION, SIDE_MULTIPLE
from export.fingerprint import DeviceFingerprint, device_fingerprint, tensorrt_version
from export.manifest import Manifest, now_iso, verify_manifest

log = logging.getLogger(__name__)
BUILD_RECORD = "build.json"
TIMING_CACHE = "timing.cache"
WORKSPACE_BYTES = 1 << 30


def dynamic_ranges(input_size: tuple[int, int]) -> dict[str, tuple[int, int, int]]:
    """(min, opt, max) of each named dynamic dim for a model whose reference input is ``input_size``.

    One source of truth with the runtime: heights/widths cover every SKU input
    :func:`edge.inspection.sizing.sku_input_size` can choose (short side of the reference, long side up
    to ``MAX_ELONGATION`` times it), feature maps are those /8; ``k`` counts the top-k templates and the
    packed patch-memory chunks (at most 32 each, as the config schema allows); batch covers enrollment.
    """
    short = min(input_size)
    longest = max(max(input_size), math.floor(short * MAX_ELONGATION / SIDE_MULTIPLE) * SIDE_MULTIPLE)
    h, w = input_size
    return {
        "batch": (1, 1, 8),
        "k": (1, 3, 32),
        "height": (SIDE_MULTIPLE, h, longest),
        "width": (SIDE_MULTIPLE, w, longest),
        "fh": (SIDE_MULTIPLE // 8, h // 8, longest // 8),
        "fw": (SIDE_MULTIPLE // 8, w // 8, longest // 8),
    }


#: The ranges at the default reference input (320x320).
DEFAULT_DYNAMIC_RANGES: dict[str, tuple[int, int, int]] = dynamic_ranges((320, 320))


class EngineBuildError(RuntimeError):
    """TensorRT could not parse or build a model."""


def network_flags(version: Version) -> int:
    """Network creation flags for a strongly typed network on TensorRT ``version``."""
    if version.major < 10:
        raise EngineBuildError(f"TensorRT {version} is not supported (need 10.0 or newer)")
    if version.major == 10:
        import tensorrt as trt

        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return 0  # 11+: always strongly typed; the flag is deprecated.


def profile_shapes(
    onnx_path: Path, ranges: Mapping[str, tuple[int, int, int]] = DEFAULT_DYNAMIC_RANGES
) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """(min, opt, max) shape of every input of an ONNX model, from its declared dims and ``ranges``.

    Raises:
        EngineBuildError: An input has a dynamic dim without a range.

    """
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {}
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        per_dim: list[tuple[int, int, int]] = []
        for dim in dims:
            if dim.HasField("dim_value"):
                per_dim.append((dim.dim_value,) * 3)
            elif dim.dim_param in ranges:
                per_dim.append(ranges[dim.dim_param])
            else:
                raise EngineBuildError(
                    f"{onnx_path.name}: input '{value.name}': dynamic dim '{dim.dim_param}' has no range "
                    f"(known: {sorted(ranges)})"
                )
        shapes[value.name] = (
            tuple(d[0] for d in per_dim),
            tuple(d[1] for d in per_dim),
            tuple(d[2] for d in per_dim),
        )
    return shapes


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    timing_cache: Path,
    ranges: Mapping[str, tuple[int, int, int]] = DEFAULT_DYNAMIC_RANGES,
    workspace_bytes: int = WORKSPACE_BYTES,
) -> None:
    """Parse ``onnx_path`` into a strongly typed network and serialize an engine to ``engine_path``.

    The timing cache is read when present and written back after the build.

    Raises:
        EngineBuildError: Parse errors (each listed) or a failed build.

    """
    import tensorrt as trt

    version = tensorrt_version()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(version))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(parser.get_error(i).desc() for i in range(parser.num_errors))
        raise EngineBuildError(f"{onnx_path.name}: TensorRT ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile_shapes(onnx_path, ranges).items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"{onnx_path.name}: TensorRT build failed (see the TensorRT log above)")
    _atomic_write(engine_path, bytes(serialized))
    _atomic_write(timing_cache, bytes(config.get_timing_cache().serialize()))


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    Path(tmp).replace(path)


@dataclass(frozen=True)
class EngineStatus:
    """Whether the engines of one precision are usable on this device, and why not."""

    directory: Path
    stale: bool
    reason: str


def engine_dir(artifact_dir: Path, fingerprint: DeviceFingerprint) -> Path:
    """Directory of the engines for a device key."""
    return artifact_dir / ENGINES_DIR / fingerprint.key()


def _sources(precision: Precision) -> dict[Encoder, str]:
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
    for encoder, source in _sources(precision).items():
        entry = built.get(encoder, {})
        expected = manifest.files[source].sha256 if source in manifest.files else None
        if entry.get("source_sha256") != expected:
            return EngineStatus(directory, True, f"{source} changed since its engine was built")
        path = directory / engine_file(encoder, precision)
        if not path.is_file() or file_sha256(path) != entry.get("engine_sha256"):
            return EngineStatus(directory, True, f"{path.name} missing or modified")
    return EngineStatus(directory, False, "up to date")


def build_engines(
    artifact_dir: Path,
    precisions: Sequence[Precision],
    model_id: str | None = None,
    if_stale: bool = False,
    ranges: Mapping[str, tuple[int, int, int]] | None = None,
    progress: bool = True,
) -> dict[str, object]:
    """Build (and parity-check on load) the engines of ``precisions`` for this device.

    Args:
        artifact_dir: Verified artifact set (its manifest is checked first).
        precisions: Which engines to build.
        model_id: Expected model id (None: accept the manifest's).
        if_stale: Skip precisions whose engines are up to date for this device and these ONNX files.
        ranges: Optimisation profile ranges of the dynamic dims (default: :func:`dynamic_ranges` of the
            manifest's reference input size).
        progress: Show a progress bar.

    Returns:
        Report: fingerprint, and per precision ``built``/``skipped`` with parity figures.

    Raises:
        GpuUnavailableError: No GPU/TensorRT here.
        ManifestError: The artifact set does not verify, or a source precision was never exported.
        EngineBuildError, ParityError: Build or load-time parity failed (the engine is not recorded).

    """
    from edge.engines.tensorrt_runner import open_tensorrt

    fingerprint = device_fingerprint()
    require = [name for p in precisions for name in _sources(p).values()]
    manifest = verify_manifest(artifact_dir, model_id, require=require)
    if ranges is None:
        size = manifest.spec.get("input_size", [320, 320])
        assert isinstance(size, list | tuple)
        ranges = dynamic_ranges((int(size[0]), int(size[1])))
    directory = engine_dir(artifact_dir, fingerprint)
    directory.mkdir(parents=True, exist_ok=True)
    record_path = directory / BUILD_RECORD
    record: dict[str, object] = json.loads(record_path.read_text()) if record_path.is_file() else {}
    built: dict[str, object] = dict(record.get("precisions", {}))  # type: ignore[call-overload]
    report: dict[str, object] = {"fingerprint": json.loads(fingerprint.to_json()), "precisions": {}}
    jobs = [(p, e) for p in precisions for e in ENCODERS]
    with tqdm(total=len(jobs), desc="tensorrt", unit="engine", disable=not progress) as bar:
        for precision in precisions:
            status = engines_stale(artifact_dir, precision, fingerprint, manifest)
            if if_stale and not status.stale:
                report["precisions"][precision] = "up to date"  # type: ignore[index]
                bar.update(len(ENCODERS))
                continue
            entries: dict[str, object] = {}
            for encoder, source in _sources(precision).items():
                bar.set_postfix_str(f"{precision} {encoder}")
                engine_path = directory / engine_file(encoder, precision)
                build_engine(artifact_dir / source, engine_path, directory / TIMING_CACHE, ranges)
                _, figures = open_tensorrt(engine_path, artifact_dir / source, encoder, precision)
                entries[encoder] = {
                    "source": source,
                    "source_sha256": manifest.files[source].sha256,
                    "engine_sha256": file_sha256(engine_path),
                    "parity_vs_onnxruntime": figures,
                    "built": now_iso(),
                }
                bar.update()
            built[precision] = entries
            report["precisions"][precision] = entries  # type: ignore[index]
            _atomic_write(
                record_path,
                json.dumps(
                    {
                        "fingerprint": json.loads(fingerprint.to_json()),
                        "model_id": manifest.model_id,
                        "ranges": {k: list(v) for k, v in ranges.items()},
                        "precisions": built,
                    },
                    indent=2,
                    sort_keys=True,
                ).encode(),
            )
    return report
