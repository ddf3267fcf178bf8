"""The inspection: frame + golden bank of its SKU -> anomaly map, verdict, boxes.

Per frame: encode (vision encoder) -> retrieve the top-k golden templates -> register each to the frame ->
compare in feature space (comparison encoder over the registered template features) and at pixel level
(tolerant difference after registration) -> normalise both with the SKU's golden statistics -> fuse ->
score, verdict, boxes. Template features are computed once at enrollment and warped, never re-encoded.

One module per step: retrieval (:meth:`~edge.inspection.bank.SkuBank.retrieve`), registration
(:mod:`~edge.inspection.registration`), comparison (:mod:`~edge.inspection.compare`, with
:mod:`~edge.inspection.pixel` and the patch memory :mod:`~edge.inspection.memory`), score
(:mod:`~edge.inspection.scoring`), boxes (:mod:`~edge.inspection.postprocess`); the per-SKU
self-configuration at enrollment is :mod:`~edge.inspection.calibrate`. This module enrolls and inspects.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.engines.encoders import Encoders
from edge.inspection import selfconfig
from edge.inspection.bank import SkuBank, image_sha256, shown_label
from edge.inspection.calibrate import calibrate as calibrate_bank
from edge.inspection.compare import RawMaps, analyze
from edge.inspection.memory import PatchMemory
from edge.inspection.postprocess import defect_boxes
from edge.inspection.scoring import fused, part_score
from edge.inspection.settings import (
    ALL_MAPS,
    MEMORY_NUISANCE_SEED,
    InspectionError,
    InspectorSettings,
    SkuSettings,
    line_nuisance,
)
from edge.inspection.types import InspectionResult, Progress, Verdict
from edge.inspection.whole_part import MIN_PARTS, WholePartModel, pooled
from edge.model.limits import ENROLL_BATCH
from edge.model.preprocess import ImageError, PreparedImage, as_rgb, prepare
from edge.model.sizing import resize_to, sku_geometry

FloatMap = npt.NDArray[np.float32]


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
        self,
        prepared: Sequence[PreparedImage],
        batch: int = ENROLL_BATCH,
        progress: Progress | None = None,
        step: str = "encoding",
    ) -> tuple[FloatMap, FloatMap]:
        """Encode prepared images -> (features ``[N, C, h, w]``, descriptors ``[N, D]``).

        ``progress`` is told ``(step, images encoded, images)`` after each batch.
        """
        feats, descs = [], []
        for start in range(0, len(prepared), batch):
            chunk = np.stack([p.model_input for p in prepared[start : start + batch]])
            out = self.encoders.vision.infer({"image": chunk})
            feats.append(out["features"].astype(np.float32))
            descs.append(out["descriptor"].astype(np.float32))
            if progress:
                progress(step, min(start + batch, len(prepared)), len(prepared))
        return np.concatenate(feats), np.concatenate(descs)

    # --------------------------------------------------------------- enrollment
    def enroll(
        self,
        sku: str,
        images: Sequence[tuple[str, npt.NDArray[Any]]],
        sku_settings: SkuSettings | None = None,
        calibrate: bool = True,
        progress: Progress | None = None,
    ) -> SkuBank:
        """Build (and by default calibrate) the golden bank of ``sku`` and make it active.

        Args:
            sku: SKU id.
            images: (template id, image) pairs of defect-free parts; sizes may differ (``sizing``).
            sku_settings: per-SKU knobs stored with the bank.
            calibrate: learn normalisation and threshold from the golden images.
            progress: told ``(step, done, total)`` as enrollment goes: the golden images encoded, their
                line-shown copies, the patch memory, then the self-configuration's steps (``calibrate``).

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
        prepared = [
            prepare(resize_to(rgb, size), geometry.input_size, self.settings.views, f"golden '{tid}'")
            for (tid, _), rgb in zip(images, rgbs, strict=True)
        ]
        feats, descs = self.encode(prepared, progress=progress, step="encoding golden images")
        fh, fw = feats.shape[-2:]
        candidates = self._memory_candidates(sku, cfg, rgbs, size, geometry.input_size, feats, progress)
        if progress:
            progress("patch memory (coreset)", 0, 1)
        memory = PatchMemory.build(candidates, self.settings.memory_chunks * fh * fw)
        if progress:
            progress("patch memory (coreset)", 1, 1)
        part_mean, part_precision = np.zeros(0), np.zeros((0, 0))
        # The whole-part Gaussian is fitted on the golden parts as captured *and* as the line shows them
        # (the memory's candidates): pooled features move under lighting, noise and focus, and a
        # distribution of clean parts alone reads that as a whole-part change on every frame.
        part_pooled = (pooled(candidates[0]), candidates[1])
        if len(images) >= MIN_PARTS:
            model = WholePartModel.fit(part_pooled[0])
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
        bank.part_pooled = part_pooled
        if calibrate:
            bank.calibration = calibrate_bank(self, bank, rgbs, progress=progress)
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
        progress: Progress | None = None,
    ) -> tuple[FloatMap, npt.NDArray[np.int32]]:
        """Feature maps the patch memory selects from, and the golden image each came from.

        With a line nuisance, every golden part is also encoded as the line would show it, photometrically
        (lighting, noise, focus; placement does not matter to a position-free memory): plain features move
        under sensor noise and blur, and a memory of clean patches alone reads that as a defect everywhere.
        """
        source = np.arange(len(rgbs), dtype=np.int32)
        nuisance = line_nuisance(sku, cfg)
        if nuisance is None:
            return feats, source
        still = replace(nuisance, max_shift_px=0.0, max_angle_deg=0.0)
        rng = np.random.default_rng(MEMORY_NUISANCE_SEED)
        shown = [
            prepare(resize_to(still.apply(rgb, rng)[0], size), input_size, self.settings.views, "golden")
            for rgb in rgbs
        ]
        extra, _ = self.encode(shown, progress=progress, step="encoding line-shown copies")
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
        """Compare one encoded frame with its golden bank (:func:`edge.inspection.compare.analyze`)."""
        return analyze(
            self.encoders,
            self.settings,
            prepared,
            features,
            descriptor,
            bank,
            top_k,
            exclude,
            maps,
            exclude_shown,
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
        fused_map = fused(raw, calib)
        valid = raw.valid
        # The map covers the whole frame; when the frame was resized to the SKU's size (another aspect),
        # bring the map back to the frame's own proportions so boxes land where the defect is.
        frame_h, frame_w = (image.shape[0], image.shape[1])
        scale = prep.gray_fine.shape[1] / frame_w
        map_h = max(1, round(frame_h * scale))
        if map_h != fused_map.shape[0]:
            size = (fused_map.shape[1], map_h)
            fused_map = np.asarray(cv2.resize(fused_map, size, interpolation=cv2.INTER_LINEAR), np.float32)
            valid = cv2.resize(valid.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        if roi is not None:
            inside = np.zeros_like(valid)
            x1, y1 = math.ceil(roi[0] * scale), math.ceil(roi[1] * scale)
            inside[y1 : int(roi[3] * scale), x1 : int(roi[2] * scale)] = True
            valid = valid & inside
        values = fused_map[valid] if valid.any() else np.zeros(1, np.float32)
        map_score = selfconfig.aggregate(values, calib.aggregation, calib.aggregation_scales)
        score = selfconfig.combine(map_score, part_score(raw, calib), calib.whole_part)
        threshold = calib.threshold
        ng = score > threshold
        seed = calib.map_threshold or threshold
        padding = sku_cfg.box_padding * max(frame_h, frame_w)
        boxes = defect_boxes(fused_map, valid, ng, seed, sku_cfg.min_defect_area_px, scale, padding)
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
            anomaly_map=fused_map,
            map_scale=1.0 / scale,
            latency_ms={k: round(v, 3) for k, v in latency.items()},
        )
