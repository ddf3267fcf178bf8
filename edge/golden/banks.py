"""Build, calibrate and self-test the golden banks of every SKU in a config.

One function, :func:`build_banks`, is all the flash needs from the inspection core: it enrolls each SKU's
golden images with the current model artifacts, calibrates its threshold from leave-one-out golden
scores, checks that every golden image scores under the threshold and every listed validation defect
above it, and saves the banks. Banks are cached by content hash (model id, SKU settings, image bytes, the
inspection core's and the model package's source), so re-flashing a config that only changed the broker host
does not re-encode anything, while an appliance update that changes how banks are built or calibrated
rebuilds them.

It sits below the flash and the runtime, on the config, the inspection and the engines: ``edge flash``
builds the banks it installs with it, and ``edge run --config`` (a station without a flashed slot) builds
them at start from the golden folders with the encoders it already loaded. Building a bank is enrollment
(encoding golden images with exported encoders), not export: nothing here imports ``export/``, and when the
encoders are missing it says which ``edge export`` command makes them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import edge.inspection
import edge.model
from edge.artifacts.names import onnx_file
from edge.config.resolve import ResolvedConfig
from edge.config.skus import SkuSection
from edge.engines.encoders import Encoders, configured_encoders
from edge.golden.progress import StepProgress
from edge.inspection.inspector import Inspector
from edge.inspection.settings import InspectionError, SkuSettings
from edge.model.backbone_catalog import file_sha256
from edge.model.preprocess import ImageError
from edge.model.spec import ModelSpec, spec_model_id

log = logging.getLogger(__name__)

REPORT_NAME = "bank_report.json"


@dataclass
class SkuReport:
    """Outcome of building one SKU's bank."""

    sku: str
    images: int
    threshold: float | None = None
    golden_scores: list[float] = field(default_factory=list)
    defect_scores: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cached: bool = False
    cache_key: str = ""
    #: the self-configuration's choice and what the station can see (detection per synthetic defect kind,
    #: golden false-NG rate): the flash prints it for the line engineer.
    capability: dict[str, Any] = field(default_factory=dict)
    #: how long enrollment and self-configuration took (None: taken from the cache).
    build_seconds: float | None = None


