"""RTO: how long after the fault the application could write again (write probe, cluster endpoint).

Per driver (`driver`, the plain driver's write probe by default): each write probe is its own
application, so its RTO is computed from its own attempts only.

Counted from F, the `start` of the fault (`harness.measure.faults`: the last one issued, unless
the caller names another), over the write attempts that ended inside its window (after F and
before the next fault, if any), in completion order:

- the outage runs from the first attempt that was not acknowledged (failed or unknown) to the
  first acknowledged attempt after the *last* non-acknowledged one, so a flapping writer
  (ok, fail, ok, fail, ok) is one outage, not several short ones;
- `rto_s` = end of that recovering attempt − F: the moment COMMIT returned again;
- `outage_s` = end of the recovering attempt − start of the first non-acknowledged attempt, the
  time the application spent unable to write (it can exceed `rto_s` when an attempt was already
  in flight when the fault was issued);
- `resolution_s` = start of the recovering attempt − end of the last non-acknowledged attempt:
  the probe's blind spot around recovery. No attempt was in flight then, so a client that
  started a write in that gap could have been acknowledged up to that much earlier than
  `rto_s`; outside it the probe was always trying. (The recovering attempt's own latency is
  not uncertainty: an application's first write pays it too, and the RTO counts until an
  acknowledgement.)

When no attempt failed after F, `rto_s` is the time to the first acknowledgement after F (a
stalled write counts until it returns) and `outage_s` is 0.

No attempt completing after F counts as not recovered: a write that hangs leaves no record.

"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.measure.common import PLAIN, NotMeasured, clean, in_window, summarize_errors, writes_of
from harness.measure.faults import FaultRecord
from harness.measure.metrics import Metric, declare
from harness.timeline import Record

METRICS = declare(
    "rto",
    Metric("rto_s", "RTO", "s"),
    Metric("outage_s", "write outage", "s"),
    Metric("resolution_s", "RTO resolution", "s"),
    Metric("first_failure_after_fault_s", "time to first failed write", "s"),
    Metric("failed_attempts", "failed writes", "writes"),
    Metric("unknown_attempts", "writes with unknown outcome", "writes"),
)


@dataclass(frozen=True)
class WriterRecovery:
    fault: str
    disrupted: bool
    recovered: bool
    rto_s: float | None
    outage_s: float | None
    resolution_s: float | None
    first_failure_after_fault_s: float | None
    failed_attempts: int
    unknown_attempts: int
    errors: tuple[tuple[str, int], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "fault": self.fault,
            "disrupted": self.disrupted,
            "recovered": self.recovered,
            "rto_s": self.rto_s,
            "outage_s": self.outage_s,
            "resolution_s": self.resolution_s,
            "first_failure_after_fault_s": self.first_failure_after_fault_s,
            "failed_attempts": self.failed_attempts,
            "unknown_attempts": self.unknown_attempts,
            "errors": dict(self.errors),
        }


def measure_rto(records: list[Record], fault: FaultRecord | None, driver: str = PLAIN) -> WriterRecovery | NotMeasured:
    """The writer's recovery from `fault`, as the write probe of `driver` saw it."""
    if fault is None:
        return NotMeasured("no fault record: nothing to recover from")
    writes = writes_of(records, driver)
    if not writes:
        return NotMeasured("no write record: the write probe did not run" if driver == PLAIN
                           else f"no write record of the {driver} write probe: it did not run")

    after = in_window(writes, fault)
    if not after:
        return WriterRecovery(fault.name, True, False, None, None, None, None, 0, 0, ())
    missed = [w for w in after if w["outcome"] != "acknowledged"]
    if not missed:
        # Nothing failed, but a write may still have stalled (e.g. waiting for a storage
        # quorum): writing was possible again at the first acknowledgement after the fault.
        first_ack = after[0]
        return WriterRecovery(fault.name, False, True, clean(first_ack["end"] - fault.start), 0.0, None, None,
                              0, 0, ())

    failed = sum(1 for w in missed if w["outcome"] == "failed")
    unknown = len(missed) - failed
    errors = summarize_errors(missed)
    first_failure = clean(missed[0]["end"] - fault.start)
    last_missed_end = missed[-1]["end"]
    recovering = next(
        (w for w in after if w["outcome"] == "acknowledged" and w["end"] > last_missed_end), None
    )
    if recovering is None:
        return WriterRecovery(
            fault.name, True, False, None, None, None, first_failure, failed, unknown, errors
        )
    return WriterRecovery(
        fault=fault.name,
        disrupted=True,
        recovered=True,
        rto_s=clean(recovering["end"] - fault.start),
        outage_s=clean(recovering["end"] - missed[0]["start"]),
        resolution_s=clean(max(0.0, recovering["start"] - last_missed_end)),
        first_failure_after_fault_s=first_failure,
        failed_attempts=failed,
        unknown_attempts=unknown,
        errors=errors,
    )
