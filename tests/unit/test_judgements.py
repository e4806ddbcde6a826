"""Judgements over hand-made timelines: each a pure function of the evidence and an explicit fault.

The same record makers as the checkers' tests; what is checked here is what a game day reports:
the verdict's status, the figure it judged, and the fault that figure was timed from.
"""

from __future__ import annotations

import pytest

from harness.cluster import Member
from harness.errors import ScenarioError
from harness.judgements import Evidence, drivers, latency, load, replicas, writer, writes
from harness.measure.faults import faults_of
from harness.targets import load_targets
from harness.verdicts import BREACHED, MET
from tests.unit.test_measure import FAILOVER, fault, ledger, read, write
from tests.unit.test_measure_drivers import BOTH, WRAPPER
from tests.unit.test_measure_fault_window import congested, timed_fault
from tests.unit.test_measure_load import failover_history, failure, second

TARGETS = load_targets()


def evidence(records: list) -> Evidence:
    return Evidence.of(records)


# --------------------------------------------------------------------------- which fault


def test_the_fault_is_the_last_one_issued_and_each_fault_has_its_window() -> None:
    records = [fault(5.0, "third"), fault(1.0, "first"), fault(3.0, "second")]
    assert evidence(records).fault.name == "third"
    windows = [(f.name, f.start, f.until) for f in faults_of(records)]
    assert windows == [("first", 1.0, 3.0), ("second", 3.0, 5.0), ("third", 5.0, None)]
    assert Evidence.of([write(1, 0.0, 0.1)]).fault is None


# --------------------------------------------------------------------------- writes


def test_writes_back_within_a_limit_or_a_documented_target() -> None:
    (met,) = [writes.recovery(evidence(FAILOVER), limit=5.0)]
    assert (met.status, met.metric, met.measured, met.limit) == (MET, "rto_s", 3.75, 5.0)
    assert "RTO 3.75 s ≤ 5 s" in met.explanation
    breached = writes.recovery(evidence(FAILOVER), limit=3.0)
    assert breached.status == BREACHED and "breaching ≤ 3 s" in breached.explanation
    documented = writes.recovery(evidence(FAILOVER), target=TARGETS["failover-with-replicas"])
    assert documented.status == MET and documented.target_id == "failover-with-replicas"


def test_writes_that_never_come_back_breach_with_the_reason() -> None:
    records = [write(1, 0.0, 0.1), fault(1.0), write(2, 1.5, 1.6, "failed", "refused")]
    verdict = writes.recovery(evidence(records), limit=60)
    assert verdict.status == BREACHED and verdict.measured is None
    assert "writes did not recover before the observation ended" in verdict.explanation


def test_recovery_is_timed_from_the_last_fault() -> None:
    """Storage nodes lost (writes stall), then back: RTO counts from their return."""
    records = [write(1, 0.0, 0.1), fault(1.0, "storage-nodes-down"), fault(5.0, "storage-nodes-up"),
               write(2, 1.1, 5.4)]
    verdict = writes.recovery(evidence(records), limit=1)
    assert verdict.status == MET and verdict.measured == pytest.approx(0.4)


def test_a_driver_without_a_write_probe_cannot_be_judged() -> None:
    with pytest.raises(ScenarioError, match="no write probe ran through the AWS Advanced Python Wrapper"):
        writes.recovery(evidence(FAILOVER), limit=60, driver=WRAPPER)
    verdict = writes.recovery(evidence(BOTH), limit=60, driver=WRAPPER, check="writes back, wrapper")
    assert verdict.status == MET and verdict.check == "writes back, wrapper"


def test_uninterrupted_writes_breach_on_any_outage() -> None:
    assert writes.uninterrupted(evidence(FAILOVER)).status == BREACHED
    steady = [write(1, 0.0, 0.1), fault(0.5), write(2, 1.0, 1.1)]
    verdict = writes.uninterrupted(evidence(steady))
    assert (verdict.status, verdict.measured) == (MET, 0.0)


def test_data_loss_one_verdict_per_driver_naming_the_loss() -> None:
    target = TARGETS["in-region-acknowledged-writes"]
    records = [*FAILOVER, ledger([[1, 2], [4, 7]])]
    (plain,) = writes.data_loss(evidence(records), target=target)
    assert (plain.check, plain.status, plain.measured) == ("data loss (RPO)", MET, 0)
    lossy = [*FAILOVER, ledger([[1, 2], [7, 7]])]  # seq 6 was acknowledged, then lost
    (lost,) = writes.data_loss(evidence(lossy), target=target)
    assert lost.status == BREACHED and lost.measured == 1
    both = writes.data_loss(evidence(BOTH), target=target)
    assert [v.check for v in both] == ["data loss (RPO)", "data loss (RPO), AWS Advanced Python Wrapper"]


