"""What checkers share: "not measured", attempts by probe and driver, a fault's window, error summaries.

Write probes run through a driver (`harness.drivers`): every `write` and `ledger` record names
it in `driver`, and records without one (timelines from before drivers) are the plain driver's.
Checkers of the write stream judge one driver, the plain one unless told otherwise.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.measure.faults import FaultRecord
from harness.timeline import Record, of_kind

ERROR_WIDTH = 200
PLAIN = "plain"  # harness.drivers.PLAIN, repeated so checkers import nothing but the timeline


def driver_of(record: Record) -> str:
    return str(record.get("driver") or PLAIN)


def writes_of(records: Iterable[Record], driver: str = PLAIN) -> list[Record]:
    """The write attempts of one driver's write probe."""
    return [w for w in of_kind(records, "write") if driver_of(w) == driver]


def ledgers_of(records: Iterable[Record], driver: str = PLAIN) -> list[Record]:
    """The final ledger reads of one driver's run id."""
    return [r for r in of_kind(records, "ledger") if driver_of(r) == driver]


def drivers_in(records: Iterable[Record], kinds: tuple[str, ...] = ("write",)) -> list[str]:
    """The drivers that wrote (or, with `kinds=("write", "load")`, that wrote or ran a load), the
    plain driver first, then by name."""
    found = {driver_of(r) for r in records if r["kind"] in kinds}
    return sorted(found, key=lambda d: (d != PLAIN, d))


@dataclass(frozen=True)
class NotMeasured:
    """A checker had nothing to judge (no fault, no ledger...): a fact to report, not an error."""

    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"measured": False, "reason": self.reason}


def ack_times(records: Iterable[Record], driver: str = PLAIN) -> dict[int, float]:
    """seq → when COMMIT first returned for it (the `end` of its earliest acknowledged attempt)."""
    acked: dict[int, float] = {}
    for write in writes_of(records, driver):
        if write["outcome"] == "acknowledged":
            seq = int(write["seq"])
            acked[seq] = min(write["end"], acked.get(seq, write["end"]))
    return acked


def reads_by_probe(records: Iterable[Record]) -> dict[str, list[Record]]:
    """Read attempts grouped by `probe`, probes in name order."""
    by_probe: dict[str, list[Record]] = defaultdict(list)
    for read in of_kind(records, "read"):
        by_probe[read["probe"]].append(read)
    return dict(sorted(by_probe.items()))


def ended_after(attempts: Iterable[Record], instant: float | None, until: float | None = None) -> list[Record]:
    """Attempts in completion order, keeping only those that ended after `instant` (all if None)
    and, with `until` (the next fault's start), before it."""
    ordered = sorted(attempts, key=lambda a: (a["end"], a["start"]))
    return [a for a in ordered if (instant is None or a["end"] > instant) and (until is None or a["end"] < until)]


def in_window(attempts: Iterable[Record], fault: FaultRecord | None) -> list[Record]:
    """The attempts that ended inside the fault's window (all of them without a fault), in order."""
    return ended_after(attempts, fault.start if fault else None, fault.until if fault else None)


def summarize_errors(attempts: Iterable[Record]) -> tuple[tuple[str, int], ...]:
    """Distinct error messages (first line, truncated) with counts, most frequent first."""
    counts = Counter(_headline(a.get("error")) for a in attempts)
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _headline(error: object) -> str:
    if error is None or str(error).strip() == "":
        return "(no error message)"
    line = str(error).strip().splitlines()[0]
    return line if len(line) <= ERROR_WIDTH else line[: ERROR_WIDTH - 1] + "…"


def clean(value: float) -> float:
    """Round away float noise from clock differences (to the microsecond) so figures read well."""
    return round(value, 6)
