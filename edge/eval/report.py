"""``report.png``: score histograms, PR curves, and overlays (frame | template | heatmap | boxes)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from edge.eval.metrics import pr_curve
from edge.eval.outcome import CategoryOutcome, Example


def heat_overlay(image: np.ndarray, amap: np.ndarray, threshold: float) -> np.ndarray:
    """Blend a jet heatmap of the normalised map (red = at threshold and above) over the image."""
    resized = cv2.resize(amap, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    level = np.clip(resized / max(threshold, 1e-6), 0, 1)
    heat = cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
    return np.asarray(0.55 * image + 0.45 * heat, dtype=np.uint8)


def draw_boxes(
    image: np.ndarray, pred: Sequence[tuple[int, int, int, int]], gt: Sequence[tuple[float, ...]]
) -> np.ndarray:
    """Ground truth in green, predictions in red."""
    out: np.ndarray = image.copy()
    thick = max(1, image.shape[0] // 256)
    for x1, y1, x2, y2 in gt:
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), (0, 200, 0), thick)
    for x, y, w, h in pred:
        cv2.rectangle(out, (x, y), (x + w, y + h), (255, 0, 0), thick)
    return out


def _example_row(axes: np.ndarray, ex: Example) -> None:
    r = ex.result
    panels = [
        (ex.image, f"{ex.name} ({'defect' if ex.defective else 'good'})"),
        (ex.template, f"template {r.template_id}"),
        (heat_overlay(ex.image, r.anomaly_map, r.threshold), f"score {r.score:.2f} / thr {r.threshold:.2f}"),
        (
            draw_boxes(ex.image, [(b.x, b.y, b.w, b.h) for b in r.boxes], ex.gt),
            f"{r.verdict.value}: {len(r.boxes)} boxes (red) / {len(ex.gt)} gt (green)",
        ),
    ]
    for ax, (img, title) in zip(axes, panels, strict=True):
        ax.imshow(img)
        ax.set_title(title, fontsize=7)
        ax.axis("off")


def write_report(outcomes: dict[str, CategoryOutcome], path: Path) -> None:
    """Render the report of every category into one PNG."""
    n_examples = sum(min(len(o.examples), 4) for o in outcomes.values())
    rows = len(outcomes) + n_examples
    fig, axes = plt.subplots(rows, 4, figsize=(14, 3.2 * rows), squeeze=False)
    row = 0
    for name, out in outcomes.items():
        scores = np.asarray(out.scores)
        labels = np.asarray(out.labels, bool)
        ax = axes[row, 0]
        bins = np.linspace(0, max(float(scores.max(initial=1.0)), out.threshold) * 1.05, 40)
        ax.hist(scores[~labels], bins=bins, alpha=0.6, label="good", color="tab:green")
        ax.hist(scores[labels], bins=bins, alpha=0.6, label="defective", color="tab:red")
        ax.axvline(out.threshold, color="k", ls="--", label="threshold")
        ax.set_title(f"{name}: image scores", fontsize=8)
        ax.legend(fontsize=6)
        precision, recall = pr_curve(out.scores, out.labels)
        axes[row, 1].plot(recall, precision)
        axes[row, 1].set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02))
        axes[row, 1].set_title(f"{name}: image-level PR", fontsize=8)
        lat = np.asarray(out.latencies)
        axes[row, 2].hist(lat, bins=30, color="tab:blue")
        axes[row, 2].set_title(f"{name}: latency ms (p50 {np.median(lat):.1f})", fontsize=8)
        axes[row, 3].axis("off")
        b = out.boxes
        axes[row, 3].text(0, 0.5, f"boxes: TP {b.tp}  FP {b.fp}  FN {b.fn}\nF1 {b.f1}", fontsize=9)
        row += 1
        for ex in out.examples[:4]:
            _example_row(axes[row], ex)
            row += 1
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
