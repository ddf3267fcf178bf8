"""The end-to-end benchmark runs the real station and accounts for every part (no speed asserted here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.bench.station import bench_end_to_end


@pytest.mark.slow
def test_end_to_end_bench_accounts_for_every_part(tmp_path: Path) -> None:
    (row,) = bench_end_to_end(rates=(5,), seconds=3.0, warmup_s=2.0, workdir=tmp_path)
    assert row["parts"] >= 5, row
    inspected = round(row["sustained_pps"] * 3.0)
    assert inspected + row["not_inspected"] + row["errors"] == row["parts"], row
    assert row["e2e_ms"]["p50"] is not None and row["mqtt_outbox_ms"]["p50"] is not None
