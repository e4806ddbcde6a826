"""The restore checker on hand-made ledgers: lost, leaked, ambiguous, unknown, and the boundary.

Server time here is 1_700_000_000 + the monotonic time of the record makers, offset 0 unless a
`clock` record says otherwise.
"""

from __future__ import annotations

from typing import Any

from harness.measure.common import NotMeasured
from harness.measure.restore import measure_restore
from tests.unit.test_measure import write

T0 = 1_700_000_000.0
Record = dict[str, Any]


def restore(low: float, high: float | None = None, requested: float = 20.0, first_ack: float | None = 30.0,
            how: str = "point-in-time", resolution_s: float = 1e-6) -> Record:
    return {"kind": "restore", "t": T0 + requested, "m": requested, "how": how, "target": "orders-restored",
            "boundary_low": T0 + low, "boundary_high": T0 + (low if high is None else high), "start": requested,
            "first_ack": first_ack, "resolution_s": resolution_s}


def restored(ranges: list[list[int]], target: str = "orders-restored") -> Record:
    return {"kind": "restore-ledger", "t": T0 + 40, "m": 40.0, "target": target, "ranges": ranges, "duplicates": {}}


def clock(offset: float, uncertainty: float) -> Record:
    return {"kind": "clock", "t": T0, "m": 0.0, "offset_s": offset, "uncertainty_s": uncertainty}


STREAM = [write(seq, seq - 0.2, seq - 0.1) for seq in range(1, 11)]  # acked at 0.9, 1.9, ..., 9.9


def test_an_exact_restore_keeps_everything_before_and_nothing_after() -> None:
    result = measure_restore([*STREAM, restore(5.0), restored([[1, 5]])])
    assert (result.present, result.lost_count, result.leaked_count, result.ambiguous) == (5, 0, 0, 0)
    assert result.restore_time_s == 10.0


def test_a_restore_missing_acknowledged_writes_names_them() -> None:
    result = measure_restore([*STREAM, restore(5.0), restored([[1, 2], [5, 5]])])
    assert (result.lost, result.lost_count, result.present) == ((3, 4), 2, 3)


def test_writes_begun_after_the_point_are_leaked_whatever_their_outcome() -> None:
    unknown_late = write(11, 7.5, 7.6, "unknown", "connection lost")
    result = measure_restore([*STREAM, unknown_late, restore(5.0), restored([[1, 7], [11, 11]])])
    assert result.leaked == (6, 7, 11) and result.leaked_count == 3


def test_a_write_in_flight_across_the_point_is_ambiguous_either_way() -> None:
    across = [*STREAM[:4], write(5, 4.95, 5.05), *STREAM[5:]]
    for ranges in ([[1, 4]], [[1, 5]]):
        result = measure_restore([*across, restore(5.0), restored(ranges)])
        assert (result.lost_count, result.leaked_count, result.ambiguous) == (0, 0, 1)


def test_an_unknown_outcome_before_the_point_is_never_lost() -> None:
    unknown = [*STREAM[:2], write(3, 2.8, 2.9, "unknown", "connection lost"), *STREAM[3:]]
    result = measure_restore([*unknown, restore(5.0), restored([[1, 2], [4, 5]])])
    assert (result.lost_count, result.unknown_not_counted, result.present) == (0, 1, 4)


def test_the_tolerance_widens_the_boundary_by_the_resolution_and_the_clock_uncertainty() -> None:
    close = [write(1, 4.90, 4.97), write(2, 5.03, 5.1)]  # acked 30 ms before the point, begun 30 ms after it
    sharp = measure_restore([*close, restore(5.0), restored([[2, 2]])])
    assert (sharp.lost, sharp.leaked) == ((1,), (2,))
    blurred = measure_restore([clock(0.0, 0.05), *close, restore(5.0), restored([[2, 2]])])
    assert (blurred.lost_count, blurred.leaked_count, blurred.ambiguous) == (0, 0, 2)
    assert blurred.tolerance_s == 0.050001 and blurred.clock_uncertainty_s == 0.05


