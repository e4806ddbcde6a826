"""Judgements of who the writer is after the fault, by Aurora's own promotion rules.

The facts come from the RDS API (the members when the fault was injected, the writer now), so
the judgement itself stays a pure function of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.aurora import promotion_rank
from harness.cluster import Member
from harness.errors import ScenarioError
from harness.judgements import Evidence
from harness.verdicts import Verdict, judge_fact

__all__ = ["promoted_by_tier", "promoted_reader", "writer_unchanged"]


def promoted_by_tier(evidence: Evidence, *, members_at_fault: Sequence[Member], writer: str) -> Verdict:
    """The new writer is a reader Aurora would pick: the best promotion tier, then the largest."""
    readers = [m for m in members_at_fault if not m.is_writer]
    if not readers:
        raise ScenarioError("no reader was known when the fault was injected")
    rank = {m.identifier: promotion_rank(m.promotion_tier, m.instance_class) for m in readers}
    best = min(rank.values())
    eligible = sorted(name for name, key in rank.items() if key == best)
    tiers = ", ".join(f"{m.identifier} tier {m.promotion_tier}" for m in readers)
    return judge_fact("promoted reader", writer in eligible,
                      f"{writer} became the writer; by promotion tier ({tiers}) Aurora picks {' or '.join(eligible)}")


def promoted_reader(evidence: Evidence, *, expected: str, writer: str) -> Verdict:
    """The reader the scenario named became the writer."""
    return judge_fact("promoted reader", writer == expected, f"{writer} became the writer; expected {expected}")


def writer_unchanged(evidence: Evidence, *, before: str, writer: str) -> Verdict:
    """No failover happened: the writer is the one the scenario started with."""
    return judge_fact("no failover", writer == before, f"the writer is {writer}; it was {before}")