def test_data_loss_without_the_final_read_is_not_shown_to_meet_anything() -> None:
    (verdict,) = writes.data_loss(evidence(FAILOVER), target=TARGETS["in-region-acknowledged-writes"])
    assert verdict.status == BREACHED and "no ledger record" in verdict.explanation


def test_writes_halted_counts_acknowledgements_after_the_grace() -> None:
    records = [write(1, 0.0, 0.1), fault(1.0), write(2, 1.0, 1.3)]  # in flight: inside the grace
    assert writes.halted(evidence(records), until=4.0).status == MET
    leaked = [*records, write(3, 2.0, 2.1)]
    verdict = writes.halted(evidence(leaked), until=4.0)
    assert (verdict.status, verdict.measured) == (BREACHED, 1)
    with pytest.raises(ScenarioError, match="needs a fault"):
        writes.halted(evidence([write(1, 0.0, 0.1)]), until=1.0)


def test_writes_stalled_for_most_of_the_interval() -> None:
    stalled = [timed_fault(1.0, 4), write(1, 0.0, 0.1), write(2, 1.0, 5.2), write(3, 5.3, 5.4)]
    verdict = writes.stalled(evidence(stalled))
    assert verdict.status == MET and verdict.measured == pytest.approx(5.1)
    flowing = [timed_fault(1.0, 4), *[write(n, n * 0.5, n * 0.5 + 0.01) for n in range(14)]]
    assert writes.stalled(evidence(flowing)).status == BREACHED
    untimed = writes.stalled(evidence([fault(1.0), write(1, 0.0, 0.1), write(2, 2.0, 2.1)]))
    assert untimed.status == BREACHED and "has no interval" in untimed.explanation


# --------------------------------------------------------------------------- latency


def test_commit_latency_inside_its_band_and_back_after() -> None:
    assert latency.commit_latency_band(evidence(congested()), low_ms=20, high_ms=60).status == MET
    outside = latency.commit_latency_band(evidence(congested()), low_ms=40, high_ms=60)
    assert outside.status == BREACHED and "median commit latency 30 ms" in outside.explanation
    after = latency.commit_latency_after(evidence(congested()), limit_ms=15)
    assert (after.status, after.measured) == (MET, 2.0)


# --------------------------------------------------------------------------- replicas


def test_reads_available_on_every_reader_since_the_fault() -> None:
    records = [fault(1.0), read("reader:db-2", 1.0, 1.1, 1), read("reader:db-3", 1.0, 1.1, 1),
               read("reader-endpoint", 1.0, 1.1, outcome="failed")]
    assert replicas.reads_available(evidence(records)).status == MET, "the reader endpoint is not a reader"
    failing = [*records, read("reader:db-3", 1.2, 1.3, outcome="failed")]
    verdict = replicas.reads_available(evidence(failing))
    assert (verdict.status, verdict.measured) == (BREACHED, 0.5)


def test_replica_lag_after_recovery_against_the_documented_lag() -> None:
    records = [write(1, 0.0, 0.1), fault(0.5), {"kind": "phase", "t": 0, "m": 2.0, "name": "recovery"},
               write(2, 2.0, 2.1), read("reader:db-2", 2.11, 2.15, 2), write(3, 3.0, 3.1),
               read("reader:db-2", 3.4, 3.5, 3)]
    verdict = replicas.lag_after_recovery(evidence(records), target=TARGETS["in-cluster-replica-lag"])
    assert verdict.status == BREACHED and verdict.measured == pytest.approx(0.4), "seq 3 became visible 0.4 s late"


def test_a_reader_held_back_during_the_interval_and_catching_up() -> None:
    records = [timed_fault(10.0, 5)]
    records += [write(seq, seq * 0.5 - 0.01, seq * 0.5) for seq in range(1, 40)]
    records += [read("reader:db-2", 15.5, 15.6, 30), read("reader:db-2", 19.0, 19.1, 39)]
    peak = replicas.lag_peak(evidence(records), reader="db-2", at_least_s=3)
    assert peak.status == MET and peak.measured >= 3
    caught = replicas.catch_up(evidence(records), reader="db-2", within_s=1)
    assert caught.status == MET and caught.measured == pytest.approx(0.5)
    unwatched = replicas.lag_peak(evidence(records), reader="db-9", at_least_s=3)
    assert unwatched.status == BREACHED and "no read probe watched db-9" in unwatched.explanation


# --------------------------------------------------------------------------- the writer


def member(name: str, tier: int, writer_: bool = False, size: str = "db.r6g.large") -> Member:
    return Member(name, writer_, tier, "available", "us-east-1a", size, "127.0.0.1", 5432)