def test_client_times_move_onto_the_server_clock() -> None:
    # The server's clock is 2 s ahead: its point 7.0 is the harness's 5.0.
    result = measure_restore([clock(2.0, 0.0), *STREAM, restore(7.0), restored([[1, 5]])])
    assert (result.present, result.lost_count, result.leaked_count) == (5, 0, 0)


def test_a_snapshot_boundary_is_an_interval() -> None:
    result = measure_restore([*STREAM, restore(3.0, 6.0, how="snapshot"), restored([[1, 4]])])
    assert (result.present, result.lost_count, result.leaked_count, result.ambiguous) == (3, 0, 0, 3)
    assert result.kind == "snapshot"


def test_the_loss_a_latest_time_restore_accepts() -> None:
    result = measure_restore([*STREAM, restore(6.5, requested=8.5, how="latest"), restored([[1, 6]])])
    assert (result.accepted_loss, result.accepted_loss_window_s) == (2, 2.0)  # acked at 6.9 and 7.9


def test_nothing_to_judge_without_a_restore_or_its_read() -> None:
    assert isinstance(measure_restore(STREAM), NotMeasured)
    assert isinstance(measure_restore([*STREAM, restore(5.0), restored([[1, 5]], target="other")]), NotMeasured)


def test_the_report_shows_the_exactness_table() -> None:
    from harness.measure import measure_all
    from harness.report.evidence import verdict_table_html

    measurements = measure_all([*STREAM, restore(5.0), restored([[1, 2], [5, 7]])])
    html = verdict_table_html("s", {"verdicts": [], "measurements": measurements})
    assert "<h4>Restore exactness</h4>" in html
    assert "<th>Acknowledged before it, lost</th><td>2: 3, 4</td>" in html
    assert "<th>Begun after it, leaked</th><td>2: 6, 7</td>" in html
    assert "2023-11-14T22:13:25.000000+00:00" in html  # the boundary on the server's clock


def test_the_chart_marks_the_bad_change_the_restore_point_and_the_restored_writer() -> None:
    from harness.report.chart import timeline_svg

    change = {"kind": "bad-change", "t": T0 + 5.05, "m": 5.05, "start": 5.0, "end": 5.05, "rows": 12,
              "statement": "DELETE ..."}
    svg = timeline_svg([*STREAM, change, restore(4.999), restored([[1, 4]])], "restore")
    for label in ("✗ bad change", "⟲ restore point", "restore requested", "restored writer acks"):
        assert label in svg
    assert "acknowledged its first write 10.0 s after the request" in svg


def test_the_report_shows_a_backtrack_as_a_rewind_in_place() -> None:
    from harness.measure import measure_all
    from harness.report.chart import timeline_svg
    from harness.report.evidence import verdict_table_html

    rewind = restore(5.0) | {"until": 8.0, "how": "backtrack", "target": "src", "backtrack": "b-1",
                             "cluster_available": 7.5, "requested_point": T0 + 5.0004}
    records = [*STREAM, rewind, restored([[1, 5]], target="src")]
    svg = timeline_svg(records, "backtrack")
    for label in ("⟲ backtrack point", "backtrack requested", "backtrack completed"):
        assert label in svg
    assert "⟲ restore point" not in svg and "restore requested" not in svg
    html = verdict_table_html("s", {"verdicts": [], "measurements": measure_all(records)})
    assert "<th>Rewound in place</th><td>src (backtrack)</td>" in html
    assert "<th>Backtrack duration (request to completed)</th>" in html
    assert "<th>Asked for (server clock)</th>" in html


def test_an_in_place_rewind_does_not_judge_the_writes_made_after_it() -> None:
    rewind = restore(5.0) | {"until": 8.0, "how": "backtrack"}
    after_it = [write(11, 8.5, 8.6), write(12, 9.0, 9.1)]  # the rewound cluster's new history
    result = measure_restore([*STREAM, *after_it, rewind, restored([[1, 5], [11, 12]])])
    assert (result.present, result.lost_count, result.leaked_count) == (5, 0, 0)
    kept_too_much = measure_restore([*STREAM, *after_it, rewind, restored([[1, 7], [11, 12]])])
    assert kept_too_much.leaked == (6, 7)
