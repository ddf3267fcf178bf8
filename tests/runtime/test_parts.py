"""Part ids: unique and increasing across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.runtime.parts import PartIds


def test_ids_increase_across_restarts_without_reuse(tmp_path: Path) -> None:
    path = tmp_path / "counter.json"
    first = PartIds("st1", path, block=10)
    issued = [first.allocate() for _ in range(3)]
    assert issued == [(1, "st1-000000001"), (2, "st1-000000002"), (3, "st1-000000003")]
    second = PartIds("st1", path, block=10)  # a restart (or a crash) after three parts
    seq, part_id = second.allocate()
    assert seq > 3 and part_id == f"st1-{seq:09d}"
    for _ in range(25):  # crosses several reserved blocks
        last = second.allocate()[0]
    assert PartIds("st1", path, block=10).allocate()[0] > last


def test_plc_part_id_is_kept(tmp_path: Path) -> None:
    ids = PartIds("st1")
    assert ids.allocate("PLC-42") == (1, "PLC-42")
    assert ids.allocate() == (2, "st1-000000002")


def test_corrupt_counter_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "counter.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"counter\.json"):
        PartIds("st1", path)
