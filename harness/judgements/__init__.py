"""Judgements: pure functions from what was recorded to PolicyMet / PolicyBreached verdicts.

Jepsen composes named checkers over one history, each told exactly which operation it judges;
here each judgement takes the `Evidence` (the scenario's timeline, and the fault its figures are
timed from, picked by the one rule in `harness.measure.faults`) plus the limit or target the
scenario names, and returns its verdicts. Nothing here touches a cluster, so every judgement is
tested on hand-made timelines and can be recomputed from a report's raw timeline.

Grouped by capability:

| module | judges |
|---|---|
| `writes` | writes back (RTO), writes not interrupted, data loss, writes halted or stalled |
| `latency` | commit latency inside and after a timed fault |
| `replicas` | replica lag after recovery, read availability, a reader's lag and catch-up during a fault |
| `writer` | which instance is the writer after the fault |
| `load` | what the application saw: errors, latency back at baseline, the stop condition |
| `drivers` | the RTO and load errors each driver saw, side by side |
| `restore` | point-in-time restores, snapshots and Backtrack: exactness and duration |
| `global_database` | cross-Region lag, switchover and failover: data loss, RTO, roles, managed RPO |
| `blue_green` | Blue/Green switchover: data loss, downtime per client, endpoints, old blue, guardrails, rollback |

A new capability (restore, backtrack, global database, blue/green) adds a module here and a
step that calls `GameDay.judge(module.function, ...)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.measure.faults import FaultRecord, the_fault
from harness.timeline import Record

__all__ = ["Evidence"]


@dataclass(frozen=True)
class Evidence:
    """What a judgement looks at: the recorded timeline and the fault its figures are timed from."""

    records: list[Record]
    fault: FaultRecord | None

    @classmethod
    def of(cls, records: list[Record]) -> Evidence:
        """The timeline with its fault picked by the rule (the last one issued)."""
        return cls(records, the_fault(records))
