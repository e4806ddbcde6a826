"""Checkers over hand-made timelines whose answers are known to the record."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from harness.measure.faults import the_fault
from harness.measure import (
    DataLoss,
    NotMeasured,
    ReadAvailability,
    VisibilityLag,
    WriterRecovery,
    measure_all,
    measure_data_loss,
    measure_read_availability,
    measure_rto,
    measure_visibility_lag,
    metric_value,
)
from harness.measure.lag import _FirstReaching, nearest_rank

Record = dict[str, Any]


# --------------------------------------------------------------------------- record makers


def write(
    seq: int, start: float, end: float, outcome: str = "acknowledged", error: str | None = None
) -> Record:
    return {
        "kind": "write", "t": 1_700_000_000 + end, "m": end,
        "seq": seq, "start": start, "end": end, "outcome": outcome,
        "server": "db-1", "error": error,
    }


def with_fault(records: list) -> tuple[list, object]:
    """A checker's arguments: the timeline and the fault the rule picks (the last one)."""
    return records, the_fault(records)


def read(
    probe: str, start: float, end: float, max_seq: int | None = None, outcome: str = "ok"
) -> Record:
    return {
        "kind": "read", "t": 1_700_000_000 + end, "m": end,
        "probe": probe, "start": start, "end": end, "outcome": outcome, "max_seq": max_seq,
        "server": "db-2", "error": None if outcome == "ok" else "connection refused",
    }


def fault(start: float, name: str = "failover", end: float | None = None) -> Record:
    end = start + 0.2 if end is None else end
    return {
        "kind": "fault", "t": 1_700_000_000 + end, "m": end,
        "name": name, "start": start, "end": end, "detail": {},
    }


def ledger(ranges: list[list[int]], duplicates: dict[str, int] | None = None) -> Record:
    return {
        "kind": "ledger", "t": 1_700_000_900, "m": 900.0,
        "ranges": ranges, "duplicates": duplicates or {},
    }


def acked_each_second(first: int, last: int) -> list[Record]:
    """Writes seq first..last, each acknowledged at t = seq seconds."""
    return [write(seq, seq - 0.1, float(seq)) for seq in range(first, last + 1)]


# --------------------------------------------------------------------------- RTO


FAILOVER = [
    write(1, 0.0, 0.1),
    write(2, 1.0, 1.1),
    fault(1.5),
    write(3, 2.0, 2.2, "failed", "connection refused"),
    write(4, 3.0, 3.5, "unknown", "server closed the connection unexpectedly\n\tThis probably..."),
    write(5, 4.0, 4.1, "failed", "connection refused"),
    write(6, 5.0, 5.25),
    write(7, 6.0, 6.1),
]


def test_failover_rto_is_exact_to_the_recovering_write() -> None:
    assert measure_rto(FAILOVER, the_fault(FAILOVER)) == WriterRecovery(
        fault="failover",
        disrupted=True,
        recovered=True,
        rto_s=3.75,  # 5.25 (COMMIT of seq 6 returned) − 1.5 (failover issued)
        outage_s=3.25,  # 5.25 − 2.0 (seq 3, the first attempt that failed, started)
        resolution_s=0.9,  # 5.0 (seq 6, the recovering write, started) − 4.1 (seq 5, the last failure, ended)
        first_failure_after_fault_s=0.7,
        failed_attempts=2,
        unknown_attempts=1,
        errors=(("connection refused", 2), ("server closed the connection unexpectedly", 1)),
    )


def test_flapping_writer_is_one_outage_until_the_last_failure() -> None:
    records = [
        fault(0.0),
        write(1, 1.0, 2.0, "failed", "e"),
        write(2, 2.0, 3.0),  # acknowledged, but writes fail again afterwards
        write(3, 3.0, 4.0, "unknown", "e"),
        write(4, 4.0, 5.0),
    ]
    result = measure_rto(records, the_fault(records))
    assert isinstance(result, WriterRecovery)
    assert (result.rto_s, result.outage_s, result.resolution_s) == (5.0, 4.0, 0.0)  # never blind
    assert (result.failed_attempts, result.unknown_attempts) == (1, 1)


def test_attempt_in_flight_at_the_fault_makes_outage_longer_than_rto() -> None:
    records = [write(1, 0.0, 0.5), write(2, 0.5, 3.0, "unknown"), fault(1.0), write(3, 3.0, 4.0)]
    result = measure_rto(records, the_fault(records))
    assert isinstance(result, WriterRecovery)
    assert (result.rto_s, result.outage_s, result.first_failure_after_fault_s) == (3.0, 3.5, 2.0)
    assert result.errors == (("(no error message)", 1),)


