"""Summarise ``runs/eval/*/metrics.json`` as the README table: ``python -m edge.eval.table DIR``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COLUMNS = (
    ("image_auroc", "AUROC"),
    ("image_accuracy", "acc"),
    ("box_precision", "box P"),
    ("box_recall", "box R"),
    ("box_f1", "box F1"),
    ("bbox_mask_miou", "BBox-Mask mIoU"),
    ("retrieval_top1", "retrieval top-1"),
    ("false_ng_rate", "false NG"),
    # Diagnostics (edge.eval.localisation, the whole-part score alone): what limits the figures above.
    ("map_pointing", "map pointing"),
    ("oracle_bbox_mask_miou", "oracle mIoU"),
    ("whole_part_auroc", "whole-part AUROC"),
)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _micro(metrics: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Pooled over categories (DeepPCB groups): boxes from summed counts, the rest image-weighted."""
    if len(metrics) < 2:
        return None
    total = sum(m["n_images"] for m in metrics.values())
    out: dict[str, Any] = {"n_images": total}
    for key, _ in COLUMNS:
        vals = [(m[key], m["n_images"]) for m in metrics.values() if m.get(key) is not None]
        out[key] = sum(v * n for v, n in vals) / sum(n for _, n in vals) if vals else None
    if all("box_counts" in m for m in metrics.values()):
        tp, fp, fn = (sum(m["box_counts"][k] for m in metrics.values()) for k in ("tp", "fp", "fn"))
        p = tp / (tp + fp) if tp + fp else None
        r = tp / (tp + fn) if tp + fn else None
        out["box_precision"], out["box_recall"] = p, r
        out["box_f1"] = 2 * p * r / (p + r) if p and r else None
    return out


def table(root: Path) -> str:
    """Markdown table of every run under ``root``."""
    head = "| run | category | n | " + " | ".join(t for _, t in COLUMNS) + " | latency p50/p99 ms |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 4)]
    failed: list[str] = []
    for path in sorted(root.glob("*/metrics.json")):
        metrics: dict[str, dict[str, Any]] = json.loads(path.read_text())
        failed += [
            f"| {path.parent.name} | {n} | failed: {m['error']} |" for n, m in metrics.items() if "error" in m
        ]
        metrics = {n: m for n, m in metrics.items() if "error" not in m}
        rows = list(metrics.items())
        micro = _micro(metrics)
        if micro:
            rows.append(("all (pooled)", micro))
        for name, m in rows:
            lat = m.get("latency_ms")
            lat_s = f"{lat['p50']:.0f} / {lat['p99']:.0f}" if lat else "-"
            cells = " | ".join(_fmt(m.get(k)) for k, _ in COLUMNS)
            lines.append(f"| {path.parent.name} | {name} | {m['n_images']} | {cells} | {lat_s} |")
    lines += failed
    peer = root / "yardstick.json"
    if peer.is_file():
        lines += [
            "",
            "| yardstick (patch_knn_peer.py) | category | AUROC clean | AUROC line |",
            "|---|---|---|---|",
        ]
        for name, m in json.loads(peer.read_text()).items():
            lines.append(
                f"| yardstick | {name} | {_fmt(m.get('image_auroc'))} | {_fmt(m.get('image_auroc_line'))} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/eval")))
