"""Per-SKU self-configuration: normalisation, threshold and choice of comparisons, from golden images only.

Each sampled golden part is compared with its peers (leave-one-out) or, without a peer, with itself under the
line's nuisance; synthetic defects drawn onto them (:mod:`edge.inspection.defects`) show what each choice of
maps, fusion and aggregation can see (:mod:`edge.inspection.selfconfig` chooses). Runs at enrollment (the
flash), never per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.inspection import selfconfig
from edge.inspection.augment import LinePerturbation
from edge.inspection.bank import Calibration, SkuBank
from edge.inspection.box_scoring import BoxSample, mask_boxes, score_boxes
from edge.inspection.compare import RawMaps
from edge.inspection.defects import defect_set
from edge.inspection.scoring import fused, fusions, sample_scores
from edge.inspection.settings import InspectionError, SkuSettings, line_nuisance
from edge.inspection.types import Progress
from edge.inspection.whole_part import MIN_PARTS, WholePartModel, leave_one_out, pooled
from edge.model.preprocess import PreparedImage

if TYPE_CHECKING:
    from edge.inspection.inspector import Inspector

FloatMap = npt.NDArray[np.float32]


def calibrate(
    inspector: Inspector,
    bank: SkuBank,
    images: Sequence[npt.NDArray[Any]],
    seed: int = 20261122,
    progress: Progress | None = None,
) -> Calibration:
    """Learn the SKU's normalisation and threshold from its golden images only.

    Each sampled golden part is shown as the line would show it (placement, lighting, noise, blur) and
    compared with the *other* golden parts (leave-one-out: real part-to-part variation). A golden part
    with no peer in the bank (each view unique, e.g. different crops of a board) is compared with its own
    template instead, which still measures the line's nuisance.

    ``progress`` is told ``(step, done, total)`` for each of its steps: the golden parts compared with
    their peers, the golden parts as the line shows them, the synthetic defects.
    """
    tell = progress or (lambda step, done, total: None)
    cfg = inspector.settings
    sku_cfg = SkuSettings(**bank.settings) if bank.settings else SkuSettings()
    n = len(bank)
    picks = np.unique(np.linspace(0, n - 1, min(n, cfg.calib_samples)).round().astype(int))
    rng = np.random.default_rng(seed)
    nuisance = line_nuisance(bank.sku, sku_cfg)
    # A part compared with its own template needs the nuisance to show anything (see below).
    perturb = nuisance or LinePerturbation()
    if sku_cfg.bank_kind not in ("auto", "instances", "views"):
        raise InspectionError(
            f"SKU '{bank.sku}': bank_kind '{sku_cfg.bank_kind}' is not auto/instances/views"
        )
    if sku_cfg.pixel_compare not in ("auto", "on", "off"):
        raise InspectionError(f"SKU '{bank.sku}': pixel_compare '{sku_cfg.pixel_compare}' is not auto/on/off")

    def encoded(image: npt.NDArray[Any]) -> tuple[PreparedImage, FloatMap, FloatMap]:
        prep = inspector.prepare(image, "calibration image", bank)
        feats, descs = inspector.encode([prep])
        return prep, feats[0], descs[0]

    # Leave-one-out first, on the golden images as captured: they already carry the line's real
    # nuisance. The bank holds registered instances of one view only if most golden parts find a peer
    # that registers onto them; then both maps are calibrated on real part-to-part variation. A bank of
    # views (distinct crops of a board, `views`) compares every part with its own template under
    # synthetic line nuisance instead, as does a single golden part.
    loo: list[RawMaps | None] = [None] * len(picks)
    peer = [False] * len(picks)
    if sku_cfg.bank_kind != "views" and n > 1:
        step = "golden parts against their peers"
        tell(step, 0, len(picks))
        for k, i in enumerate(picks):
            raw = inspector.analyze(*encoded(np.asarray(images[i])), bank, sku_cfg.top_k, frozenset({int(i)}))
            loo[k] = raw
            peer[k] = max(r.quality for r in raw.registrations) >= cfg.peer_min_quality
            tell(step, k + 1, len(picks))
    instances = sku_cfg.bank_kind == "instances" or (
        sku_cfg.bank_kind == "auto" and sum(peer) >= 0.5 * len(peer)
    )
    raws: list[RawMaps] = []
    methods: list[str] = []
    # Every pick is shown as the line shows it once: against itself (no usable peer) or, with a line
    # nuisance, against its peers (below).
    keeps_peer = [loo[k] is not None and (peer[k] or not instances) for k in range(len(picks))]
    step, shown_done = "golden parts as the line shows them", 0
    shown_total = sum(not p for p in keeps_peer) + (sum(keeps_peer) if nuisance is not None else 0)
    tell(step, 0, shown_total)
    for k, i in enumerate(picks):
        loo_raw = loo[k]
        if loo_raw is not None and keeps_peer[k]:
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
        raw = inspector.analyze(prep, feats, desc, bank, sku_cfg.top_k, exclude_shown=frozenset({int(i)}))
        # The perturbation's border is made-up (mirrored) content: nothing there is a real part.
        raw.valid &= _content_mask(image.shape[:2], matrix, prep.gray_fine.shape, cfg.border_px)
        raws.append(raw)
        methods.append("self")
        shown_done += 1
        tell(step, shown_done, shown_total)
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
            raw = inspector.analyze(prep, feats, desc, bank, sku_cfg.top_k, frozenset({int(i)}))
            raw.valid &= _content_mask(image.shape[:2], matrix, prep.gray_fine.shape, cfg.border_px)
            raws.append(raw)
            shown_golden.append((k, feats))
            shown_done += 1
            tell(step, shown_done, shown_total)
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
        fitted = bank.part_pooled or (all_pooled, np.arange(n, dtype=np.int32))
        peers = [int(i) for k, i in enumerate(picks) if methods[k] != "self"]
        loo_models = leave_one_out(*fitted, peers)
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
    choices = fusions(cfg.fusion)
    available = ["template"]
    if bank.memory is not None:
        available.append("memory")
    if use_pixel:
        available.append("pixel")
    golden_samples = [sample_scores(r, calib, available, "golden", False, choices) for r in raws]

    # Synthetic defects drawn onto the sampled golden parts, compared exactly as their golden part was
    # (leave-one-out against its peers, or itself under line nuisance): what could the station see?
    # With a line nuisance, every other defect is shown as the line would show it.
    synth: list[selfconfig.SampleScores] = []
    synth_maps: list[tuple[RawMaps, npt.NDArray[np.bool_]]] = []  # with the defect mask as shown
    sources = [np.asarray(images[int(i)], np.uint8) for i in picks]
    defects = defect_set(sources, cfg.synthetic_per_kind, seed + 1)
    tell("synthetic defects", 0, len(defects))
    for n_defect, (j, defect) in enumerate(defects):
        i = int(picks[j])
        own = methods[j] == "self"
        shown = defect.image
        placed: npt.NDArray[np.float64] | None = None
        if own or (nuisance is not None and n_defect % 2 == 1):
            shown, placed = perturb.apply(defect.image, rng)
        prep, feats, desc = encoded(shown)
        if own:
            raw = inspector.analyze(prep, feats, desc, bank, sku_cfg.top_k, exclude_shown=frozenset({i}))
        else:
            raw = inspector.analyze(prep, feats, desc, bank, sku_cfg.top_k, frozenset({i}))
        mask = defect.mask
        if placed is not None:
            raw.valid &= _content_mask(shown.shape[:2], placed, prep.gray_fine.shape, cfg.border_px)
            h, w = mask.shape
            mask = cv2.warpAffine(mask.astype(np.uint8) * 255, placed, (w, h), flags=cv2.INTER_NEAREST) > 0
        synth_maps.append((raw, mask))
        if not own and i in loo_models:
            raw.part = float(loo_models[i].distance(pooled(feats[None]))[0])
        synth.append(sample_scores(raw, calib, available, defect.kind, True, choices))
        tell("synthetic defects", n_defect + 1, len(defects))
    samples = golden_samples + synth
    # pixel_compare: on is the engineer's word: only choices with the pixel map.
    best, ranked = selfconfig.choose(
        samples,
        available,
        bool(part_values) and len(bank) >= MIN_PARTS,
        sku_cfg.threshold_margin,
        required=("pixel",) if sku_cfg.pixel_compare == "on" else (),
        fusions=choices,
        scale_quantile=q,
    )
    choice = best.choice
    calib.maps = list(choice.maps)
    calib.aggregation = choice.aggregation
    calib.aggregation_scales = list(choice.scales)
    calib.whole_part = choice.whole_part
    calib.fusion = choice.fusion
    calib.pixel_compare = "pixel" in choice.maps
    scores = [selfconfig.combined(s, choice) for s in golden_samples]
    calib.golden_scores = [round(s, 4) for s in scores]
    shown_of = [int(i) for i in picks] + [int(picks[k]) for k, _ in shown_golden]
    # The golden parts as captured and as the line shows them score on different scales: each is its own
    # population, and a part far above its population in either view is an outlier in both.
    views = np.asarray([0] * len(picks) + [1] * len(shown_golden))
    inliers = _inlier_mask(np.asarray(scores), views, np.asarray(shown_of))
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
    box_quality = _box_quality(bank, calib, raws, golden_samples, synth_maps, synth, choice)
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
        "runners_up": [{"choice": e.choice.label, "objective": round(e.objective, 4)} for e in ranked[:5]],
    }
    return calib


def _box_quality(
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
        samples.append(BoxSample(fused(raw, calib), raw.valid, ng, [], False))
    for (raw, mask), sample in zip(synthetic, synthetic_samples, strict=True):
        ng = selfconfig.combined(sample, choice) > calib.threshold
        at_size = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        samples.append(BoxSample(fused(raw, calib), raw.valid, ng, mask_boxes(at_size), True))
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


def _inlier_mask(
    scores: npt.NDArray[np.float64],
    views: npt.NDArray[np.int_] | None = None,
    images: npt.NDArray[np.int_] | None = None,
    k: float = 5.0,
) -> npt.NDArray[np.bool_]:
    """Golden scores that agree with the rest: at most median + k MAD, MAD floored at a quarter of the median.

    A golden image far above the others (a defect that slipped into the golden set, or a part with no
    real peer) must not raise the threshold; it is reported instead, and the flash self-test refuses it.

    Args:
        scores: One score per calibration sample.
        views: The population of each sample (as captured, as the line shows it): each is judged against
            its own median, since the line's nuisance lifts every score of its population (pooled, the two
            spread the MAD so wide that a defect among four good parts passes: measured).
        images: The golden image of each sample: an image that is an outlier in one view is one in all.
        k: How many MADs above the median a score may lie.

    """
    views = np.zeros(len(scores), int) if views is None else views
    result = np.ones(len(scores), bool)
    for view in np.unique(views):
        sel = views == view
        med = float(np.median(scores[sel]))
        mad = 1.4826 * float(np.median(np.abs(scores[sel] - med)))
        result[sel] = scores[sel] <= med + k * max(mad, 0.25 * med)
    if images is not None:
        result &= ~np.isin(images, images[~result])
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