def test_writes_that_never_recover() -> None:
    records = [write(1, 0.0, 0.1), fault(0.5), write(2, 1.0, 2.0, "failed", "timeout"),
               write(3, 2.0, 3.0, "failed", "timeout")]
    assert measure_rto(records, the_fault(records)) == WriterRecovery(
        fault="failover", disrupted=True, recovered=False, rto_s=None, outage_s=None,
        resolution_s=None, first_failure_after_fault_s=1.5, failed_attempts=2,
        unknown_attempts=0, errors=(("timeout", 2),),
    )


def test_a_write_that_hangs_past_the_end_counts_as_not_recovered() -> None:
    result = measure_rto(*with_fault([write(1, 0.0, 0.1), fault(0.5)]))
    assert isinstance(result, WriterRecovery)
    assert (result.disrupted, result.recovered, result.rto_s) == (True, False, None)


def test_undisrupted_writes_recover_at_the_first_acknowledgement() -> None:
    records = [write(1, 0.0, 0.1), fault(0.5), write(2, 1.0, 1.1), write(3, 2.0, 2.1)]
    assert measure_rto(records, the_fault(records)) == WriterRecovery(
        "failover", False, True, 0.6, 0.0, None, None, 0, 0, ()
    )


def test_a_write_stalled_across_the_fault_counts_until_it_returns() -> None:
    records = [write(1, 0.0, 0.1), write(2, 0.2, 3.5), fault(1.0), write(3, 3.5, 3.6)]
    result = measure_rto(records, the_fault(records))
    assert isinstance(result, WriterRecovery)
    assert (result.disrupted, result.rto_s, result.outage_s) == (False, 2.5, 0.0)


def test_failures_before_the_fault_are_not_the_fault_s_outage() -> None:
    records = [write(1, 0.0, 0.1, "failed", "e"), fault(0.5), write(2, 1.0, 1.1)]
    result = measure_rto(records, the_fault(records))
    assert isinstance(result, WriterRecovery)
    assert (result.disrupted, result.failed_attempts) == (False, 0)


def test_rto_is_timed_from_the_last_issued_fault_and_each_fault_has_its_own() -> None:
    """The rule: figures are timed from the last fault issued (by `start`, whatever order the
    records were written in); each fault's own RTO is measured up to the next fault."""
    records = [fault(3.0, "second"), fault(1.0, "first"), write(1, 2.0, 2.5, "failed"),
               write(2, 3.0, 4.0)]
    result = measure_rto(records, the_fault(records))
    assert isinstance(result, WriterRecovery)
    assert (result.fault, result.rto_s, result.disrupted) == ("second", 1.0, False)
    per_fault = {f["name"]: f["rto"] for f in measure_all(records)["faults"]}
    assert per_fault["first"]["disrupted"] and not per_fault["first"]["recovered"], \
        "the first fault's window ends where the second begins: writes had not come back by then"
    assert per_fault["second"]["rto_s"] == measure_all(records)["rto"]["rto_s"] == 1.0


def test_rto_not_measured_without_fault_or_writes() -> None:
    assert measure_rto(*with_fault([write(1, 0.0, 0.1)])) == NotMeasured(
        "no fault record: nothing to recover from"
    )
    assert isinstance(measure_rto(*with_fault([fault(1.0)])), NotMeasured)


def test_error_messages_are_first_lines_truncated() -> None:
    long = "x" * 500
    records = [fault(0.0), write(1, 0.0, 1.0, "failed", long), write(2, 1.0, 2.0, "failed", "  "),
               write(3, 2.0, 3.0)]
    result = measure_rto(records, the_fault(records))
    assert isinstance(result, WriterRecovery)
    (first, count_a), (second, count_b) = result.errors
    assert (first, count_a) == ("(no error message)", 1)
    assert (len(second), second[-1], count_b) == (200, "…", 1)
    assert result.as_dict()["errors"] == {"(no error message)": 1, "x" * 199 + "…": 1}


# --------------------------------------------------------------------------- read availability


