"""What a soak scenario produced, counted from what its subscriber received, and the results table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: The scenarios, in run order (:data:`edge.soak.scenarios.SCENARIOS` implements them); named here so that
#: ``edge soak --scenario`` can list them without loading the scenarios (they import torch, via the export).
SCENARIO_NAMES: tuple[str, ...] = (
    "broker-kill",
    "broker-kill-persistent",
    "station-kill",
    "malformed-commands",
    "bad-frames",
    "acl-denial",
    "tls-wrong-ca",
    "huge-frame",
)
#: What ``edge soak --short`` runs: all but the 12000x12000 frame.
SHORT_SCENARIO_NAMES: tuple[str, ...] = tuple(n for n in SCENARIO_NAMES if n != "huge-frame")


@dataclass(frozen=True)
class SoakSettings:
    """How long and how hard a soak runs.

    Args:
        frames: Images in each scenario's replay folder (one pass, no loop).
        fps: Replay rate; below what the station sustains on 2 cores (~15 parts/s), so no NOT_INSPECTED.
        commands: Malformed commands sent in ``malformed-commands``.
        deny_s: How long ``acl-denial`` denies the verdict topic.
        start_timeout_s: Longest wait for a station to come online.

    """

    frames: int = 60
    fps: float = 6.0
    commands: int = 200
    deny_s: float = 4.0
    start_timeout_s: float = 180.0


SHORT = SoakSettings()
FULL = SoakSettings(frames=300, fps=8.0, commands=2000, deny_s=10.0)


@dataclass
class ScenarioResult:
    """What one scenario produced and what held."""

    name: str
    produced: int = 0
    received: int = 0
    duplicates: int = 0
    lost: int = 0
    no_verdict: int = 0
    out_of_order: int = 0
    faults: int = 0
    errors: int = 0
    kept: int = 0
    checks: list[str] = field(default_factory=list)  # failed scenario-specific checks
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def held(self) -> bool:
        """Nothing lost, every part has its verdict, nothing left behind, every own check passed."""
        return self.lost == 0 and self.no_verdict == 0 and self.kept == 0 and not self.checks


@dataclass(frozen=True)
class Run:
    """One station process of a scenario.

    ``first_seq`` is the first sequence number it allocates; ``frames`` how many frames it served when it
    ended its replay by itself (``None`` when it was killed).
    """

    first_seq: int
    frames: int | None


def account(
    verdicts: Sequence[dict[str, Any]], runs: Sequence[Run], pending_seqs: Sequence[int] = ()
) -> dict[str, int]:
    """Count a scenario from the verdicts a subscriber received, in arrival order (duplicates included).

    Args:
        verdicts: ``verdict`` payloads as received.
        runs: The station processes of the scenario, in start order.
        pending_seqs: Sequence numbers of verdicts still in the station's outbox.

    Returns:
        ``produced``, ``received``, ``duplicates``, ``lost``, ``no_verdict``, ``out_of_order``, ``errors``.

    """
    first: dict[str, dict[str, Any]] = {}
    out_of_order = 0
    highest = 0
    for body in verdicts:
        if body["part_id"] in first:
            continue
        first[body["part_id"]] = body
        if body["seq"] < highest:
            out_of_order += 1
        highest = max(highest, body["seq"])
    seqs = {int(b["seq"]) for b in first.values()}
    produced = lost = no_verdict = 0
    for i, run in enumerate(runs):
        end = runs[i + 1].first_seq if i + 1 < len(runs) else None
        mine = {s for s in seqs if s >= run.first_seq and (end is None or s < end)}
        seen = mine | {s for s in pending_seqs if s >= run.first_seq and (end is None or s < end)}
        made = max(seen) - run.first_seq + 1 if seen else 0
        produced += made
        lost += made - len(mine)
        no_verdict += max(run.frames - len(mine), 0) if run.frames is not None else made - len(mine)
    return {
        "produced": produced,
        "received": len(first),
        "duplicates": len(verdicts) - len(first),
        "lost": lost,
        "no_verdict": no_verdict,
        "out_of_order": out_of_order,
        "errors": sum(b["verdict"] == "ERROR" for b in first.values()),
    }


def format_table(results: Sequence[ScenarioResult]) -> str:
    """Markdown table of the results, one row per scenario, then the notes."""
    lines = [
        "| scenario | parts produced | verdicts received | duplicates | lost | no verdict | out of order "
        "| faults raised | ERROR verdicts | kept in outbox | s | held |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        held = "yes" if r.held else "**no**: " + "; ".join(r.checks)
        lines.append(
            f"| {r.name} | {r.produced} | {r.received} | {r.duplicates} | {r.lost} | {r.no_verdict} | "
            f"{r.out_of_order} | {r.faults} | {r.errors} | {r.kept} | {r.seconds:.0f} | {held} |"
        )
    notes = [f"- {r.name}: {note}" for r in results for note in r.notes]
    return "\n".join(lines + (["", *notes] if notes else []))