@dataclass
class BankReport:
    """Outcome of :func:`build_banks` for a whole config."""

    model_id: str
    skus: list[SkuReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every SKU built and passed its self-test."""
        return all(not s.problems for s in self.skus)

    def problems(self) -> list[str]:
        """``sku: problem`` lines."""
        return [f"SKU {s.sku}: {p}" for s in self.skus for p in s.problems]

    def as_json(self) -> dict[str, Any]:
        """For the slot and the journal."""
        return {"model_id": self.model_id, "ok": self.ok, "skus": [asdict(s) for s in self.skus]}


def build_banks(
    config: ResolvedConfig,
    artifact_dir: Path,
    out_dir: Path,
    *,
    cache_dir: Path | None = None,
    encoders: Encoders | None = None,
) -> BankReport:
    """Enroll, calibrate and self-test every SKU; save banks to ``out_dir/<sku id>/``.

    Args:
        config: The resolved config (golden and validation image lists).
        artifact_dir: Model artifacts (ONNX encoders) to encode with.
        out_dir: Where the banks go (inside the slot being staged).
        cache_dir: Content-addressed cache of built banks (``None``: no cache).
        encoders: Encoders to use (default: ONNX Runtime from ``artifact_dir``). The bank is keyed by the
            model id, which is the same for every backend of one model.

    Returns:
        The report; ``report.ok`` is False when a SKU failed (the flash then aborts with its problems).

    """
    spec = ModelSpec(input_size=config.config.model.input_size, backbone=config.config.model.backbone)
    model_id = encoders.model_id if encoders is not None else spec_model_id(spec)
    inspector: Inspector | None = None
    if encoders is not None:
        inspector = Inspector(encoders)
    report = BankReport(model_id=model_id)
    for sku in config.config.skus:
        golden = config.golden_images.get(sku.id, [])
        defects = config.validation_images.get(sku.id, [])
        key = _cache_key(sku, model_id, golden, defects)
        target = out_dir / sku.id
        cached = cache_dir / key if cache_dir is not None else None
        if cached is not None and (cached / REPORT_NAME).is_file():
            shutil.copytree(cached, target)
            sku_report = SkuReport(**json.loads((cached / REPORT_NAME).read_text()))
            sku_report.cached = True
            report.skus.append(sku_report)
            continue
        if inspector is None:
            missing = [
                f for f in (onnx_file("vision"), onnx_file("comparison")) if not (artifact_dir / f).is_file()
            ]
            if missing:
                # A flash installs what was exported; it never exports a model behind the engineer's back.
                report.skus.append(
                    SkuReport(
                        sku=sku.id,
                        images=len(golden),
                        problems=[f"no model artifacts {missing} in {artifact_dir}: run `edge export` first"],
                    )
                )
                continue
            # The precision and backends the station will run: thresholds are calibrated on the very
            # features the line computes.
            model = config.config.model
            try:
                inspector = Inspector(
                    configured_encoders(
                        model.input_size, artifact_dir, model.precision, model.backends, model.backbone
                    )
                )
            except FileNotFoundError as exc:
                report.skus.append(SkuReport(sku=sku.id, images=len(golden), problems=[str(exc)]))
                continue
        sku_report = SkuReport(sku=sku.id, images=len(golden), cache_key=key)
        try:
            images = [(p.stem, _read(p)) for p in golden]
            started = time.perf_counter()
            with StepProgress(sku.id) as progress:
                bank = inspector.enroll(sku.id, images, sku_settings(sku), progress=progress)
            sku_report.build_seconds = round(time.perf_counter() - started, 1)
            assert bank.calibration is not None
            sku_report.threshold = round(float(bank.calibration.threshold), 4)
            sku_report.golden_scores = list(bank.calibration.golden_scores)
            sku_report.capability = dict(bank.calibration.capability)
            if bank.squashed:
                sku_report.warnings.append(
                    f"{len(bank.squashed)} golden image(s) have an aspect ratio far from the SKU's "
                    f"{bank.image_size[1]}x{bank.image_size[0]} and are resized to it: "
                    f"{', '.join(bank.squashed[:5])}{' ...' if len(bank.squashed) > 5 else ''}"
                )
            if bank.calibration.outliers:
                sku_report.problems.append(
                    "self-test: golden image(s) unlike the others (a defect in the golden set, or no real "
                    f"peer): {', '.join(bank.calibration.outliers)}"
                )
            methods = set(bank.calibration.method)
            if sku.bank_kind != "views" and methods == {"self"}:
                sku_report.warnings.append(
                    f"threshold calibrated without part-to-part variation ({len(golden)} golden image(s)): "
                    "good parts that differ more than the line's nuisance will be flagged NG; enroll "
                    "several different good parts"
                )
            elif sku.bank_kind != "views" and "peer" not in methods:
                sku_report.warnings.append(
                    "the golden images do not register onto each other: only the position-free feature "
                    "comparison decides (no pixel comparison, so small low-contrast defects may pass); if "
                    "each golden image shows another view or region of the product, set bank_kind: views"
                )
            _self_test(inspector, sku.id, defects, sku_report)
            bank.save(target)
        except GoldenImageError as exc:
            sku_report.problems.append(str(exc))
        except (InspectionError, ImageError) as exc:  # the core's own, worded for the engineer
            sku_report.problems.append(f"cannot build bank: {exc}")
        except Exception as exc:  # anything else still fails this SKU, clearly; the type helps a bug report
            log.exception("SKU %s: bank build failed", sku.id)
            sku_report.problems.append(f"cannot build bank: unexpected {type(exc).__name__}: {exc}")
        (target / REPORT_NAME).parent.mkdir(parents=True, exist_ok=True)
        (target / REPORT_NAME).write_text(json.dumps(asdict(sku_report), indent=1))
        if cached is not None and not sku_report.problems:
            tmp = cached.with_name(cached.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(target, tmp)
            tmp.replace(cached)
        for warning in sku_report.warnings:
            log.warning("SKU %s: %s", sku.id, warning)
        report.skus.append(sku_report)
    return report


def _self_test(inspector: Inspector, sku: str, defects: list[Path], report: SkuReport) -> None:
    """Check golden parts pass (leave-one-out calibration scores under the threshold), defects are caught."""
    threshold = report.threshold or 0.0
    over = [s for s in report.golden_scores if s > threshold]
    if over:
        report.problems.append(
            f"self-test: {len(over)} golden image(s) score above the threshold {threshold} "
            f"(worst {max(over)}): golden images disagree, or the fixed threshold is too low"
        )
    for path in defects:
        result = inspector.inspect(_read(path), sku)
        report.defect_scores.append(round(float(result.score), 4))
        if result.score <= result.threshold:
            report.problems.append(
                f"self-test: validation defect {path.name} scored {result.score:.3f}, not above the "
                f"threshold {result.threshold:.3f}: it would pass as OK"
            )


class GoldenImageError(ValueError):
    """A golden image cannot be used; the message names its full path and what to do."""


def _read(path: Path) -> Any:
    try:
        raw = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: it cannot tell unreadable from corrupt
    except OSError as exc:
        raise GoldenImageError(f"golden image {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        image = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED) if raw.size else None
    except cv2.error:  # a header OpenCV refuses (e.g. a claimed size beyond its pixel limit)
        image = None
    if image is None:
        raise GoldenImageError(
            f"golden image {path}: not a readable image (empty, corrupt or not an image file): replace or "
            "remove it"
        )
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGB)
    return image


def _core_digest() -> str:
    """Digest of the inspection core's and the model package's source: how a bank is built and calibrated.

    The model package holds the preprocessing and the sizing rules, which shape a bank without being part
    of the exported graphs (so without changing the model id).
    """
    digest = hashlib.sha256()
    for package in (edge.inspection, edge.model):
        for path in sorted(Path(package.__file__ or "").parent.glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _cache_key(sku: SkuSection, model_id: str, golden: list[Path], defects: list[Path]) -> str:
    """Everything the bank depends on: model (id: weights, input size), settings, images, code."""
    digest = hashlib.sha256(_core_digest().encode())
    settings = sku.model_dump(mode="json", exclude={"golden_dir", "validation_defects_dir"})
    digest.update(json.dumps([settings, model_id], sort_keys=True).encode())
    for tag, paths in (("golden", golden), ("defect", defects)):
        for path in paths:
            digest.update(f"{tag}:{path.name}:{file_sha256(path)}".encode())
    return digest.hexdigest()[:24]


def capability_lines(report: BankReport) -> list[str]:
    """What each SKU's station can see, for the line engineer (printed by the flash).

    Per SKU: the comparisons the self-configuration chose, the detection rate of each kind of synthetic
    defect at the calibrated threshold, and the golden false-NG rate (leave-one-out).
    """
    lines = []
    for sku in report.skus:
        cap = sku.capability
        if not cap:
            continue
        seen = ", ".join(f"{kind} {rate:.0%}" for kind, rate in cap.get("detection", {}).items())
        built = (
            "bank from the cache"
            if sku.cached or sku.build_seconds is None
            else f"{sku.images} golden images enrolled and configured in {sku.build_seconds:.0f} s"
        )
        lines.append(
            f"SKU {sku.sku}: chose {cap.get('choice')}; threshold {sku.threshold}; can see (synthetic "
            f"defects, {cap.get('synthetic_per_kind')} per kind): {seen}; golden false NG "
            f"{cap.get('golden_false_ng', 0):.0%} of {cap.get('golden_samples')}; {built}"
        )
    return lines


def sku_settings(sku: SkuSection) -> SkuSettings:
    """The inspection knobs of one configured SKU: the one mapping from the config to the inspection core.

    Here, above both, so that the pure config layer does not depend on the core it configures.
    """
    area = float(sku.min_defect_area_px)
    if sku.min_defect_area_mm2 is not None and sku.pixel_pitch_mm is not None:
        area = max(area, sku.min_defect_area_mm2 / sku.pixel_pitch_mm**2)
    return SkuSettings(
        top_k=sku.top_k,
        bank_kind=sku.bank_kind,
        pixel_compare=sku.pixel_compare,
        line_nuisance=sku.line_nuisance,
        threshold_margin=sku.threshold_margin,
        threshold=sku.threshold,
        min_defect_area_px=area,
    )