def test_read_availability_after_the_fault_and_longest_outage() -> None:
    records = [
        read("reader:db-2", 0.0, 0.1, 1, "failed"),  # before the fault: not counted
        fault(0.5),
        read("reader:db-2", 1.0, 1.1, 1),
        read("reader:db-2", 2.0, 2.5, outcome="failed"),
        read("reader:db-2", 3.0, 3.5, outcome="failed"),
        read("reader:db-2", 4.0, 4.25, 2),  # outage 2.0 → 4.25
        read("reader:db-2", 5.0, 5.5, outcome="failed"),
        read("reader:db-2", 6.0, 6.5, 3),  # outage 5.0 → 6.5
        read("reader-endpoint", 1.0, 1.1, 1),
    ]
    result = measure_read_availability(records, the_fault(records))
    assert isinstance(result, dict)
    assert result == {
        "reader-endpoint": ReadAvailability("reader-endpoint", 1, 1, 0, 1.0, 0.0, True),
        "reader:db-2": ReadAvailability("reader:db-2", 6, 3, 3, 0.5, 2.25, True),
    }


def test_read_availability_without_fault_counts_everything() -> None:
    records = [
        read("r", 0.0, 1.0, 1),
        read("r", 1.0, 2.0, outcome="failed"),
        read("r", 2.0, 3.0, 1),
        read("r", 3.0, 4.0, 1),
    ]
    result = measure_read_availability(records, the_fault(records))
    assert isinstance(result, dict)
    assert result["r"] == ReadAvailability("r", 4, 3, 1, 0.75, 2.0, True)


def test_read_outage_open_at_the_end_has_no_length() -> None:
    records = [fault(0.0), read("r", 1.0, 1.5, 1), read("r", 2.0, 2.5, outcome="failed")]
    result = measure_read_availability(records, the_fault(records))
    assert isinstance(result, dict)
    assert result["r"] == ReadAvailability("r", 2, 1, 1, 0.5, None, False)


def test_read_availability_not_measured_without_reads() -> None:
    assert isinstance(measure_read_availability(*with_fault([fault(0.0)])), NotMeasured)


# --------------------------------------------------------------------------- data loss


def test_lost_acknowledged_writes_exact_list_and_span() -> None:
    # seq 1..6 acknowledged at 1..6 s, failover at 6.5 s, 7..8 failed, 9..10 on the new writer.
    records = [*acked_each_second(1, 6), fault(6.5), write(7, 7.0, 7.5, "failed"),
               write(8, 8.0, 8.5, "failed"), *acked_each_second(9, 10), ledger([[1, 3], [9, 10]])]
    assert measure_data_loss(records, the_fault(records)) == DataLoss(
        acknowledged=8, lost=(4, 5, 6), lost_count=3, lost_window_s=2.0, rpo_s=2.0,
        unknown_committed=0, unknown_absent=0, failed_but_present=0, duplicates=(),
    )


def test_rpo_reaches_the_last_write_acknowledged_before_the_fault() -> None:
    # Only seq 4 is missing; seq 5 and 6, acknowledged before the fault, survived.
    records = [*acked_each_second(1, 6), fault(6.5), ledger([[1, 3], [5, 6]])]
    result = measure_data_loss(records, the_fault(records))
    assert isinstance(result, DataLoss)
    assert (result.lost, result.lost_window_s, result.rpo_s) == ((4,), 0.0, 2.0)


def test_rpo_covers_loss_that_went_on_after_the_fault() -> None:
    # Global failover issued at 5.5 s; the old writer still acknowledged 6 and 7, then was cut off.
    records = [*acked_each_second(1, 5), fault(5.5, "failover-global-cluster"),
               *acked_each_second(6, 7), ledger([[1, 3]])]
    result = measure_data_loss(records, the_fault(records))
    assert isinstance(result, DataLoss)
    assert (result.lost, result.lost_window_s, result.rpo_s) == ((4, 5, 6, 7), 3.0, 3.0)


def test_rpo_without_fault_is_the_lost_window() -> None:
    records = [*acked_each_second(1, 6), ledger([[1, 3], [6, 6]])]
    result = measure_data_loss(records, the_fault(records))
    assert isinstance(result, DataLoss)
    assert (result.lost, result.lost_window_s, result.rpo_s) == ((4, 5), 1.0, 1.0)


def test_nothing_lost_means_rpo_zero() -> None:
    records = [*acked_each_second(1, 3), fault(3.5), ledger([[1, 3]])]
    result = measure_data_loss(records, the_fault(records))
    assert isinstance(result, DataLoss)
    assert (result.lost_count, result.lost_window_s, result.rpo_s) == (0, 0.0, 0.0)


