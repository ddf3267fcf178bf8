"""Build TensorRT engines on the device from the gated Q/DQ INT8, FP16 or FP32 ONNX models.

TensorRT 10 vs 11 (compared with :class:`packaging.version.Version`, never as strings):

* Precision comes from the ONNX graph in both: Q/DQ nodes for INT8, FP16 tensors for FP16. The networks are
  *strongly typed*, so TensorRT neither picks nor needs ``BuilderFlag.INT8``/``FP16`` (removed in 11) nor a
  calibrator (deprecated in 10.1, removed in 11).
* 10.x: strong typing is opt-in: ``1 << NetworkDefinitionCreationFlag.STRONGLY_TYPED`` at network creation.
* 11.x: strong typing is always on and the flag is deprecated (ignored): pass no flags.

Each engine gets one optimisation profile covering the declared dynamic dims (batch of the vision encoder,
number of templates ``k`` of the comparison encoder) exactly as far as the inspection can feed them
(:mod:`edge.model.limits`); a timing cache file per device key makes rebuilds after an artifact update
take seconds (an unreadable one is replaced by an empty one). Engines are written with
``build_serialized_network`` into ``engines/<device key>/`` next to a ``build.json`` recording the
fingerprint, the source ONNX hashes and the load-time parity figures; :func:`engines_stale` compares those
with the current device and manifest. Several precisions share an engine file (INT8 runs the FP32
comparison engine), so each (source ONNX, engine file) pair is built once per run and its record shared:
TensorRT builds are not byte-identical, and a second build would leave the first record's hash stale.
Every file is written 0644: the firmware update hook that builds and the station that loads may run as
different users.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import Version
from tqdm import tqdm

from edge.artifacts.engines import BUILD_RECORD, engine_dir, engine_sources, engines_stale
from edge.artifacts.fingerprint import device_fingerprint, tensorrt_version
from edge.artifacts.manifest import Manifest, now_iso, verify_manifest
from edge.artifacts.names import ENCODERS, Encoder, Precision, engine_file
from edge.engines.tensorrt_runner import open_tensorrt, tensorrt_logger
from edge.model.backbone_catalog import file_sha256
from edge.model.limits import ENROLL_BATCH, MEMORY_CHUNKS, comparison_k_max
from edge.model.sizing import MAX_ELONGATION, SIDE_MULTIPLE

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)
TIMING_CACHE = "timing.cache"
WORKSPACE_BYTES = 1 << 30


def dynamic_ranges(
    input_size: tuple[int, int], memory_chunks: int = MEMORY_CHUNKS
) -> dict[str, tuple[int, int, int]]:
    """(min, opt, max) of each named dynamic dim for a model whose reference input is ``input_size``.

    One source of truth with the runtime: heights/widths cover every SKU input
    :func:`edge.model.sizing.sku_input_size` can choose (short side of the reference, long side up
    to ``MAX_ELONGATION`` times it), feature maps are those /8; ``k`` covers the largest ``top_k`` the
    config schema allows and the packed patch memory (``memory_chunks`` maps); batch covers the
    inspector's enrollment batch (:mod:`edge.model.limits`). Wider than needed costs GPU memory (the
    runner allocates its buffers at the maxima), narrower breaks real configs.
    """
    short = min(input_size)
    longest = max(max(input_size), math.floor(short * MAX_ELONGATION / SIDE_MULTIPLE) * SIDE_MULTIPLE)
    h, w = input_size
    return {
        "batch": (1, 1, ENROLL_BATCH),
        # opt: the default top_k and memory budget (3 each), what most SKUs run.
        "k": (1, min(3, comparison_k_max(memory_chunks)), comparison_k_max(memory_chunks)),
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
    logger = tensorrt_logger()
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(version))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(parser.get_error(i).desc() for i in range(parser.num_errors))
        raise EngineBuildError(f"{onnx_path.name}: TensorRT ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    _attach_timing_cache(config, timing_cache)
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile_shapes(onnx_path, ranges).items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"{onnx_path.name}: TensorRT build failed (see the TensorRT log above)")
    _atomic_write(engine_path, bytes(serialized))
    _atomic_write(timing_cache, bytes(config.get_timing_cache().serialize()))


def _attach_timing_cache(config: trt.IBuilderConfig, path: Path) -> None:
    """Give the build the timing cache stored at ``path``, or an empty one when it cannot be used.

    ``create_timing_cache`` returns None for bytes it cannot read (a truncated write, another TensorRT), and
    ``set_timing_cache`` refuses a cache from another device (``ignore_mismatch=False``: mismatched timings
    would pick slow tactics). Either way the build goes on with an empty cache, which only costs time; the
    file is replaced after the build.
    """
    data = path.read_bytes() if path.is_file() else b""
    if data:
        cache = config.create_timing_cache(data)
        if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
            return
        log.warning("%s: unreadable or made for another device; building with an empty timing cache", path)
    empty = config.create_timing_cache(b"")
    if empty is None or not config.set_timing_cache(empty, ignore_mismatch=False):
        raise EngineBuildError("TensorRT could not create an empty timing cache")


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, world-readable."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    # mkstemp creates 0600; the station may load what the update hook built as another user.
    os.fchmod(fd, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    Path(tmp).replace(path)


def build_engines(
    artifact_dir: Path,
    precisions: Sequence[Precision],
    model_id: str | None = None,
    if_stale: bool = False,
    ranges: Mapping[str, tuple[int, int, int]] | None = None,
    progress: bool = True,
) -> dict[str, object]:
    """Build (and parity-check on load) the engines of ``precisions`` for this device.

    Each (source ONNX, engine file) pair is built at most once per call, and every precision that runs that
    engine (also one recorded by an earlier call) gets the same record, so ``build.json`` always holds the
    hash of the file on disk.

    Args:
        artifact_dir: Verified artifact set (its manifest is checked first).
        precisions: Which engines to build.
        model_id: Expected model id (None: accept the manifest's).
        if_stale: Skip precisions whose engines are up to date for this device and these ONNX files, and
            within a stale precision reuse an engine that is up to date (e.g. the FP32 comparison engine
            INT8 shares).
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
    fingerprint = device_fingerprint()
    require = [name for p in precisions for name in engine_sources(p).values()]
    manifest = verify_manifest(artifact_dir, model_id, require=require)
    if ranges is None:
        size = manifest.spec.get("input_size", [320, 320])
        assert isinstance(size, list | tuple)
        ranges = dynamic_ranges((int(size[0]), int(size[1])))
    directory = engine_dir(artifact_dir, fingerprint)
    directory.mkdir(parents=True, exist_ok=True)
    record_path = directory / BUILD_RECORD
    record: dict[str, object] = json.loads(record_path.read_text()) if record_path.is_file() else {}
    built: dict[str, dict[str, dict[str, object]]] = dict(record.get("precisions", {}))  # type: ignore[call-overload]
    report: dict[str, object] = {"fingerprint": json.loads(fingerprint.to_json()), "precisions": {}}
    fresh: dict[tuple[str, str], dict[str, object]] = {}  # (source, engine file) -> record, this call
    jobs = [(p, e) for p in precisions for e in ENCODERS]
    with tqdm(total=len(jobs), desc="tensorrt", unit="engine", disable=not progress) as bar:
        for precision in precisions:
            status = engines_stale(artifact_dir, precision, fingerprint, manifest)
            if if_stale and not status.stale:
                report["precisions"][precision] = "up to date"  # type: ignore[index]
                bar.update(len(ENCODERS))
                continue
            entries: dict[str, dict[str, object]] = {}
            for encoder, source in engine_sources(precision).items():
                bar.set_postfix_str(f"{precision} {encoder}")
                engine_name = engine_file(encoder, precision)
                key = (source, engine_name)
                if key not in fresh:
                    current = _current_record(directory, built, key, manifest) if if_stale else None
                    fresh[key] = current or _build_one(
                        artifact_dir, directory, encoder, precision, source, engine_name, manifest, ranges
                    )
                entries[encoder] = fresh[key]
                bar.update()
            built[precision] = entries
            _share_records(built, fresh)
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


def _build_one(
    artifact_dir: Path,
    directory: Path,
    encoder: Encoder,
    precision: Precision,
    source: str,
    engine_name: str,
    manifest: Manifest,
    ranges: Mapping[str, tuple[int, int, int]],
) -> dict[str, object]:
    """Build one engine, check it against ONNX Runtime on load, and return its ``build.json`` record."""
    engine_path = directory / engine_name
    build_engine(artifact_dir / source, engine_path, directory / TIMING_CACHE, ranges)
    _, figures = open_tensorrt(engine_path, artifact_dir / source, encoder, precision)
    return {
        "source": source,
        "engine": engine_name,
        "source_sha256": manifest.files[source].sha256,
        "engine_sha256": file_sha256(engine_path),
        "parity_vs_onnxruntime": figures,
        "built": now_iso(),
    }


def _recorded_engine(entry: Mapping[str, object], encoder: str, precision: str) -> str | None:
    """Engine file name of a ``build.json`` entry (older records name it only by encoder and precision)."""
    name = entry.get("engine")
    if isinstance(name, str):
        return name
    if encoder in ENCODERS and precision in ("fp32", "int8", "fp16"):
        return engine_file(encoder, precision)  # type: ignore[arg-type]
    return None


def _current_record(
    directory: Path,
    built: Mapping[str, Mapping[str, Mapping[str, object]]],
    key: tuple[str, str],
    manifest: Manifest,
) -> dict[str, object] | None:
    """A recorded entry for ``key`` that still describes the files on disk, or None (then build)."""
    source, engine_name = key
    path = directory / engine_name
    if not path.is_file() or source not in manifest.files:
        return None
    on_disk = file_sha256(path)
    for precision, entries in built.items():
        for encoder, entry in entries.items():
            if (
                _recorded_engine(entry, encoder, precision) == engine_name
                and entry.get("source_sha256") == manifest.files[source].sha256
                and entry.get("engine_sha256") == on_disk
            ):
                return dict(entry)
    return None


def _share_records(
    built: dict[str, dict[str, dict[str, object]]], fresh: Mapping[tuple[str, str], dict[str, object]]
) -> None:
    """Point every recorded precision that runs an engine built in this call at that engine's new record."""
    by_engine = {engine_name: entry for (_, engine_name), entry in fresh.items()}
    for precision, entries in built.items():
        for encoder, entry in list(entries.items()):
            name = _recorded_engine(entry, encoder, precision)
            if name in by_engine and entry is not by_engine[name]:
                entries[encoder] = by_engine[name]