def test_the_promoted_reader_is_the_one_the_tiers_pick() -> None:
    members = [member("db-1", 1, writer_=True), member("db-2", 0), member("db-3", 15)]
    assert writer.promoted_by_tier(evidence([]), members_at_fault=members, writer="db-2").status == MET
    wrong = writer.promoted_by_tier(evidence([]), members_at_fault=members, writer="db-3")
    assert wrong.status == BREACHED and "Aurora picks db-2" in wrong.explanation
    ties = [member("db-1", 1, writer_=True), member("db-2", 1), member("db-3", 1, size="db.r6g.4xlarge")]
    assert writer.promoted_by_tier(evidence([]), members_at_fault=ties, writer="db-3").status == MET, "the largest"
    with pytest.raises(ScenarioError, match="no reader was known"):
        writer.promoted_by_tier(evidence([]), members_at_fault=[member("db-1", 1, True)], writer="db-1")


def test_named_reader_and_unchanged_writer() -> None:
    assert writer.promoted_reader(evidence([]), expected="db-3", writer="db-3").status == MET
    assert writer.promoted_reader(evidence([]), expected="db-3", writer="db-2").status == BREACHED
    assert writer.writer_unchanged(evidence([]), before="db-1", writer="db-1").status == MET
    assert writer.writer_unchanged(evidence([]), before="db-1", writer="db-2").status == BREACHED


# --------------------------------------------------------------------------- the application


def test_application_errors_one_verdict_per_load_named_in_it() -> None:
    (verdict,) = load.application_errors(evidence(failover_history()), loads=["oltp/naive"], limit_s=5)
    assert verdict.status == MET and verdict.explanation.startswith("oltp/naive: ")
    (short,) = load.application_errors(evidence(failover_history()), loads=["oltp/naive"], limit_s=2)
    assert short.status == BREACHED
    (none,) = load.no_application_errors(evidence(failover_history()), loads=["oltp/naive"])
    assert none.status == BREACHED and none.measured == 170
    assert load.application_errors(evidence(failover_history()), loads=["other/naive"], limit_s=5) == []


def test_latency_back_at_its_baseline() -> None:
    (verdict,) = load.latency_recovery(evidence(failover_history()), loads=["oltp/naive"], limit_s=10)
    assert verdict.status == MET
    (late,) = load.latency_recovery(evidence(failover_history()), loads=["oltp/naive"], limit_s=1)
    assert late.status == BREACHED


def test_a_load_that_left_no_record_cannot_be_judged() -> None:
    with pytest.raises(ScenarioError, match="the loads left nothing on the timeline"):
        load.no_application_errors(evidence([fault(1.0)]), loads=["oltp/naive"])


def test_the_stop_condition_held_the_fault_back() -> None:
    held = load.stopped_before_the_fault(evidence([second(0, 10, 5)]), aborted="erred on 50%", writer="db-1",
                                         writer_before="db-1")
    assert held.status == MET
    let_through = load.stopped_before_the_fault(evidence([fault(1.0)]), aborted=None, writer="db-2",
                                                writer_before="db-1")
    assert let_through.status == BREACHED and "faults injected: 1" in let_through.explanation


# --------------------------------------------------------------------------- drivers


def test_drivers_compared_side_by_side() -> None:
    verdict = drivers.driver_comparison(evidence([*BOTH, second(0, 10, load="oltp/aws-wrapper") | {"driver": WRAPPER},
                                                  failure(2.0, 2.1, 1, load="oltp/aws-wrapper")]))
    assert verdict.check == "RTO by driver" and verdict.status == MET
    assert "plain driver: RTO 3.750 s" in verdict.explanation
    assert "AWS Advanced Python Wrapper: RTO" in verdict.explanation
    with pytest.raises(ScenarioError, match="comparing drivers needs"):
        drivers.driver_comparison(evidence(FAILOVER))


# --------------------------------------------------------------------------- the report


def test_the_report_gives_one_rto_per_fault() -> None:
    from harness.measure import measure_all
    from harness.report.evidence import verdict_table_html

    records = [write(1, 0.0, 0.1), fault(1.0, "storage-nodes-down"), write(2, 1.1, 1.2, "failed", "e"),
               fault(3.0, "storage-nodes-up"), write(3, 3.1, 3.5)]
    html = verdict_table_html("s", {"verdicts": [], "measurements": measure_all(records)})
    assert "<h4>Faults</h4>" in html
    assert "<td>1</td><td>storage-nodes-down</td><td>+0.000 s</td><td>writes not back before the next fault</td>" in html
    assert "<td>2</td><td>storage-nodes-up</td><td>+2.000 s</td><td>0.500 s, no write failed</td>" in html
