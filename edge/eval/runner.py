"""``edge eval``: run the station's inspection on a dataset and score it.

Each category (MVTec) or board group (DeepPCB) is one SKU whose golden bank is its defect-free images; the
same :class:`~edge.inspection.inspector.Inspector` code as on the station inspects every test image.
With ``--perturb line`` each test image is shown as a line would show it (placement, lighting, noise, blur).
Its border then holds mirrored, made-up content, so scoring (boxes, image score) is restricted to the central
region that real content still covers (as in ``../shared/data/BASELINES.md``).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from edge.eval.datasets import Category, discover, iter_golden, read_image
from edge.eval.localisation import oracle_box_iou, points_at_defect
from edge.eval.metrics import auroc, percentiles
from edge.eval.outcome import CategoryOutcome, Example
from edge.eval.report import write_report
from edge.inspection.augment import LinePerturbation, transform_box
from edge.inspection.bank import SkuBank
from edge.inspection.box_scoring import BoxXYXY, bbox_mask_iou, match_boxes
from edge.inspection.inspector import Inspector
from edge.inspection.settings import SkuSettings
from edge.inspection.types import InspectionResult, Verdict
from edge.inspection.whole_part import pooled

log = logging.getLogger(__name__)
SEED = 1234
#: border excluded from scoring under --perturb line, in pixels of a 640-pixel image: 8 px shift plus the
#: corner travel of a 1.5 degree rotation (~12 px) and a little blur.
PERTURB_MARGIN_640 = 24


def _region(size: tuple[int, int], perturbed: bool) -> tuple[float, float, float, float]:
    h, w = size
    m = math.ceil(PERTURB_MARGIN_640 * max(h, w) / 640) if perturbed else 0
    return (m, m, w - m, h - m)


def _inside(box: BoxXYXY, region: tuple[float, float, float, float]) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return region[0] <= cx < region[2] and region[1] <= cy < region[3]


def _clip(box: BoxXYXY, size: tuple[int, int]) -> BoxXYXY:
    h, w = size
    return (max(0.0, box[0]), max(0.0, box[1]), min(float(w), box[2]), min(float(h), box[3]))


def _judge(
    result: InspectionResult, region: tuple[float, float, float, float]
) -> tuple[float, list[tuple[BoxXYXY, float]], bool]:
    pred = [((float(b.x), float(b.y), float(b.x + b.w), float(b.y + b.h)), b.score) for b in result.boxes]
    pred = [(bx, sc) for bx, sc in pred if _inside(bx, region)]
    return result.score, pred, result.verdict == Verdict.NG


def evaluate_category(
    inspector: Inspector, category: Category, k: int | None, perturb: bool, max_examples: int = 8
) -> tuple[dict[str, Any], CategoryOutcome]:
    """Enroll the category's golden bank, inspect every test sample, return metrics and outcomes."""
    golden = list(iter_golden(category, k))
    log.info("%s: enrolling %d golden images", category.name, len(golden))
    # DeepPCB: every test crop has its own template, the bank is a set of views of one board design.
    kind = "views" if category.layout == "deeppcb" else "auto"
    sku = SkuSettings(bank_kind=kind)
    bank = inspector.enroll(category.name, golden, sku)
    assert bank.calibration is not None
    golden_by_id = dict(golden)
    out = CategoryOutcome(threshold=bank.calibration.threshold)
    line = LinePerturbation()
    rng = np.random.default_rng(SEED)
    for sample in tqdm(category.samples, desc=category.name, unit="img", leave=False):
        image = read_image(sample.path)
        gt = list(sample.boxes)
        if perturb:
            image, matrix = line.apply(image, rng)
            gt = [_clip(transform_box(b, matrix), image.shape[:2]) for b in gt]  # type: ignore[arg-type]
        size = (image.shape[0], image.shape[1])
        region = _region(size, perturb)
        gt = [b for b in gt if _inside(b, region)]
        # Under --perturb line the border holds made-up content: the station inspects the central region.
        result = inspector.inspect(image, category.name, roi=region if perturb else None)
        score, pred, ng = _judge(result, region)
        out.scores.append(score)
        out.labels.append(sample.defective)
        out.correct.append(ng == sample.defective)
        out.latencies.append(result.latency_ms["total"])
        if bank.whole_part is not None:
            out.part_scores.append(whole_part_score(inspector, bank, image))
        out.boxes.add(match_boxes(pred, gt))
        if sample.defective and gt:
            out.mask_ious.append(bbox_mask_iou([b for b, _ in pred], gt, size))
            out.pointing.append(points_at_defect(result, gt, region))
            out.oracle_ious.append(
                oracle_box_iou(
                    result,
                    gt,
                    region,
                    size,
                    out.mask_ious[-1],
                    sku.min_defect_area_px,
                    sku.box_padding * max(size),
                )
            )
        if not sample.defective:
            out.false_ng.append(ng)
        if sample.template_id is not None:
            out.retrieval_hits.append(result.template_id == sample.template_id)
        if len(out.examples) < max_examples and (sample.defective or len(out.examples) % 4 == 3):
            out.examples.append(
                Example(
                    sample.path.stem,
                    image,
                    golden_by_id.get(result.template_id, image),
                    result,
                    gt,
                    sample.defective,
                )
            )
    if category.layout == "deeppcb":
        # False alarms: every golden template, shown as the line would show it, against its own bank.
        for tid, image in tqdm(golden, desc=f"{category.name} templates", unit="img", leave=False):
            shown, _ = line.apply(image, rng) if perturb else (image, None)
            region = _region((shown.shape[0], shown.shape[1]), perturb)
            result = inspector.inspect(shown, category.name, roi=region if perturb else None)
            _, _, ng = _judge(result, region)
            out.false_ng.append(ng)
            out.retrieval_hits.append(result.template_id == tid)
    del inspector.banks[category.name]
    summary = summarize(out, len(category.samples))
    summary["self_config"] = bank.calibration.capability
    summary["input_size"] = list(bank.input_size)
    return summary, out


