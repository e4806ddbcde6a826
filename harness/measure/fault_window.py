"""What a timed fault did while it held: commit latency and replica lag inside its interval.

Aurora's fault-injection queries (replica failure, disk failure, disk congestion) act for an
interval the query names; the fault record carries it (`detail.interval_s`). The window of the
fault the figures are timed from (`harness.measure.faults`) is [fault end, fault end + interval]:
the query returned, so the fault is in force; a fault without an interval has no window. Both checkers
are pure functions over the recorded history, like every other checker.

- Commit latency: the duration of each acknowledged write (INSERT + COMMIT through the cluster
  endpoint) by when it started: before the fault (the baseline), inside the window (after a
  short settling margin) and after it (past a margin, once queued work drained).
- Replica lag per read probe: the peak visibility lag of the writes acknowledged inside the
  window (how stale that reader got) and the catch-up time: how long after the window ended the
  reader first showed the last write acknowledged before the end.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from dataclasses import asdict, dataclass
from typing import Any

from harness.measure.common import (
    NotMeasured,
    ack_times,
    clean,
    reads_by_probe,
    writes_of,
)
from harness.measure.faults import FaultRecord
from harness.measure.lag import _FirstReaching, nearest_rank
from harness.measure.metrics import Metric, declare
from harness.timeline import Record

METRICS = declare(
    "fault_window",
    Metric("during_p50_ms", "median commit latency during the fault", "ms"),
    Metric("after_p50_ms", "median commit latency after the fault", "ms"),
    Metric("peak_lag_s", "peak replica lag during the fault", "s"),
    Metric("catch_up_s", "catch-up time after the fault", "s"),
)

SETTLE_S = 0.2  # writes started this soon after the query returned may predate its effect
DRAIN_S = 1.0  # writes queued behind the fault finish this long after its end


@dataclass(frozen=True)
class FaultWindow:
    fault: str
    start: float
    end: float


def fault_window(fault: FaultRecord | None) -> FaultWindow | NotMeasured:
    """The interval during which `fault` held."""
    if fault is None:
        return NotMeasured("no fault on the timeline")
    if not fault.interval_s:
        return NotMeasured(f"the fault ({fault.description or fault.name}) has no interval: it is not a "
                           f"fault-injection query FOR INTERVAL")
    return FaultWindow(fault.name, fault.end, fault.end + fault.interval_s)


@dataclass(frozen=True)
class CommitLatency:
    window_s: float
    samples_before: int
    samples_during: int
    samples_after: int
    before_p50_ms: float | None
    during_p50_ms: float | None
    during_p95_ms: float | None
    during_min_ms: float | None
    after_p50_ms: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_commit_latency(records: list[Record], fault: FaultRecord | None) -> CommitLatency | NotMeasured:
    """Commit latency before `fault`, inside its interval and after it."""
    if fault is None:
        return NotMeasured("no fault on the timeline")
    window = fault_window(fault)
    if isinstance(window, NotMeasured):
        return window
    fault_start = fault.start
    before, during, after = [], [], []
    for write in writes_of(records):
        if write["outcome"] != "acknowledged":
            continue
        latency = (write["end"] - write["start"]) * 1000
        if write["end"] < fault_start:
            before.append(latency)
        elif window.start + SETTLE_S <= write["start"] and write["end"] <= window.end:
            during.append(latency)
        elif write["start"] >= window.end + DRAIN_S:
            after.append(latency)
    if not during:
        return NotMeasured("no write was acknowledged inside the fault's interval")
    during.sort()
    return CommitLatency(
        window_s=clean(window.end - window.start), samples_before=len(before), samples_during=len(during),
        samples_after=len(after), before_p50_ms=_median(before), during_p50_ms=_round(statistics.median(during)),
        during_p95_ms=_round(nearest_rank(during, 95)), during_min_ms=_round(during[0]), after_p50_ms=_median(after))


def longest_write_gap(records: list[Record], fault: FaultRecord | None) -> float | NotMeasured:
    """The longest time without an acknowledged write that overlaps the fault's window.

    A stalled commit is not a failed one: writes waiting on a lost quorum simply do not return,
    so the stall shows as a gap between acknowledgements, whatever the attempts' outcomes."""
    window = fault_window(fault)
    if isinstance(window, NotMeasured):
        return window
    acks = sorted(w["end"] for w in writes_of(records) if w["outcome"] == "acknowledged")
    gaps = [b - a for a, b in zip(acks, acks[1:]) if b > window.start and a < window.end]
    if not gaps:
        return NotMeasured("no two acknowledged writes around the fault's window")
    return clean(max(gaps))


@dataclass(frozen=True)
class LagDuringFault:
    probe: str
    samples: int
    peak_lag_s: float | None  # the stalest a write acknowledged inside the window got on this reader
    not_seen: int  # writes acknowledged inside the window that this reader never showed
    catch_up_s: float | None  # after the window: until it showed the last write acknowledged inside it

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_lag_during_fault(records: list[Record], fault: FaultRecord | None
                             ) -> dict[str, LagDuringFault] | NotMeasured:
    """Per read probe: how stale the writes acknowledged during `fault`'s interval got, and the catch-up."""
    window = fault_window(fault)
    if isinstance(window, NotMeasured):
        return window
    acked = {seq: at for seq, at in ack_times(records).items() if window.start <= at <= window.end}
    if not acked:
        return NotMeasured("no write was acknowledged inside the fault's interval")
    by_probe = reads_by_probe(records)
    if not by_probe:
        return NotMeasured("no read record: no read probe ran")
    return {probe: _lag(probe, reads, acked, window) for probe, reads in by_probe.items()}


def _lag(probe: str, reads: list[Record], acked: dict[int, float], window: FaultWindow) -> LagDuringFault:
    ok = sorted((r for r in reads if r["outcome"] == "ok"), key=lambda r: r["end"])
    ends = [r["end"] for r in ok]
    seen = _FirstReaching([r["max_seq"] if r.get("max_seq") is not None else -1 for r in ok])
    lags, not_seen = [], 0
    for seq, at in acked.items():
        index = seen.first(bisect_left(ends, at), seq)
        if index is None:
            not_seen += 1
        else:
            lags.append(ends[index] - at)
    last = max(acked)
    caught = seen.first(bisect_left(ends, window.end), last)
    return LagDuringFault(probe=probe, samples=len(lags), peak_lag_s=clean(max(lags)) if lags else None,
                          not_seen=not_seen, catch_up_s=clean(ends[caught] - window.end) if caught is not None else None)


def _median(values: list[float]) -> float | None:
    return _round(statistics.median(values)) if values else None


def _round(value: float) -> float:
    return round(value, 3)
