"""Read availability per read probe: could a client read through this reader or endpoint?

Counted over the read attempts that ended inside the fault's window (over the whole
timeline when there is no fault), in completion order. A read outage runs from the `start` of a
failed read to the `end` of the next ok read, the same convention as the writer's `outage_s`.
An outage still open when the timeline ends has no known length: `recovered` is then False and
`longest_read_outage_s` is None.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness.measure.common import NotMeasured, clean, in_window, reads_by_probe
from harness.measure.faults import FaultRecord
from harness.measure.metrics import Metric, declare
from harness.timeline import Record

METRICS = declare(
    "read_availability",
    Metric("availability", "read availability", "", higher_is_better=True),
    Metric("longest_read_outage_s", "longest read outage", "s"),
)


@dataclass(frozen=True)
class ReadAvailability:
    probe: str
    attempts: int
    ok: int
    failed: int
    availability: float | None
    longest_read_outage_s: float | None
    recovered: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_read_availability(
    records: list[Record], fault: FaultRecord | None
) -> dict[str, ReadAvailability] | NotMeasured:
    """One result per `probe` seen in read records, over `fault`'s window."""
    by_probe = reads_by_probe(records)
    if not by_probe:
        return NotMeasured("no read record: no read probe ran")
    return {probe: _probe_availability(probe, in_window(reads, fault)) for probe, reads in by_probe.items()}


def _probe_availability(probe: str, reads: list[Record]) -> ReadAvailability:
    ok = sum(1 for r in reads if r["outcome"] == "ok")
    longest = 0.0
    outage_start: float | None = None
    for read in reads:
        if read["outcome"] != "ok":
            if outage_start is None:
                outage_start = read["start"]
        elif outage_start is not None:
            longest = max(longest, read["end"] - outage_start)
            outage_start = None
    recovered = outage_start is None
    return ReadAvailability(
        probe=probe,
        attempts=len(reads),
        ok=ok,
        failed=len(reads) - ok,
        availability=clean(ok / len(reads)) if reads else None,
        longest_read_outage_s=clean(longest) if recovered else None,
        recovered=recovered,
    )
