"""The inspection: frame + golden bank of its SKU -> anomaly map, verdict, boxes.

Per frame: encode (vision encoder) -> retrieve the top-k golden templates -> register each to the frame ->
compare in feature space (comparison encoder over the registered template features) and at pixel level
(tolerant difference after registration) -> normalise both with the SKU's golden statistics -> fuse ->
score, verdict, boxes. Template features are computed once at enrollment and warped, never re-encoded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.engines.encoders import Encoders
from edge.inspection import selfconfig
from edge.inspection.augment import LinePerturbation
from edge.inspection.bank import Calibration, SkuBank, image_sha256, shown_label
from edge.inspection.box_scoring import BoxSample, mask_boxes, score_boxes
from edge.inspection.defects import defect_set
from edge.inspection.memory import PatchMemory
from edge.inspection.postprocess import defect_boxes, fuse
from edge.inspection.registration import (
    RegistrationSettings,
    register,
    scale_affine,
    warp_to_frame,
)
from edge.inspection.types import InspectionResult, Registration, Verdict
from edge.inspection.whole_part import MIN_PARTS, WholePartModel, leave_one_out, pooled
from edge.model.limits import ENROLL_BATCH, MEMORY_CHUNKS
from edge.model.preprocess import ImageError, PreparedImage, ViewSettings, as_rgb, prepare
from edge.model.sizing import resize_to, sku_geometry

FloatMap = npt.NDArray[np.float32]


#: Seeds the line nuisance shown to the patch memory (enrollment is reproducible).
MEMORY_NUISANCE_SEED = 20261202

#: Every comparison :meth:`Inspector.analyze` can compute.
ALL_MAPS = frozenset({"template", "pixel", "memory", "part"})


class InspectionError(RuntimeError):
    """The inspection cannot run for this frame/SKU (the caller publishes an ERROR verdict)."""


@dataclass(frozen=True)
class SkuSettings:
    """Per-SKU knobs a line engineer may set in the station config.

    Attributes:
        top_k: golden templates compared per frame.
        bank_kind: ``instances`` (golden images are different parts seen the same way: calibrate on real
            part-to-part variation, leave-one-out), ``views`` (each golden image shows another view or region,
            e.g. crops of a board: calibrate each against itself under line nuisance) or ``auto``.
        threshold_margin: relative margin added above the highest golden calibration score.
        threshold: fixed threshold overriding calibration (normalised units), or None.
        min_defect_area_px: smallest box kept, in image pixels.
        box_padding: margin around each box as a fraction of the image's longer side (8 px at 640), so
            the operator sees the defect in its context, as inspectors draw boxes.
        pixel_compare: use the registered pixel-level comparison beside the feature comparison: ``on``,
            ``off`` or ``auto`` (on, unless the golden set cannot show that parts are pixel-repeatable: a
            single golden part, or no golden part registers onto another, and the bank is not ``views``).
        line_nuisance: ``typical``: the patch memory also holds the golden parts as the line shows them
            (lighting, sensor noise, focus: :class:`LinePerturbation`), and the calibration and the
            self-configuration see every golden part and half the synthetic defects that way too, so the
            threshold and the chosen comparisons hold on a real line; ``off``: the golden images as
            captured only (a line whose frames are as clean as its golden images).

    """

    top_k: int = 3
    bank_kind: str = "auto"
    threshold_margin: float = 0.1
    threshold: float | None = None
    min_defect_area_px: float = 12.0
    box_padding: float = 0.012
    pixel_compare: str = "auto"
    line_nuisance: str = "typical"


#: The nuisance models of ``SkuSettings.line_nuisance`` (None: none).
LINE_NUISANCE: dict[str, LinePerturbation | None] = {"off": None, "typical": LinePerturbation()}


def _nuisance(sku: str, cfg: SkuSettings) -> LinePerturbation | None:
    if cfg.line_nuisance not in LINE_NUISANCE:
        raise InspectionError(
            f"SKU '{sku}': line_nuisance '{cfg.line_nuisance}' is not one of {', '.join(LINE_NUISANCE)}"
        )
    return LINE_NUISANCE[cfg.line_nuisance]


@dataclass(frozen=True)
class InspectorSettings:
    """Station-wide inspection settings.

    Attributes:
        views: resolutions of the registration and pixel-comparison views.
        registration: registration tuning.
        fusion: how the maps a SKU uses combine: ``auto`` (each SKU chooses ``max`` or ``mean`` at flash
            time, :mod:`edge.inspection.selfconfig`), or one of ``max``, ``mean``, ``geo`` for every SKU.
        pixel_blur: Gaussian sigma applied to both images before the pixel comparison.
        tolerance_px: edge tolerance of the pixel comparison (a template edge may move this much).
        min_defect_width_px: pixel differences thinner than this (fine pixels) are edge-width or
            sub-pixel registration residue, not defects; a morphological opening removes them.
        min_contrast: smallest grey-level difference that can count as a defect, as a fraction of the
            golden images' intensity range (1st to 99th percentile); floors the pixel normalisation.
        min_contrast_unseen: the same floor when the golden set could not show part-to-part variation
            (a single golden part, or no golden part with a peer) and the SKU is not a bank of views.
        map_smooth: Gaussian sigma of the pixel map (fine pixels).
        border_px: margin ignored along the edge of the warped template, on top of the comparison's own
            reach (blur, tolerance, opening).
        calib_samples: golden images used for calibration (evenly spread over the bank).
        peer_min_quality: registration correlation for a golden part to count as a peer of another.
        calib_quantile: each map is scaled by this quantile of its per-part maxima on golden parts, so one
            odd golden part does not set the scale (the threshold still sits above every golden part).
        view_mismatch_ratio: a retrieved template is compared only if its registration residual
            (1 - correlation) is at most this many times the best template's (plus 0.02): a template that
            registers much worse shows another view of the product and would explain away real defects.
        memory_chunks: patch-memory budget in feature maps of the SKU's input size (3: as many patches as
            the top-3 template comparison attends over, so it costs about the same per frame).
        synthetic_per_kind: synthetic defects of each kind drawn for the self-configuration.

    """

    views: ViewSettings = field(default_factory=ViewSettings)
    registration: RegistrationSettings = field(default_factory=RegistrationSettings)
    fusion: str = "auto"
    pixel_blur: float = 1.0
    tolerance_px: int = 2
    min_defect_width_px: int = 3
    min_contrast: float = 0.15
    min_contrast_unseen: float = 0.35
    map_smooth: float = 1.5
    border_px: int = 1
    calib_samples: int = 40
    peer_min_quality: float = 0.8
    calib_quantile: float = 0.9
    view_mismatch_ratio: float = 2.0
    memory_chunks: int = MEMORY_CHUNKS
    synthetic_per_kind: int = 6


@dataclass
class RawMaps:
    """Un-normalised comparison of one frame against its retrieved templates."""

    feature: FloatMap  # template comparison, at fine resolution
    pixel: FloatMap  # at fine resolution
    memory: FloatMap | None  # whole-bank patch memory, at fine resolution (None: not computed)
    part: float | None  # whole-part Mahalanobis distance (None: no model or not computed)
    valid: npt.NDArray[np.bool_]
    template_idx: list[int]
    retrieval_scores: list[float]
    registrations: list[Registration]
    latency_ms: dict[str, float]


def _inlier_mask(scores: npt.NDArray[np.float64], k: float = 5.0) -> npt.NDArray[np.bool_]:
    """Golden scores that agree with the rest: at most median + k MAD, MAD floored at a quarter of the median.

    A golden image far above the others (a defect that slipped into the golden set, or a part with no
    real peer) must not raise the threshold; it is reported instead, and the flash self-test refuses it.
    """
    med = float(np.median(scores))
    mad = 1.4826 * float(np.median(np.abs(scores - med)))
    result: npt.NDArray[np.bool_] = scores <= med + k * max(mad, 0.25 * med)
    return result


def _content_mask(
    size: tuple[int, int], matrix: npt.NDArray[np.float64], fine_shape: tuple[int, ...], border_px: int
) -> npt.NDArray[np.bool_]:
    """Fine-resolution mask of where a perturbed image still shows real content."""
    h, w = size
    ones = np.full((h, w), 255, np.uint8)
    warped = cv2.warpAffine(ones, matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    fine = cv2.resize(warped, (fine_shape[1], fine_shape[0]), interpolation=cv2.INTER_NEAREST)
    k = 2 * (border_px + 2) + 1
    return cv2.erode(fine, np.ones((k, k), np.uint8)) > 0


class Inspector:
    """Inspects frames against golden banks, one bank per SKU."""

    def __init__(self, encoders: Encoders, settings: InspectorSettings | None = None) -> None:
        self.encoders = encoders
        self.settings = settings or InspectorSettings()
        self.banks: dict[str, SkuBank] = {}

    @property
    def model_id(self) -> str:
        """Id of the model the encoders implement."""
        return self.encoders.model_id

    # ---------------------------------------------------------------- encoding
    def prepare(self, image: npt.NDArray[Any], where: str, bank: SkuBank) -> PreparedImage:
        """Validate an image and bring it to the SKU's frame size and model input (see ``sizing``)."""
        rgb = as_rgb(image, where)
        h, w = rgb.shape[:2]
        lo, hi = bank.aspect_range
        if not lo <= w / h <= hi:
            raise ImageError(
                f"{where}: {w}x{h} (aspect {w / h:.2f}) is outside the aspect ratios of SKU "
                f"'{bank.sku}''s golden images ({lo:.2f}-{hi:.2f}): another camera or region of interest?"
            )
        return prepare(resize_to(rgb, bank.image_size), bank.input_size, self.settings.views, where)

    def encode(
        self, prepared: Sequence[PreparedImage], batch: int = ENROLL_BATCH
    ) -> tuple[FloatMap, FloatMap]:
        """Encode prepared images -> (features ``[N, C, h, w]``, descriptors ``[N, D]``)."""
        feats, descs = [], []
        for start in range(0, len(prepared), batch):
            chunk = np.stack([p.model_input for p in prepared[start : start + batch]])
            out = self.encoders.vision.infer({"image": chunk})
            feats.append(out["features"].astype(np.float32))
            descs.append(out["descriptor"].astype(np.float32))
        return np.concatenate(feats), np.concatenate(descs)

    # --------------------------------------------------------------- enrollment
    def enroll(
        self,
        sku: str,
        images: Sequence[tuple[str, npt.NDArray[Any]]],
        sku_settings: SkuSettings | None = None,
        calibrate: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> SkuBank:
        """Build (and by default calibrate) the golden bank of ``sku`` and make it active.

        Args:
            sku: SKU id.
            images: (template id, image) pairs of defect-free parts; sizes may differ (``sizing``).
            sku_settings: per-SKU knobs stored with the bank.
            calibrate: learn normalisation and threshold from the golden images.
            progress: called with (done, total) while encoding.

        """
        if not images:
            raise InspectionError(f"SKU '{sku}': no golden images to enroll")
        cfg = sku_settings or SkuSettings()
        rgbs = [as_rgb(np.asarray(image), f"golden '{tid}'") for tid, image in images]
        geometry = sku_geometry(
            [(int(r.shape[0]), int(r.shape[1])) for r in rgbs],
            [tid for tid, _ in images],
            self.encoders.spec.input_size,
        )
        size = geometry.image_size
        prepared = []
        for i, ((tid, _), rgb) in enumerate(zip(images, rgbs, strict=True)):
            prepared.append(
                prepare(resize_to(rgb, size), geometry.input_size, self.settings.views, f"golden '{tid}'")
            )
            if progress:
                progress(i + 1, len(images))
        feats, descs = self.encode(prepared)
        fh, fw = feats.shape[-2:]
        memory = PatchMemory.build(
            self._memory_candidates(sku, cfg, rgbs, size, geometry.input_size, feats),
            self.settings.memory_chunks * fh * fw,
        )
        part_mean, part_precision = np.zeros(0), np.zeros((0, 0))
        if len(images) >= MIN_PARTS:
            model = WholePartModel.fit(pooled(feats))
            part_mean, part_precision = model.mean, model.precision
        bank = SkuBank(
            sku=sku,
            model_id=self.model_id,
            template_ids=[tid for tid, _ in images],
            image_hashes=[image_sha256(img) for _, img in images],
            image_size=(int(size[0]), int(size[1])),
            features=feats.astype(np.float16),
            descriptors=descs,
            thumbs=np.stack([p.thumb for p in prepared]),
            gray_reg=np.stack([p.gray_reg for p in prepared]),
            gray_fine=np.stack([p.gray_fine for p in prepared]),
            input_size=geometry.input_size,
            aspect_range=geometry.aspect_range,
            memory_patches=memory.patches,
            memory_source=memory.source,
            part_mean=part_mean,
            part_precision=part_precision,
            settings=asdict(cfg),
        )
        bank.squashed = list(geometry.squashed)
        if calibrate:
            bank.calibration = self.calibrate(bank, rgbs)
        self.banks[sku] = bank
        return bank

    def _memory_candidates(
        self,
        sku: str,
        cfg: SkuSettings,
        rgbs: Sequence[npt.NDArray[np.uint8]],
        size: tuple[int, int],
        input_size: tuple[int, int],
        feats: FloatMap,
    ) -> tuple[FloatMap, npt.NDArray[np.int32]]:
        """Feature maps the patch memory selects from, and the golden image each came from.

        With a line nuisance, every golden part is also encoded as the line would show it, photometrically
        (lighting, noise, focus; placement does not matter to a position-free memory): plain features move
        under sensor noise and blur, and a memory of clean patches alone reads that as a defect everywhere.
        """
        source = np.arange(len(rgbs), dtype=np.int32)
        nuisance = _nuisance(sku, cfg)
        if nuisance is None:
            return feats, source
        still = replace(nuisance, max_shift_px=0.0, max_angle_deg=0.0)
        rng = np.random.default_rng(MEMORY_NUISANCE_SEED)
        shown = [
            prepare(resize_to(still.apply(rgb, rng)[0], size), input_size, self.settings.views, "golden")
            for rgb in rgbs
        ]
        extra, _ = self.encode(shown)
        return np.concatenate([feats, extra]), np.concatenate([source, [shown_label(int(i)) for i in source]])

    def add_bank(self, bank: SkuBank) -> None:
        """Activate a loaded bank; refuses one built for another model."""
        if bank.model_id != self.model_id:
            raise InspectionError(
                f"SKU '{bank.sku}': bank built for model {bank.model_id}, inspector runs {self.model_id}"
            )
        if bank.calibration is None:
            raise InspectionError(f"SKU '{bank.sku}': bank is not calibrated")
        self.banks[bank.sku] = bank

    # -------------------------------------------------------------- comparison
    def analyze(
        self,
        prepared: PreparedImage,
        features: FloatMap,
        descriptor: FloatMap,
        bank: SkuBank,
        top_k: int,
        exclude: frozenset[int] = frozenset(),
        maps: frozenset[str] = ALL_MAPS,
        exclude_shown: frozenset[int] = frozenset(),
    ) -> RawMaps:
        """Compare one encoded frame with its golden bank; un-normalised maps.

        ``maps`` names what to compute (``template``, ``pixel``, ``memory``, ``part``); the rest is left out
        (zero maps, ``None``) so that a frame pays only for the comparisons its SKU chose. ``exclude``
        leaves golden images out (leave-one-out); ``exclude_shown`` leaves out only the memory's copies of
        golden images as the line shows them (see :meth:`SkuBank.packed_memory`).
        """
        cfg = self.settings
        lat: dict[str, float] = {}
        t0 = time.perf_counter()
        hits = bank.retrieve(descriptor, prepared.thumb, top_k, exclude)
        if not hits:
            raise InspectionError(f"SKU '{bank.sku}': no golden template available to compare with")
        t1 = time.perf_counter()
        lat["retrieve"] = (t1 - t0) * 1e3

        fine_h, fine_w = prepared.gray_fine.shape
        fh, fw = features.shape[-2:]
        # Registration serves the template comparison (a template that registers much worse than the best
        # shows another view) and the pixel comparison; the patch memory and whole-part score need none.
        regs: list[Registration] = []
        if {"template", "pixel"} & maps:
            regs = [register(prepared.gray_reg, bank.gray_reg[i], cfg.registration) for i, _ in hits]
            best_q = max(r.quality for r in regs)
            limit = cfg.view_mismatch_ratio * (1.0 - best_q) + 0.02
            keep = [j for j, r in enumerate(regs) if 1.0 - r.quality <= limit]
            hits = [hits[j] for j in keep]
            regs = [regs[j] for j in keep]
        t2 = time.perf_counter()
        lat["register"] = (t2 - t1) * 1e3
        pixel, valid_fine = self._pixel_map(prepared, bank, hits, regs, "pixel" in maps)
        t3 = time.perf_counter()
        lat["pixel_compare"] = (t3 - t2) * 1e3

        # Feature level: the comparison encoder attends over every location of the retrieved templates as
        # enrolled (no warping: the search is position-free, so registration residue cannot show up here).
        query = np.ascontiguousarray(features[None], dtype=np.float32)
        feature = np.zeros((fine_h, fine_w), np.float32)
        if "template" in maps:
            out = self.encoders.comparison.infer(
                {
                    "query": query,
                    "templates": np.ascontiguousarray(bank.features[[i for i, _ in hits]], dtype=np.float32),
                    "template_valid": np.ones((len(hits), 1, fh, fw), np.float32),
                }
            )
            anomaly = out["anomaly"][0, 0].astype(np.float32)
            feature = cv2.resize(anomaly, (fine_w, fine_h), interpolation=cv2.INTER_LINEAR)
        t4 = time.perf_counter()
        lat["feature_compare"] = (t4 - t3) * 1e3
        # The same graph searches the whole-bank patch memory (packed as templates; leave-one-out masks the
        # excluded golden images' own patches).
        memory: FloatMap | None = None
        packed = bank.packed_memory((fh, fw), exclude, exclude_shown) if "memory" in maps else None
        if packed is not None:
            out = self.encoders.comparison.infer(
                {"query": query, "templates": packed[0], "template_valid": packed[1]}
            )
            memory = cv2.resize(
                out["anomaly"][0, 0].astype(np.float32), (fine_w, fine_h), interpolation=cv2.INTER_LINEAR
            )
        t5 = time.perf_counter()
        lat["memory_compare"] = (t5 - t4) * 1e3
        part: float | None = None
        whole = bank.whole_part
        if "part" in maps and whole is not None:
            part = float(whole.distance(pooled(features[None]))[0])
        lat["whole_part"] = (time.perf_counter() - t5) * 1e3
        return RawMaps(
            feature=feature,
            pixel=pixel,
            memory=memory,
            part=part,
            valid=valid_fine,
            template_idx=[i for i, _ in hits],
            retrieval_scores=[s for _, s in hits],
            registrations=regs,
            latency_ms=lat,
        )

    def _pixel_map(
        self,
        prepared: PreparedImage,
        bank: SkuBank,
        hits: list[tuple[int, float]],
        regs: list[Registration],
        compare: bool,
    ) -> tuple[FloatMap, npt.NDArray[np.bool_]]:
        """Tolerant pixel difference against each registered template (best per pixel) and where it is valid.

        Without ``compare`` the map is zero and valid wherever the frame's own edge allows.
        """
        cfg = self.settings
        fine_h, fine_w = prepared.gray_fine.shape
        # A pixel is comparable only if its whole comparison neighbourhood (blur, edge tolerance, opening)
        # lies on template content; near the warped template's edge the comparison sees padding.
        margin = cfg.border_px + cfg.tolerance_px + cfg.min_defect_width_px // 2
        margin += math.ceil(2 * cfg.pixel_blur)
        best: npt.NDArray[Any] = np.full((fine_h, fine_w), 255, np.uint8)
        covered: npt.NDArray[Any] = np.full((fine_h, fine_w), 0 if compare else 255, np.uint8)
        if compare:
            # All in uint8 with OpenCV's saturating arithmetic: an order of magnitude faster than float.
            fine_ratio = fine_w / prepared.gray_reg.shape[1]
            frame = cv2.GaussianBlur(prepared.gray_fine, (0, 0), cfg.pixel_blur)
            size = (fine_w, fine_h)
            kernel = np.ones((2 * cfg.tolerance_px + 1,) * 2, np.uint8)
            border = np.ones((2 * margin + 1,) * 2, np.uint8)
            width = cfg.min_defect_width_px
            opening = np.ones((width, width), np.uint8) if width > 1 else None
            for (idx, _), reg in zip(hits, regs, strict=True):
                m_fine = scale_affine(reg.matrix, fine_ratio, fine_ratio)
                tmpl = cv2.GaussianBlur(bank.gray_fine[idx], (0, 0), cfg.pixel_blur)
                warped = warp_to_frame(tmpl, m_fine, size)
                ones = np.full_like(bank.gray_fine[idx], 255)
                valid = cv2.erode(warp_to_frame(ones, m_fine, size, cv2.INTER_NEAREST), border)
                if cv2.countNonZero(valid) < 16:
                    continue
                # Photometric alignment: the line's lighting drifts; match the template's gain and offset.
                f_mean, f_std = cv2.meanStdDev(frame, mask=valid)
                t_mean, t_std = cv2.meanStdDev(warped, mask=valid)
                gain = float(np.clip(f_std[0, 0] / max(float(t_std[0, 0]), 1e-3), 0.5, 2.0))
                offset = float(f_mean[0, 0] - gain * t_mean[0, 0])
                warped = cv2.addWeighted(warped, gain, warped, 0.0, offset)
                diff = cv2.max(
                    cv2.subtract(frame, cv2.dilate(warped, kernel)),
                    cv2.subtract(cv2.erode(warped, kernel), frame),
                )
                if opening is not None:
                    diff = cv2.morphologyEx(diff, cv2.MORPH_OPEN, opening)
                best = cv2.min(best, cv2.bitwise_or(diff, cv2.bitwise_not(valid)))
                covered = cv2.bitwise_or(covered, valid)
        # The same holds at the frame's own edge: there the blur and tolerance windows see padding.
        covered[:margin, :] = 0
        covered[-margin:, :] = 0
        covered[:, :margin] = 0
        covered[:, -margin:] = 0
        valid_fine = covered > 0
        if not compare:
            return np.zeros((fine_h, fine_w), np.float32), valid_fine
        best_f = np.where(valid_fine, best, 0).astype(np.float32)
        pixel = cv2.GaussianBlur(best_f, (0, 0), cfg.map_smooth) if cfg.map_smooth > 0 else best_f
        return np.asarray(pixel, np.float32), valid_fine

    @staticmethod
    def _normalised(raw: RawMaps, calib: Calibration, names: Sequence[str]) -> dict[str, FloatMap]:
        """The comparison maps in ``names``, each divided by its golden scale (1.0 = a high normal value)."""
        out: dict[str, FloatMap] = {}
        for name in names:
            if name == "template":
                out[name] = raw.feature / np.float32(max(calib.feature_scale, 1e-6))
            elif name == "pixel":
                out[name] = raw.pixel / np.float32(max(calib.pixel_scale, 1e-6))
            elif name == "memory" and raw.memory is not None:
                out[name] = raw.memory / np.float32(max(calib.memory_scale, 1e-6))
        return out

    def _fused(self, raw: RawMaps, calib: Calibration) -> FloatMap:
        """The SKU's chosen maps, normalised and fused as its self-configuration chose."""
        return fuse(list(self._normalised(raw, calib, calib.maps).values()), calib.fusion)

    @staticmethod
    def _part_score(raw: RawMaps, calib: Calibration) -> float | None:
        """The whole-part distance in units of its golden scale (None when it is not computed)."""
        return None if raw.part is None else raw.part / max(calib.part_scale, 1e-6)

    # ------------------------------------------------------------- calibration
    def calibrate(
        self, bank: SkuBank, images: Sequence[npt.NDArray[Any]], seed: int = 20261122
    ) -> Calibration:
        """Learn the SKU's normalisation and threshold from its golden images only.

        Each sampled golden part is shown as the line would show it (placement, lighting, noise, blur) and
        compared with the *other* golden parts (leave-one-out: real part-to-part variation). A golden part
        with no peer in the bank (each view unique, e.g. different crops of a board) is compared with its own
        template instead, which still measures the line's nuisance.
        """
        cfg = self.settings
        sku_cfg = SkuSettings(**bank.settings) if bank.settings else SkuSettings()
        n = len(bank)
        picks = np.unique(np.linspace(0, n - 1, min(n, cfg.calib_samples)).round().astype(int))
        rng = np.random.default_rng(seed)
        nuisance = _nuisance(bank.sku, sku_cfg)
        # A part compared with its own template needs the nuisance to show anything (see below).
        perturb = nuisance or LinePerturbation()
        if sku_cfg.bank_kind not in ("auto", "instances", "views"):
            raise InspectionError(
                f"SKU '{bank.sku}': bank_kind '{sku_cfg.bank_kind}' is not auto/instances/views"
            )
        if sku_cfg.pixel_compare not in ("auto", "on", "off"):
            raise InspectionError(
                f"SKU '{bank.sku}': pixel_compare '{sku_cfg.pixel_compare}' is not auto/on/off"
            )

        def encoded(image: npt.NDArray[Any]) -> tuple[PreparedImage, FloatMap, FloatMap]:
            prep = self.prepare(image, "calibration image", bank)
            feats, descs = self.encode([prep])
            return prep, feats[0], descs[0]

        # Leave-one-out first, on the golden images as captured: they already carry the line's real
        # nuisance. The bank holds registered instances of one view only if most golden parts find a peer
        # that registers onto them; then both maps are calibrated on real part-to-part variation. A bank of
        # views (distinct crops of a board, `views`) compares every part with its own template under
        # synthetic line nuisance instead, as does a single golden part.
        loo: list[RawMaps | None] = [None] * len(picks)
        peer = [False] * len(picks)
        if sku_cfg.bank_kind != "views" and n > 1:
            for k, i in enumerate(picks):
                raw = self.analyze(*encoded(np.asarray(images[i])), bank, sku_cfg.top_k, frozenset({int(i)}))
                loo[k] = raw
                peer[k] = max(r.quality for r in raw.registrations) >= cfg.peer_min_quality
        instances = sku_cfg.bank_kind == "instances" or (
            sku_cfg.bank_kind == "auto" and sum(peer) >= 0.5 * len(peer)
        )
        raws: list[RawMaps] = []
        methods: list[str] = []
        for k, i in enumerate(picks):
            loo_raw = loo[k]
            if loo_raw is not None and (peer[k] or not instances):
                # A registered peer calibrates both maps. Golden parts that do not register onto each other
                # (textures, free poses) still show the part-to-part variation of the position-free feature
                # comparison, which is all that decides for them (the pixel map is off, see below); a part
                # compared with itself would show only the line's nuisance and set the threshold far too low.
                raws.append(loo_raw)
                methods.append("peer" if peer[k] else "peer-features")
                continue
            image, matrix = perturb.apply(np.asarray(images[i], dtype=np.uint8), rng)
            prep, feats, desc = encoded(image)
            # Against itself, but not against its own line-shown copy in the memory: that would be the very
            # nuisance the comparison must measure, and the threshold would fall to nothing.
            raw = self.analyze(prep, feats, desc, bank, sku_cfg.top_k, exclude_shown=frozenset({int(i)}))
            # The perturbation's border is made-up (mirrored) content: nothing there is a real part.
            raw.valid &= _content_mask(image.shape[:2], matrix, prep.gray_fine.shape, cfg.border_px)
            raws.append(raw)
            methods.append("self")
        # The same golden parts as the line shows them (placement, lighting, noise, focus), compared with
        # their peers: the golden images were captured with care, the line's frames are not, and a threshold
        # or a comparison chosen on the clean images alone fails on a real line.
        shown_golden: list[tuple[int, FloatMap]] = []  # (pick, features) of each line-shown golden part
        if nuisance is not None:
            for k, i in enumerate(picks):
                if methods[k] == "self":
                    continue
                image, matrix = nuisance.apply(np.asarray(images[i], dtype=np.uint8), rng)
                prep, feats, desc = encoded(image)
                raw = self.analyze(prep, feats, desc, bank, sku_cfg.top_k, frozenset({int(i)}))
                raw.valid &= _content_mask(image.shape[:2], matrix, prep.gray_fine.shape, cfg.border_px)
                raws.append(raw)
                shown_golden.append((k, feats))
        # Each comparison is scaled by how high it goes on golden parts (the calib_quantile of their
        # per-part maxima), so 1.0 means "as different as a good part gets" in every map and no map's
        # natural variation (e.g. pixel-level texture on a moulded part) masks another's evidence.
        usable = [r for r in raws if r.valid.any()]
        q = cfg.calib_quantile

        def scale(values: list[float]) -> float:
            return max(float(np.quantile(values, q)), 1e-3) if values else 1.0

        feature_scale = scale([float(r.feature[r.valid].max()) for r in usable])
        pixel_scale = scale([float(r.pixel[r.valid].max()) for r in usable])
        memory_scale = scale([float(r.memory[r.valid].max()) for r in usable if r.memory is not None])
        lo, hi = np.percentile(bank.gray_fine[picks], [1, 99])
        # Without a peer, the golden set shows no part-to-part variation at pixel level: only a difference
        # of a large share of the part's contrast can then count (different parts are not pixel-identical).
        unseen = not instances and sku_cfg.bank_kind != "views"
        floor = cfg.min_contrast_unseen if unseen else cfg.min_contrast
        pixel_scale = max(pixel_scale, floor * float(hi - lo))
        # Pixel differences mean something only between parts that are pixel-repeatable. Unseen, that
        # cannot be known, and one template cannot show every pose or shape variation of a part (measured:
        # bottle 1-shot AUROC 0.976 with the pixel map, 0.998 without): the position-free comparisons
        # decide alone, unless the engineer asks for the pixel comparison.
        use_pixel = sku_cfg.pixel_compare == "on" or (sku_cfg.pixel_compare == "auto" and not unseen)
        # The whole-part score of a golden part is its distance to the model fitted on the *other* parts.
        loo_models: dict[int, WholePartModel] = {}
        if bank.whole_part is not None:
            all_pooled = pooled(bank.features.astype(np.float32))
            peers = [int(i) for k, i in enumerate(picks) if methods[k] != "self"]
            loo_models = leave_one_out(all_pooled, peers)
            for k, i in enumerate(picks):
                if int(i) in loo_models:
                    raws[k].part = float(loo_models[int(i)].distance(all_pooled[int(i)])[0])
            for raw, (k, feats) in zip(raws[len(picks) :], shown_golden, strict=True):
                if int(picks[k]) in loo_models:
                    raw.part = float(loo_models[int(picks[k])].distance(pooled(feats[None]))[0])
        part_values = [r.part for r in raws if r.part is not None]
        calib = Calibration(
            feature_scale=feature_scale,
            pixel_scale=max(pixel_scale, 1e-3),
            threshold=1.0,
            method=methods,
            pixel_compare=use_pixel,
            memory_scale=memory_scale,
            part_scale=scale([float(v) for v in part_values]),
        )
        available = ["template"]
        if bank.memory is not None:
            available.append("memory")
        if use_pixel:
            available.append("pixel")
        golden_samples = [self._sample_scores(r, calib, available, "golden", False) for r in raws]

        # Synthetic defects drawn onto the sampled golden parts, compared exactly as their golden part was
        # (leave-one-out against its peers, or itself under line nuisance): what could the station see?
        # With a line nuisance, every other defect is shown as the line would show it.
        synth: list[selfconfig.SampleScores] = []
        synth_maps: list[tuple[RawMaps, npt.NDArray[np.bool_]]] = []  # with the defect mask as shown
        sources = [np.asarray(images[int(i)], np.uint8) for i in picks]
        for n_defect, (j, defect) in enumerate(defect_set(sources, cfg.synthetic_per_kind, seed + 1)):
            i = int(picks[j])
            own = methods[j] == "self"
            shown = defect.image
            placed: npt.NDArray[np.float64] | None = None
            if own or (nuisance is not None and n_defect % 2 == 1):
                shown, placed = perturb.apply(defect.image, rng)
            prep, feats, desc = encoded(shown)
            if own:
                raw = self.analyze(prep, feats, desc, bank, sku_cfg.top_k, exclude_shown=frozenset({i}))
            else:
                raw = self.analyze(prep, feats, desc, bank, sku_cfg.top_k, frozenset({i}))
            mask = defect.mask
            if placed is not None:
                raw.valid &= _content_mask(shown.shape[:2], placed, prep.gray_fine.shape, cfg.border_px)
                h, w = mask.shape
                mask = (
                    cv2.warpAffine(mask.astype(np.uint8) * 255, placed, (w, h), flags=cv2.INTER_NEAREST) > 0
                )
            synth_maps.append((raw, mask))
            if not own and i in loo_models:
                raw.part = float(loo_models[i].distance(pooled(feats[None]))[0])
            synth.append(self._sample_scores(raw, calib, available, defect.kind, True))
        samples = golden_samples + synth
        # pixel_compare: on is the engineer's word: only choices with the pixel map.
        best, ranked = selfconfig.choose(
            samples,
            available,
            bool(part_values) and len(bank) >= MIN_PARTS,
            sku_cfg.threshold_margin,
            required=("pixel",) if sku_cfg.pixel_compare == "on" else (),
            fusions=self._fusions(),
        )
        choice = best.choice
        calib.maps = list(choice.maps)
        calib.aggregation = choice.aggregation
        calib.whole_part = choice.whole_part
        calib.fusion = choice.fusion
        calib.pixel_compare = "pixel" in choice.maps
        scores = [selfconfig.combined(s, choice) for s in golden_samples]
        calib.golden_scores = [round(s, 4) for s in scores]
        inliers = _inlier_mask(np.asarray(scores))
        shown_of = [int(i) for i in picks] + [int(picks[k]) for k, _ in shown_golden]
        calib.outliers = list(
            dict.fromkeys(bank.template_ids[i] for i, ok in zip(shown_of, inliers, strict=True) if not ok)
        )
        calib.threshold = (
            sku_cfg.threshold
            if sku_cfg.threshold is not None
            else float(np.asarray(scores)[inliers].max()) * (1.0 + sku_cfg.threshold_margin)
        )
        map_max = np.asarray([s.by_subset[(choice.maps, choice.fusion)]["max"] for s in golden_samples])
        calib.map_threshold = (
            calib.threshold
            if choice.aggregation == "max" and choice.whole_part == "off"
            else float(map_max[inliers].max()) * (1.0 + sku_cfg.threshold_margin)
        )
        box_quality = self._box_quality(bank, calib, raws, golden_samples, synth_maps, synth, choice)
        # What the station can see at the threshold it will run with.
        final = selfconfig.evaluate(choice, samples, sku_cfg.threshold_margin, calib.threshold)
        calib.capability = {
            "choice": choice.label,
            "detection": {kind: round(rate, 3) for kind, rate in final.detection.items()},
            "golden_false_ng": round(final.golden_false_ng, 3),
            "synthetic_auroc": round(final.auroc, 4),
            "synthetic_per_kind": cfg.synthetic_per_kind,
            "golden_samples": len(scores),
            "synthetic_boxes": box_quality,
            "runners_up": [
                {"choice": e.choice.label, "objective": round(e.objective, 4)} for e in ranked[:5]
            ],
        }
        return calib

    def _fusions(self) -> tuple[str, ...]:
        """The fusions a SKU may choose from."""
        fusion = self.settings.fusion
        return selfconfig.FUSIONS if fusion == "auto" else (fusion,)

    def _box_quality(
        self,
        bank: SkuBank,
        calib: Calibration,
        golden: Sequence[RawMaps],
        golden_samples: Sequence[selfconfig.SampleScores],
        synthetic: Sequence[tuple[RawMaps, npt.NDArray[np.bool_]]],
        synthetic_samples: Sequence[selfconfig.SampleScores],
        choice: selfconfig.Choice,
    ) -> dict[str, float]:
        """How the SKU's boxes outline its synthetic defects (box F1, BBox-Mask IoU; ``box_scoring``)."""
        sku_cfg = SkuSettings(**bank.settings) if bank.settings else SkuSettings()
        h, w = bank.image_size
        samples = []
        for raw, sample in zip(golden, golden_samples, strict=True):
            ng = selfconfig.combined(sample, choice) > calib.threshold
            samples.append(BoxSample(self._fused(raw, calib), raw.valid, ng, [], False))
        for (raw, mask), sample in zip(synthetic, synthetic_samples, strict=True):
            ng = selfconfig.combined(sample, choice) > calib.threshold
            at_size = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
            samples.append(BoxSample(self._fused(raw, calib), raw.valid, ng, mask_boxes(at_size), True))
        scale = golden[0].valid.shape[1] / w
        f1, miou = score_boxes(
            samples,
            calib.map_threshold,
            (h, w),
            sku_cfg.min_defect_area_px,
            scale,
            sku_cfg.box_padding * max(h, w),
        )
        return {"box_f1": round(f1, 3), "bbox_mask_iou": round(miou, 3)}

    def _sample_scores(
        self, raw: RawMaps, calib: Calibration, available: Sequence[str], kind: str, defective: bool
    ) -> selfconfig.SampleScores:
        maps = self._normalised(raw, calib, available)
        return selfconfig.SampleScores(
            by_subset=selfconfig.subset_scores(maps, raw.valid, self._fusions()),
            whole_part=self._part_score(raw, calib),
            kind=kind,
            defective=defective,
        )

    # -------------------------------------------------------------- inspection
    def inspect(
        self,
        image: npt.NDArray[Any],
        sku: str,
        roi: tuple[float, float, float, float] | None = None,
    ) -> InspectionResult:
        """Inspect one frame of ``sku``.

        Args:
            image: the frame (uint8 grey or RGB); resized to the SKU's frame size when it differs.
            sku: SKU id.
            roi: ``(x1, y1, x2, y2)`` in frame pixels: only this region is scored and boxed.

        Raises:
            InspectionError: unknown SKU or nothing to compare with.
            ImageError: the frame is unusable (type, shape, aspect ratio).

        """
        t0 = time.perf_counter()
        bank = self.banks.get(sku)
        if bank is None:
            known = ", ".join(sorted(self.banks)) or "none"
            raise InspectionError(f"unknown SKU '{sku}' (enrolled: {known})")
        calib = bank.calibration
        assert calib is not None
        prep = self.prepare(image, "frame", bank)
        t1 = time.perf_counter()
        feats, descs = self.encode([prep])
        t2 = time.perf_counter()
        sku_cfg = SkuSettings(**bank.settings) if bank.settings else SkuSettings()
        wanted = frozenset(calib.maps) | ({"part"} if calib.whole_part != "off" else frozenset())
        raw = self.analyze(prep, feats[0], descs[0], bank, sku_cfg.top_k, maps=wanted)
        t3 = time.perf_counter()
        fused = self._fused(raw, calib)
        valid = raw.valid
        # The map covers the whole frame; when the frame was resized to the SKU's size (another aspect),
        # bring the map back to the frame's own proportions so boxes land where the defect is.
        frame_h, frame_w = (image.shape[0], image.shape[1])
        scale = prep.gray_fine.shape[1] / frame_w
        map_h = max(1, round(frame_h * scale))
        if map_h != fused.shape[0]:
            size = (fused.shape[1], map_h)
            fused = np.asarray(cv2.resize(fused, size, interpolation=cv2.INTER_LINEAR), np.float32)
            valid = cv2.resize(valid.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        if roi is not None:
            inside = np.zeros_like(valid)
            x1, y1 = math.ceil(roi[0] * scale), math.ceil(roi[1] * scale)
            inside[y1 : int(roi[3] * scale), x1 : int(roi[2] * scale)] = True
            valid = valid & inside
        values = fused[valid] if valid.any() else np.zeros(1, np.float32)
        map_score = selfconfig.aggregate(values, calib.aggregation)
        score = selfconfig.combine(map_score, self._part_score(raw, calib), calib.whole_part)
        threshold = calib.threshold
        ng = score > threshold
        seed = calib.map_threshold or threshold
        padding = sku_cfg.box_padding * max(frame_h, frame_w)
        boxes = defect_boxes(fused, valid, ng, seed, sku_cfg.min_defect_area_px, scale, padding)
        verdict = Verdict.NG if ng else Verdict.OK
        t4 = time.perf_counter()
        latency = {
            "prepare": (t1 - t0) * 1e3,
            "encode": (t2 - t1) * 1e3,
            **raw.latency_ms,
            "postprocess": (t4 - t3) * 1e3,
            "total": (t4 - t0) * 1e3,
        }
        return InspectionResult(
            verdict=verdict,
            score=score,
            threshold=threshold,
            boxes=boxes,
            sku=sku,
            template_ids=[bank.template_ids[i] for i in raw.template_idx],
            retrieval_scores=raw.retrieval_scores,
            registrations=raw.registrations,
            anomaly_map=fused,
            map_scale=1.0 / scale,
            latency_ms={k: round(v, 3) for k, v in latency.items()},
        )
