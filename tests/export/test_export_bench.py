from __future__ import annotations

from pathlib import Path

from engines.artifact_set import SPEC

from export.bench import bench_precisions


def test_bench_reports_both_precisions_at_batch_one(artifacts: Path) -> None:
    # Shape of the report only: no assertion on speed in unit tests (`make bench` measures 200+ runs).
    rows = bench_precisions(artifacts, SPEC, runs=5, warmup=1, threads=1)
    assert [r["precision"] for r in rows] == ["fp32", "int8"]
    for row in rows:
        assert row["backend"] == "onnxruntime-cpu" and row["batch"] == 1 and row["runs"] == 5
        assert 0 < float(row["p50_ms"]) <= float(row["p99_ms"])  # type: ignore[arg-type]
    assert rows[0]["speedup_p50"] == 1.0
