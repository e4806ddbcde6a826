"""Which fault a figure is timed from: one rule for every checker and judgement.

A scenario may inject several faults (lose an AZ's storage, then one more node, then bring the
nodes back). Every "after the fault" figure (RTO, the application's errors, read availability,
the fault's interval) is timed from **the last fault injected before the figure is judged**: a
Then step judges what followed the When steps just before it. `the_fault` applies that rule to a
timeline; at the end of a run it is the last fault of the scenario, so `verdict.json`'s figures
and its verdicts agree.

Each fault also has its own window, from its `start` to the next fault's `start` (`until`), so a
report can give one figure per fault (`faults_of`) without mixing their effects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.timeline import Record, of_kind

__all__ = ["FaultRecord", "faults_of", "the_fault"]


@dataclass(frozen=True)
class FaultRecord:
    """A fault as the timeline recorded it, with the window its figures are measured over."""

    name: str
    start: float  # monotonic: when it was issued
    end: float  # monotonic: when its call returned
    description: str = ""
    interval_s: float | None = None  # a timed fault (fault-injection query FOR INTERVAL)
    until: float | None = None  # the next fault's start; None: the window runs to the end
    index: int = 0  # 0-based, in the order the faults were issued

    def holds(self, instant: float) -> bool:
        """Is `instant` inside this fault's window [start, until)?"""
        return instant >= self.start and (self.until is None or instant < self.until)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "start": self.start, "end": self.end,
                "interval_s": self.interval_s, "until": self.until, "index": self.index}


def faults_of(records: Iterable[Record]) -> list[FaultRecord]:
    """Every fault of the timeline in the order it was issued, each window ending at the next."""
    faults = sorted(of_kind(records, "fault"), key=lambda f: f["start"])
    found = []
    for index, fault in enumerate(faults):
        interval = (fault.get("detail") or {}).get("interval_s")
        until = float(faults[index + 1]["start"]) if index + 1 < len(faults) else None
        found.append(FaultRecord(name=str(fault.get("name", "")), start=float(fault["start"]),
                                 end=float(fault.get("end", fault["start"])),
                                 description=str(fault.get("description", "")),
                                 interval_s=float(interval) if interval else None, until=until, index=index))
    return found


def the_fault(records: Iterable[Record]) -> FaultRecord | None:
    """The rule: the last fault issued (None when the timeline holds none)."""
    faults = faults_of(records)
    return faults[-1] if faults else None