def whole_part_score(inspector: Inspector, bank: SkuBank, image: np.ndarray) -> float:
    """The whole-part score of ``image`` alone (a diagnostic: the SKU may not have chosen it)."""
    model = bank.whole_part
    assert model is not None
    features, _ = inspector.encode([inspector.prepare(image, "frame", bank)])
    return float(model.distance(pooled(features))[0])


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def summarize(out: CategoryOutcome, n_images: int) -> dict[str, Any]:
    """The metrics.json entry of one category."""
    ious = np.asarray(out.mask_ious, float)
    return {
        "image_auroc": _r(auroc(out.scores, out.labels)),
        "image_accuracy": _r(float(np.mean(out.correct))) if out.correct else None,
        "box_precision": _r(out.boxes.precision),
        "box_recall": _r(out.boxes.recall),
        "box_f1": _r(out.boxes.f1),
        "bbox_mask_miou": _r(float(ious.mean())) if ious.size else None,
        "bbox_mask_acc": {
            t: (_r(float((ious >= float(t)).mean())) if ious.size else None) for t in ("0.1", "0.3", "0.5")
        },
        # Diagnostics of the map itself (edge.eval.localisation): what limits the boxes.
        "map_pointing": _r(float(np.mean(out.pointing))) if out.pointing else None,
        "oracle_bbox_mask_miou": _r(float(np.mean(out.oracle_ious))) if out.oracle_ious else None,
        # The whole-part score on its own, whether or not the SKU chose it.
        "whole_part_auroc": _r(auroc(out.part_scores, out.labels)) if out.part_scores else None,
        "retrieval_top1": _r(float(np.mean(out.retrieval_hits))) if out.retrieval_hits else None,
        "false_ng_rate": _r(float(np.mean(out.false_ng))) if out.false_ng else None,
        "latency_ms": percentiles(out.latencies),
        "n_images": n_images,
        "threshold": _r(out.threshold),
        "box_counts": {"tp": out.boxes.tp, "fp": out.boxes.fp, "fn": out.boxes.fn},
    }


def run_eval(
    inspector: Inspector,
    dataset: Path,
    out_dir: Path,
    k: int | None,
    perturb: bool,
    categories: list[str] | None = None,
) -> dict[str, Any]:
    """Evaluate every category under ``dataset``; write ``metrics.json`` and ``report.png`` to ``out_dir``."""
    found = discover(dataset)
    if categories:
        found = [c for c in found if c.name in categories]
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, Any] = {}
    outcomes: dict[str, CategoryOutcome] = {}
    for category in found:
        try:
            metrics[category.name], outcomes[category.name] = evaluate_category(
                inspector, category, k, perturb
            )
        except Exception as exc:  # one bad category must not stop the others: reported, run goes on
            log.exception("%s: evaluation failed", category.name)
            inspector.banks.pop(category.name, None)
            metrics[category.name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        log.info("%s: %s", category.name, json.dumps(metrics[category.name]))
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    write_report(outcomes, out_dir / "report.png")
    return metrics
