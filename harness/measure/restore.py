"""Exactness of a restore: does the restored cluster hold exactly the writes before its point?

A point-in-time restore promises the data as it was at a moment T; a snapshot, the data as it
was at some moment during the snapshot [T_lo, T_hi]. Judged per write attempt of the write
probe against the ledger read from the restored cluster (`restore-ledger` record), with times on
the **server's clock** (the restore point is the server's; client times are moved onto it with
the offset the probes measured at the start, `clock` record):

- acknowledged (COMMIT returned) at or before T_lo − tolerance: must be present, else **lost**;
- begun (the statement left the client) after T_hi + tolerance: must be absent, else **leaked**
  (whatever the attempt's outcome: being there proves it committed after the point);
- anything else was in flight across the boundary (or within the tolerance of it): **ambiguous**,
  never counted either way; an attempt whose outcome is unknown is never counted as lost.

An in-place rewind (Backtrack) keeps taking writes once it is done: attempts begun after the
rewind was requested (`until` on the record) are new history, not judged against the boundary.

The tolerance is the engine's time resolution at the boundary plus the uncertainty of the clock
offset; both are shown, so an auditor can see how sharp the boundary was.

Restore time: from the restore request to the first write the restored cluster acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.measure.common import PLAIN, NotMeasured, clean, writes_of
from harness.measure.metrics import Metric, declare
from harness.timeline import Record, from_ranges, of_kind

METRICS = declare(
    "restore",
    Metric("restore_lost_count", "writes missing from the restore", "writes"),
    Metric("restore_leaked_count", "writes after the restore point in the restore", "writes"),
    Metric("restore_time_s", "restore time", "s"),
    Metric("accepted_loss_count", "acknowledged writes given up by the restore", "writes"),
    Metric("restore_duration_s", "time until the restored (or rewound) cluster was available", "s"),
)
SHOWN = 1000


@dataclass(frozen=True)
class ClockOffset:
    """server wall clock − harness wall clock, and how sure of it we are (half the round trip)."""

    offset_s: float
    uncertainty_s: float


@dataclass(frozen=True)
class RestoreExactness:
    kind: str  # point-in-time | latest | snapshot
    target: str  # the restored cluster
    boundary_low: float  # server epoch seconds: T_lo
    boundary_high: float  # T_hi (== T_lo for a point in time)
    tolerance_s: float
    engine_resolution_s: float
    clock_uncertainty_s: float
    present: int  # acknowledged before the boundary and there
    lost: tuple[int, ...]
    lost_count: int
    leaked: tuple[int, ...]
    leaked_count: int
    ambiguous: int
    unknown_not_counted: int
    accepted_loss: int  # acknowledged after the boundary and before the request: given up by choosing it
    accepted_loss_window_s: float | None  # from the boundary (its low end) to the request
    restore_time_s: float | None
    duration_s: float | None  # request to the cluster available again (for a backtrack: completed)
    requested_point: float | None  # what was asked for, when it differs from what was reached (Backtrack)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "boundary_low": self.boundary_low,
                "boundary_high": self.boundary_high, "tolerance_s": self.tolerance_s,
                "engine_resolution_s": self.engine_resolution_s, "clock_uncertainty_s": self.clock_uncertainty_s,
                "present": self.present, "restore_lost_count": self.lost_count, "lost": list(self.lost),
                "restore_leaked_count": self.leaked_count, "leaked": list(self.leaked), "ambiguous": self.ambiguous,
                "unknown_not_counted": self.unknown_not_counted, "accepted_loss_count": self.accepted_loss,
                "accepted_loss_window_s": self.accepted_loss_window_s, "restore_time_s": self.restore_time_s,
                "restore_duration_s": self.duration_s, "requested_point": self.requested_point}


def clock_offset(records: list[Record]) -> ClockOffset:
    """The offset the probes measured (0 ± 0 when they did not: one machine, one clock)."""
    measured = list(of_kind(records, "clock"))
    if not measured:
        return ClockOffset(0.0, 0.0)
    last = measured[-1]
    return ClockOffset(float(last["offset_s"]), float(last["uncertainty_s"]))


def on_server_clock(record: Record, instant: float, offset: ClockOffset) -> float:
    """A monotonic instant of `record`'s process as server wall-clock epoch seconds."""
    return record["t"] - (record["m"] - instant) + offset.offset_s


def measure_restore(records: list[Record], driver: str = PLAIN) -> RestoreExactness | NotMeasured:
    """The last restore of the timeline against the write probe's attempts."""
    restores = list(of_kind(records, "restore"))
    if not restores:
        return NotMeasured("no restore on the timeline")
    restore = restores[-1]
    ledgers = [r for r in of_kind(records, "restore-ledger") if r.get("target") == restore["target"]
               and r.get("driver", PLAIN) == driver]
    if not ledgers:
        return NotMeasured(f"the restored cluster {restore['target']} was never read")
    present = from_ranges(ledgers[-1]["ranges"])
    offset = clock_offset(records)
    resolution = float(restore.get("resolution_s") or 1e-6)
    tolerance = resolution + offset.uncertainty_s
    low, high = float(restore["boundary_low"]), float(restore["boundary_high"])

    outcome: dict[int, str] = {}
    began: dict[int, float] = {}
    acked: dict[int, float] = {}
    for write in writes_of(records, driver):
        seq = int(write["seq"])
        began[seq] = min(began.get(seq, float("inf")), on_server_clock(write, write["start"], offset))
        if write["outcome"] == "acknowledged":
            acked[seq] = min(acked.get(seq, float("inf")), on_server_clock(write, write["end"], offset))
        outcome[seq] = max(outcome.get(seq, "failed"), write["outcome"], key=_RANK.__getitem__)

    requested = on_server_clock(restore, restore["start"], offset)
    judged_until = on_server_clock(restore, restore["until"], offset) if restore.get("until") is not None else None
    lost, leaked = [], []
    kept = ambiguous = unknown = 0
    for seq in sorted(outcome):
        if judged_until is not None and began[seq] >= judged_until:
            continue  # written after an in-place rewind: the cluster's new history
        if began[seq] > high + tolerance:
            if seq in present:
                leaked.append(seq)
        elif seq in acked and acked[seq] <= low - tolerance:
            if seq in present:
                kept += 1
            else:
                lost.append(seq)
        elif outcome[seq] == "unknown":
            unknown += 1
        else:
            ambiguous += 1
    given_up = [seq for seq, at in acked.items() if high + tolerance < at <= requested]
    first_ack = restore.get("first_ack")
    return RestoreExactness(
        kind=str(restore.get("how", "point-in-time")), target=str(restore["target"]), boundary_low=low,
        boundary_high=high, tolerance_s=clean(tolerance), engine_resolution_s=resolution,
        clock_uncertainty_s=offset.uncertainty_s, present=kept, lost=tuple(lost[:SHOWN]), lost_count=len(lost),
        leaked=tuple(leaked[:SHOWN]), leaked_count=len(leaked), ambiguous=ambiguous, unknown_not_counted=unknown,
        accepted_loss=len(given_up), accepted_loss_window_s=clean(max(0.0, requested - low)),
        restore_time_s=clean(first_ack - restore["start"]) if first_ack is not None else None,
        duration_s=clean(restore["cluster_available"] - restore["start"]) if restore.get("cluster_available") else None,
        requested_point=restore.get("requested_point"))


_RANK = {"failed": 0, "unknown": 1, "acknowledged": 2}
