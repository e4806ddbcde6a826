"""Visibility lag per read probe: how long after COMMIT returned a write became readable there.

Jepsen's "when did it become visible" measure, from the client's side. For each acknowledged
write (seq, ack = its `end`), its visibility time on probe P is the `end` of the first ok read
on P that ended at or after the ack and reports `max_seq >= seq`; lag = that − ack (never
negative, as that read ended after the ack).

- Only writes the probe had a chance to see are judged: a probe attempt (any outcome) must have
  started at or after the ack. Later ones (the probe stopped first) are counted in
  `acked_after_last_read`, neither lag samples nor `not_seen`.
- `not_seen`: judged writes that no ok read on P ever showed.
- Percentiles are nearest-rank (the ceil(p/100·n)-th smallest sample), so every figure is a lag
  that was actually observed and the result is deterministic.
- `read_interval_s` (median gap between consecutive read starts on P) is the resolution: a
  visibility time is only known to within one read interval plus one read's duration.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.measure.common import NotMeasured, ack_times, clean, reads_by_probe
from harness.measure.metrics import Metric, declare
from harness.timeline import Record

METRICS = declare(
    "visibility_lag",
    Metric("lag_p50_s", "visibility lag p50", "s"),
    Metric("lag_p95_s", "visibility lag p95", "s"),
    Metric("lag_p99_s", "visibility lag p99", "s"),
    Metric("lag_max_s", "visibility lag max", "s"),
    Metric("not_seen", "writes never seen", "writes"),
)


@dataclass(frozen=True)
class VisibilityLag:
    probe: str
    samples: int
    lag_p50_s: float | None
    lag_p95_s: float | None
    lag_p99_s: float | None
    lag_max_s: float | None
    not_seen: int
    acked_after_last_read: int
    read_interval_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_visibility_lag(records: list[Record]) -> dict[str, VisibilityLag] | NotMeasured:
    """One result per `probe` seen in read records."""
    by_probe = reads_by_probe(records)
    if not by_probe:
        return NotMeasured("no read record: no read probe ran")
    acked = ack_times(records)
    if not acked:
        return NotMeasured("no acknowledged write: nothing whose visibility could be timed")
    return {probe: _probe_lag(probe, reads, acked) for probe, reads in by_probe.items()}


def nearest_rank(ordered: Sequence[float], p: float) -> float:
    """The nearest-rank p-th percentile of an ascending, non-empty sequence."""
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def _probe_lag(probe: str, reads: list[Record], acked: dict[int, float]) -> VisibilityLag:
    ok = sorted((r for r in reads if r["outcome"] == "ok"), key=lambda r: r["end"])
    ends = [r["end"] for r in ok]
    seen = _FirstReaching([r["max_seq"] if r.get("max_seq") is not None else -1 for r in ok])
    last_start = max(r["start"] for r in reads)

    lags: list[float] = []
    not_seen = too_late = 0
    for seq, ack in acked.items():
        if ack > last_start:
            too_late += 1
            continue
        index = seen.first(bisect_left(ends, ack), seq)
        if index is None:
            not_seen += 1
        else:
            lags.append(clean(ends[index] - ack))
    lags.sort()

    starts = sorted(r["start"] for r in reads)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    return VisibilityLag(
        probe=probe,
        samples=len(lags),
        lag_p50_s=nearest_rank(lags, 50) if lags else None,
        lag_p95_s=nearest_rank(lags, 95) if lags else None,
        lag_p99_s=nearest_rank(lags, 99) if lags else None,
        lag_max_s=lags[-1] if lags else None,
        not_seen=not_seen,
        acked_after_last_read=too_late,
        read_interval_s=clean(statistics.median(gaps)) if gaps else None,
    )


class _FirstReaching:
    """First read at or after index i whose max_seq reaches a seq, in O(log n).

    A sparse table of range maxima lets the search skip whole blocks of reads that show less,
    so a reader that stalls for minutes (or never catches up) costs no quadratic scan.
    """

    def __init__(self, max_seqs: list[int]):
        self._values = max_seqs
        self._levels = [max_seqs]  # levels[k][j] = max(max_seqs[j : j + 2**k])
        width = 1
        while 2 * width <= len(max_seqs):
            below = self._levels[-1]
            pairs = range(len(below) - width)
            self._levels.append([max(below[j], below[j + width]) for j in pairs])
            width *= 2

    def first(self, start: int, seq: int) -> int | None:
        index = start
        for k in reversed(range(len(self._levels))):
            level = self._levels[k]
            if index < len(level) and level[index] < seq:
                index += 1 << k
        if index < len(self._values) and self._values[index] >= seq:
            return index
        return None
