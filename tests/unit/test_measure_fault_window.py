"""The fault-window checkers over hand-made timelines: commit latency and replica lag while a
fault-injection query's interval holds."""

from __future__ import annotations

from typing import Any

from harness.measure.common import NotMeasured
from harness.measure.fault_window import fault_window, measure_commit_latency, measure_lag_during_fault
from tests.unit.test_measure import fault, read, write

Record = dict[str, Any]


def timed_fault(start: float, interval: float) -> Record:
    record = fault(start, name="fault-injection", end=start + 0.1)
    record["detail"] = {"interval_s": interval}
    return record


def congested() -> list[Record]:
    """Writes of 2 ms before t=10, 30 ms while the congestion holds (10.1 .. 15.1), 2 ms after."""
    records: list[Record] = [timed_fault(10.0, 5)]
    t, seq = 0.0, 0
    while t < 20:
        seq += 1
        latency = 0.030 if 10.3 <= t <= 15.0 else 0.002
        records.append(write(seq, t, t + latency))
        t += 0.1
    return records


def test_the_window_is_the_interval_after_the_query_returned() -> None:
    window = fault_window([timed_fault(10.0, 5)])
    assert (window.start, window.end) == (10.1, 15.1)


def test_a_fault_without_an_interval_has_no_window() -> None:
    assert isinstance(fault_window([fault(3.0)]), NotMeasured)
    assert isinstance(measure_commit_latency([fault(3.0), write(1, 3.5, 3.6)]), NotMeasured)


def test_commit_latency_is_split_into_before_during_and_after() -> None:
    result = measure_commit_latency(congested())
    assert result.before_p50_ms == 2.0
    assert result.during_p50_ms == 30.0 and result.during_min_ms == 30.0
    assert result.after_p50_ms == 2.0
    assert result.samples_during == 47  # started 10.3 .. 14.9, each ended inside the window


def test_only_acknowledged_writes_count() -> None:
    records = congested() + [write(999, 11.0, 11.5, "failed", "timeout")]
    assert measure_commit_latency(records).during_p50_ms == 30.0


def test_a_reader_cut_off_for_the_interval_peaks_at_the_interval_and_catches_up() -> None:
    records: list[Record] = [timed_fault(10.0, 5)]
    records += [write(seq, seq * 0.5 - 0.01, seq * 0.5) for seq in range(1, 40)]  # acked every 0.5 s until 19.5
    for i in range(200):  # reads every 0.1 s; the reader shows nothing new from 10.1 until 15.6
        t = i * 0.1
        visible_until = t if t < 10.1 or t >= 15.6 else 10.1
        records.append(read("reader:db-2", t, t + 0.01, max_seq=int(visible_until / 0.5)))
        records.append(read("reader:db-3", t, t + 0.01, max_seq=int(t / 0.5)))
    lag = measure_lag_during_fault(records)
    cut_off, healthy = lag["reader:db-2"], lag["reader:db-3"]
    assert 5.0 <= cut_off.peak_lag_s <= 5.6  # seq 21 (acked 10.5) first shown at 15.61
    assert 0.4 <= cut_off.catch_up_s <= 0.6
    assert healthy.peak_lag_s <= 0.11 and healthy.catch_up_s <= 0.11
    assert cut_off.not_seen == healthy.not_seen == 0


def test_a_reader_that_never_catches_up_says_so() -> None:
    records: list[Record] = [timed_fault(1.0, 2)] + [write(seq, seq - 0.01, float(seq)) for seq in range(1, 5)]
    records += [read("reader:db-2", t, t + 0.01, max_seq=1) for t in (0.5, 1.5, 2.5, 3.5, 4.5)]
    lag = measure_lag_during_fault(records)["reader:db-2"]
    assert lag.catch_up_s is None and lag.not_seen == 2 and lag.peak_lag_s is None
