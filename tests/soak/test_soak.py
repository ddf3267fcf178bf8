"""``edge soak``: the accounting on its own, and the short soak end to end (real Mosquitto, real station)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures.mosquitto import mosquitto_binary

from edge.config.mqtt import MqttSection
from edge.soak.accounting import SCENARIO_NAMES, SHORT, SHORT_SCENARIO_NAMES, Run, account, format_table
from edge.soak.cli import run_soak
from edge.soak.harness import bomb_png


def verdict(seq: int, kind: str = "OK") -> dict[str, object]:
    return {"part_id": f"st-{seq:09d}", "seq": seq, "verdict": kind}


def test_account_counts_duplicates_gaps_order_and_frames_without_a_part() -> None:
    got = [verdict(1), verdict(2), verdict(2), verdict(4), verdict(3, "ERROR"), verdict(1001), verdict(1002)]
    counts = account(got, [Run(1, None), Run(1001, 3)])
    assert counts == {
        "produced": 4 + 2,
        "received": 6,
        "duplicates": 1,
        "lost": 0,
        "no_verdict": 1,  # the second run served 3 frames, 2 verdicts
        "out_of_order": 1,
        "errors": 1,
    }
    assert account([verdict(1), verdict(3)], [Run(1, 3)])["lost"] == 1


def test_bomb_png_is_tiny_and_claims_50000_squared() -> None:
    data = bomb_png()
    assert len(data) < 80
    assert int.from_bytes(data[16:20], "big") == 50000 == int.from_bytes(data[20:24], "big")
    with pytest.raises(cv2.error):
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.slow
def test_short_soak_loses_nothing(tmp_path: Path) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed: run `bash scripts/install-system-deps.sh`")
    results = run_soak(tmp_path / "soak", short=True)
    table = format_table(results)
    assert [r.name for r in results] == list(SHORT_SCENARIO_NAMES)
    for r in results:
        assert r.lost == 0 and r.no_verdict == 0 and r.kept == 0, table
        assert r.held, table
        assert r.received == r.produced > 0, table
        assert r.duplicates <= _duplicates_allowed(r.name, r.produced), table


#: Seconds a broker kill keeps the station disconnected (1 s down, then the reconnect back-off).
OUTAGE_S = 3.0


def _duplicates_allowed(scenario: str, produced: int) -> float:
    """Copies a scenario may deliver twice, by the station's documented re-send rule (docs/mqtt.md).

    After a lost connection the station re-sends what the broker acknowledged from ``resend_window`` seconds
    before the loss until ``resend_delay`` seconds after the reconnect: at most that many seconds of parts
    per loss (two losses in ``broker-kill``). Under an ACL denial the broker closes the connection after
    each denied publish; the re-send then covers everything since the first drop, each part once at most.
    A scenario that breaks no connection delivers only QoS 1's in-flight copies: a handful.
    """
    mqtt = MqttSection()
    per_loss = SHORT.fps * (mqtt.resend_window + mqtt.resend_delay + OUTAGE_S)
    if scenario.startswith("broker-kill"):
        return 2 * per_loss
    if scenario == "acl-denial":
        return produced
    return 20


def test_every_named_scenario_is_implemented_in_order() -> None:
    # `edge soak --scenario` lists the names without importing the scenarios (torch, via the export).
    from edge.soak.scenarios import SCENARIOS

    assert tuple(SCENARIOS) == SCENARIO_NAMES