def test_unknown_outcomes_are_never_lost_whether_committed_or_absent() -> None:
    records = [*acked_each_second(1, 2), write(3, 3.0, 4.0, "unknown"),
               write(4, 4.0, 5.0, "unknown"), *acked_each_second(5, 5), ledger([[1, 3], [5, 5]])]
    result = measure_data_loss(records, the_fault(records))
    assert isinstance(result, DataLoss)
    assert (result.lost_count, result.unknown_committed, result.unknown_absent) == (0, 1, 1)


def test_failed_attempt_found_in_the_ledger_is_reported_not_lost() -> None:
    records = [*acked_each_second(1, 2), write(3, 3.0, 3.5, "failed"), ledger([[1, 3]])]
    result = measure_data_loss(records, the_fault(records))
    assert isinstance(result, DataLoss)
    assert (result.lost_count, result.failed_but_present) == (0, 1)


def test_retried_seq_is_judged_by_its_acknowledged_attempt() -> None:
    records = [write(1, 0.0, 1.0, "failed"), write(1, 1.0, 2.0), write(2, 2.0, 3.0),
               write(2, 3.0, 4.0, "unknown"), ledger([[1, 1]])]
    result = measure_data_loss(records, the_fault(records))
    assert isinstance(result, DataLoss)
    assert (result.lost, result.failed_but_present, result.unknown_absent) == ((2,), 0, 0)


def test_duplicates_are_reported_by_seq() -> None:
    records = [*acked_each_second(1, 3), ledger([[1, 3]], {"3": 2, "1": 3})]
    result = measure_data_loss(records, the_fault(records))
    assert isinstance(result, DataLoss)
    assert result.duplicates == ((1, 3), (3, 2))
    assert result.as_dict()["duplicates"] == {1: 3, 3: 2}


def test_lost_list_is_capped_but_the_count_is_exact() -> None:
    records = [*acked_each_second(1, 1500), ledger([])]
    result = measure_data_loss(records, the_fault(records))
    assert isinstance(result, DataLoss)
    assert (len(result.lost), result.lost[0], result.lost[-1], result.lost_count) == (
        1000, 1, 1000, 1500
    )


def test_the_last_ledger_record_is_the_final_read() -> None:
    records = [*acked_each_second(1, 3), ledger([[1, 1]]), ledger([[1, 3]])]
    result = measure_data_loss(records, the_fault(records))
    assert isinstance(result, DataLoss)
    assert result.lost_count == 0


def test_data_loss_not_measured_without_ledger() -> None:
    assert measure_data_loss(*with_fault(acked_each_second(1, 3))) == NotMeasured(
        "no ledger record: the final read after recovery did not run"
    )


# --------------------------------------------------------------------------- visibility lag


def lag_history() -> list[Record]:
    """Seq i (1..100) acknowledged at 10·i s and first shown on reader:db-2 i ms later."""
    records: list[Record] = []
    for i in range(1, 101):
        ack = 10.0 * i
        records.append(write(i, ack - 0.002, ack))
        records.append(read("reader:db-2", ack + i / 1000 - 0.0005, ack + i / 1000, i))
    return records


def test_lag_percentiles_on_a_known_sequence() -> None:
    result = measure_visibility_lag(lag_history())
    assert isinstance(result, dict)
    assert result["reader:db-2"] == VisibilityLag(
        probe="reader:db-2", samples=100, lag_p50_s=0.05, lag_p95_s=0.095, lag_p99_s=0.099,
        lag_max_s=0.1, not_seen=0, acked_after_last_read=0, read_interval_s=10.001,
    )


def test_nearest_rank_percentiles() -> None:
    assert [nearest_rank([1.0, 2.0, 3.0, 4.0], p) for p in (1, 25, 26, 50, 99, 100)] == [
        1.0, 1.0, 2.0, 2.0, 4.0, 4.0
    ]


def test_visibility_needs_a_read_ending_after_the_ack_showing_the_seq() -> None:
    records = [
        write(1, 0.0, 1.0),
        read("reader-endpoint", 0.5, 0.9, 1),  # shows seq 1 but ended before the ack
        read("reader-endpoint", 1.0, 1.2, 0),  # a reader that is behind
        read("reader-endpoint", 1.3, 1.5, 1),  # first to show it after the ack: lag 0.5
        read("reader-endpoint", 1.6, 1.7, 0),  # another reader behind the endpoint again
    ]
    result = measure_visibility_lag(records)
    assert isinstance(result, dict)
    lag = result["reader-endpoint"]
    assert (lag.samples, lag.lag_max_s, lag.not_seen) == (1, 0.5, 0)


