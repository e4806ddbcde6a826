"""The fault-window checkers over hand-made timelines: commit latency and replica lag while a
fault-injection query's interval holds."""

from __future__ import annotations

from typing import Any

from harness.measure.common import NotMeasured
from harness.measure.fault_window import fault_window, measure_commit_latency, measure_lag_during_fault
from harness.measure.faults import the_fault
from tests.unit.test_measure import fault, read, with_fault, write

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
    window = fault_window(the_fault([timed_fault(10.0, 5)]))
    assert (window.start, window.end) == (10.1, 15.1)


def test_a_fault_without_an_interval_has_no_window() -> None:
    assert isinstance(fault_window(the_fault([fault(3.0)])), NotMeasured)
    assert isinstance(fault_window(None), NotMeasured)
    assert isinstance(measure_commit_latency(*with_fault([fault(3.0), write(1, 3.5, 3.6)])), NotMeasured)


def test_commit_latency_is_split_into_before_during_and_after() -> None:
    result = measure_commit_latency(*with_fault(congested()))
    assert result.before_p50_ms == 2.0
    assert result.during_p50_ms == 30.0 and result.during_min_ms == 30.0
    assert result.after_p50_ms == 2.0
    assert result.samples_during == 47  # started 10.3 .. 14.9, each ended inside the window


def test_only_acknowledged_writes_count() -> None:
    records = congested() + [write(999, 11.0, 11.5, "failed", "timeout")]
    assert measure_commit_latency(records, the_fault(records)).during_p50_ms == 30.0


def test_a_reader_cut_off_for_the_interval_peaks_at_the_interval_and_catches_up() -> None:
    records: list[Record] = [timed_fault(10.0, 5)]
    records += [write(seq, seq * 0.5 - 0.01, seq * 0.5) for seq in range(1, 40)]  # acked every 0.5 s until 19.5
    for i in range(200):  # reads every 0.1 s; the reader shows nothing new from 10.1 until 15.6
        t = i * 0.1
        visible_until = t if t < 10.1 or t >= 15.6 else 10.1
        records.append(read("reader:db-2", t, t + 0.01, max_seq=int(visible_until / 0.5)))
        records.append(read("reader:db-3", t, t + 0.01, max_seq=int(t / 0.5)))
    lag = measure_lag_during_fault(records, the_fault(records))
    cut_off, healthy = lag["reader:db-2"], lag["reader:db-3"]
    assert 5.0 <= cut_off.peak_lag_s <= 5.6  # seq 21 (acked 10.5) first shown at 15.61
    assert 0.4 <= cut_off.catch_up_s <= 0.6
    assert healthy.peak_lag_s <= 0.11 and healthy.catch_up_s <= 0.11
    assert cut_off.not_seen == healthy.not_seen == 0


def test_a_reader_that_never_catches_up_says_so() -> None:
    records: list[Record] = [timed_fault(1.0, 2)] + [write(seq, seq - 0.01, float(seq)) for seq in range(1, 5)]
    records += [read("reader:db-2", t, t + 0.01, max_seq=1) for t in (0.5, 1.5, 2.5, 3.5, 4.5)]
    lag = measure_lag_during_fault(records, the_fault(records))["reader:db-2"]
    assert lag.catch_up_s is None and lag.not_seen == 2 and lag.peak_lag_s is None


# --------------------------------------------------------------------------- the API's and the SQL's topology


def topology(m: float, writer: str) -> Record:
    return {"kind": "topology", "t": 1_700_000_000 + m, "m": m, "status": "available", "writer": writer}


def surface(m: float, writer: str | None, lags: dict[str, float | None]) -> Record:
    return {"kind": "surface", "t": 1_700_000_000 + m, "m": m, "writer": writer, "lag_ms": lags}


def test_both_views_of_a_failover_are_timed_from_the_fault() -> None:
    from harness.measure.topology_views import measure_topology_views

    records = [topology(0.0, "db-1"), surface(0.5, "db-1", {"db-2": 12.0, "db-3": 8.0}), fault(1.0),
               surface(1.5, None, {}), topology(2.0, "db-1"), surface(2.6, "db-2", {"db-1": None, "db-3": 40.0}),
               topology(3.2, "db-2")]
    views = measure_topology_views(records, the_fault(records))
    assert (views.writer_before, views.api_writer, views.sql_writer) == ("db-1", "db-2", "db-2")
    assert views.sql_writer_changed_after_s == 1.6 and views.api_writer_changed_after_s == 2.2
    assert views.sql_max_lag_ms == {"db-1": None, "db-2": 12.0, "db-3": 40.0}


def test_no_sql_view_is_reported_as_not_measured() -> None:
    from harness.measure.topology_views import measure_topology_views

    assert isinstance(measure_topology_views(*with_fault([topology(0.0, "db-1"), fault(1.0)])), NotMeasured)


def test_a_stall_is_the_longest_gap_between_acknowledgements_across_the_window() -> None:
    from harness.measure.fault_window import longest_write_gap

    records: list[Record] = [timed_fault(10.0, 4)]
    records += [write(seq, seq * 0.1 - 0.01, seq * 0.1) for seq in range(1, 101)]  # acked every 0.1 s until 10.0
    records.append(write(101, 10.05, 14.2))  # stalled for the interval, then acknowledged
    records += [write(seq, 14.2 + (seq - 101) * 0.1, 14.25 + (seq - 101) * 0.1) for seq in range(102, 120)]
    assert longest_write_gap(records, the_fault(records)) == 4.2
    assert isinstance(longest_write_gap(*with_fault([timed_fault(1.0, 2)])), NotMeasured)