def test_a_probe_that_never_sees_some_writes() -> None:
    records = [*acked_each_second(1, 5)]
    records += [read("reader:db-3", t, t + 0.1, 2) for t in (1.5, 2.5, 3.5, 4.5, 5.5)]
    records += [write(6, 5.9, 6.0)]  # acknowledged after the probe's last read started
    result = measure_visibility_lag(records)
    assert isinstance(result, dict)
    lag = result["reader:db-3"]
    assert (lag.samples, lag.not_seen, lag.acked_after_last_read) == (2, 3, 1)
    assert (lag.lag_p50_s, lag.lag_max_s, lag.read_interval_s) == (0.6, 0.6, 1.0)


def test_a_probe_that_only_failed_has_every_write_not_seen() -> None:
    records = [*acked_each_second(1, 2), read("r", 2.5, 3.0, outcome="failed")]
    result = measure_visibility_lag(records)
    assert isinstance(result, dict)
    assert (result["r"].samples, result["r"].not_seen, result["r"].lag_p99_s) == (0, 2, None)


def test_visibility_lag_not_measured_without_reads_or_acknowledged_writes() -> None:
    assert isinstance(measure_visibility_lag(acked_each_second(1, 2)), NotMeasured)
    assert isinstance(measure_visibility_lag([read("r", 0.0, 0.1, 0)]), NotMeasured)


def test_first_reaching_matches_a_linear_scan() -> None:
    rng = random.Random(7)
    for size in (0, 1, 2, 3, 7, 64, 100):
        values = [rng.randint(-1, 50) for _ in range(size)]
        index = _FirstReaching(values)
        for start in range(size + 1):
            for seq in (-1, 0, 10, 25, 49, 50, 51):
                expected = next((j for j in range(start, size) if values[j] >= seq), None)
                assert index.first(start, seq) == expected


# --------------------------------------------------------------------------- measure_all


def full_history() -> list[Record]:
    return [*FAILOVER, read("reader:db-2", 0.2, 1.2, 2), read("reader:db-2", 5.3, 5.4, 6),
            read("reader:db-2", 6.2, 6.3, 7), read("reader:db-3", 6.2, 6.4, 7),
            ledger([[1, 2], [4, 7]])]


def test_measure_all_marks_what_the_timeline_cannot_measure() -> None:
    result = measure_all(acked_each_second(1, 3))
    assert (result.pop("fault"), result.pop("faults")) == (None, [])
    assert {name: entry["measured"] for name, entry in result.items()} == {
        "rto": False, "data_loss": False, "read_availability": False, "visibility_lag": False, "load": False,
        "topology_views": False,
    }
    assert result["data_loss"]["reason"].startswith("no ledger record")


def test_measure_all_is_json_ready_and_feeds_metric_value() -> None:
    measurements = json.loads(json.dumps(measure_all(full_history())))
    assert measurements["rto"]["rto_s"] == 3.75
    assert measurements["data_loss"]["unknown_committed"] == 1
    assert set(measurements["visibility_lag"]["probes"]) == {"reader:db-2", "reader:db-3"}
    assert metric_value(measurements, "rto_s") == 3.75
    assert metric_value(measurements, "lost_count") == 0
    # seq 1 (ack 0.1) is first shown by db-2's read ending at 1.2, and by db-3's at 6.4.
    assert metric_value(measurements, "lag_max_s", probe="reader:db-2") == 1.1
    assert metric_value(measurements, "lag_max_s") == 6.3  # the worst probe
    assert metric_value(measurements, "availability") == 1.0


def test_metric_value_worst_probe_and_missing_values() -> None:
    measurements = measure_all([
        *acked_each_second(1, 2), fault(0.5),
        read("a", 1.5, 2.0, outcome="failed"), read("a", 2.5, 3.0, 2),
        read("b", 1.5, 2.0, 2), read("b", 2.5, 3.0, 2),
    ])
    assert metric_value(measurements, "availability") == 0.5
    assert metric_value(measurements, "availability", probe="b") == 1.0
    assert metric_value(measurements, "lost_count") is None  # no ledger: not measured
    with pytest.raises(KeyError, match="unknown metric 'rto'"):
        metric_value(measurements, "rto")
    with pytest.raises(KeyError, match="no read probe 'c'"):
        metric_value(measurements, "availability", probe="c")
