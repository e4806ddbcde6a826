"""Global Database judgements over hand-made histories: what a switchover or failover lost, the
RTO to the first write in the new Region, roles, rejoin, cross-Region lag and managed RPO."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import ScenarioError
from harness.judgements import Evidence, global_database
from harness.targets import load_targets
from harness.verdicts import BREACHED, MET
from tests.unit.test_measure import fault, ledger, read, write
from tests.unit.test_measure_load import failure, second

TARGETS = load_targets()
EAST, WEST = "us-east-1", "us-west-2"


def served(seq: int, start: float, end: float, server: str, outcome: str = "acknowledged") -> dict[str, Any]:
    return {**write(seq, start, end, outcome, None if outcome == "acknowledged" else "refused"), "server": server}


def members() -> dict[str, Any]:
    return {"kind": "global-database", "t": 1_700_000_000, "m": 0.0, "identifier": "g",
            "regions": {"primary": EAST, "secondary": WEST},
            "instances": {EAST: ["east-1"], WEST: ["west-1"]}}


def topology(m: float, writer: str, sync: dict[str, str], failover: str | None = None) -> dict[str, Any]:
    return {"kind": "global-topology", "t": 1_700_000_000 + m, "m": m, "writer_region": writer,
            "failover_state": failover,
            "regions": {region: {"cluster": f"c-{region}", "writer": region == writer, "sync": status}
                        for region, status in sync.items()}}


def outage_then_failover() -> list[dict[str, Any]]:
    """Writes 1-10 in us-east-1 (one a second); the Region goes out at 10.5; 11-13 refused; the
    failover call at 13.5; writes 14-16 acknowledged in us-west-2 from 15. The new primary holds
    1-7 and 14-16: 8, 9 and 10 (acknowledged 8.1, 9.1, 10.1) had not crossed."""
    records = [members()]
    records += [served(s, s, s + 0.1, "east-1") for s in range(1, 11)]
    records += [fault(10.5, "region-outage")]
    records += [served(s, s, s + 0.5, "", "failed") for s in (11, 12, 13)]
    records += [fault(13.5, "global-failover")]
    records += [served(14, 14.0, 15.0, "west-1"), served(15, 15.0, 15.1, "west-1"), served(16, 16, 16.1, "west-1")]
    records += [ledger([[1, 7], [14, 16]])]
    return records


def test_a_failover_rpo_names_the_lost_writes_and_their_window() -> None:
    (verdict,) = global_database.failover_rpo(Evidence.of(outage_then_failover()),
                                              target=TARGETS["global-database-failover-rpo"])
    assert verdict.status == MET and verdict.target_id == "global-database-failover-rpo"
    assert verdict.measured == pytest.approx(2.0)  # 8.1 (earliest lost) to 10.1 (newest before the failover)
    assert "3 of 13 acknowledged writes lost (seq 8, 9, 10), acknowledged over 2.000 s" in verdict.explanation
    (tight,) = global_database.failover_rpo(Evidence.of(outage_then_failover()), limit_s=1.0)
    assert tight.status == BREACHED


def test_the_negative_control_names_exactly_the_writes_lost() -> None:
    (verdict,) = global_database.no_write_lost(Evidence.of(outage_then_failover()))
    assert (verdict.status, verdict.measured) == (BREACHED, 3)
    assert "(seq 8, 9, 10)" in verdict.explanation
    intact = [r for r in outage_then_failover() if r["kind"] != "ledger"] + [ledger([[1, 16]])]
    assert global_database.no_write_lost(Evidence.of(intact))[0].status == MET


def test_rto_counts_from_the_outage_or_the_failover_to_the_first_write_in_the_new_region() -> None:
    records = outage_then_failover()
    target = TARGETS["global-database-rto"]
    (from_outage,) = global_database.recovery(Evidence.of(records), target=target, since="outage", new_region=WEST)
    (from_failover,) = global_database.recovery(Evidence.of(records), target=target, since="failover",
                                                new_region=WEST)
    assert from_outage.measured == pytest.approx(4.5) and from_failover.measured == pytest.approx(1.5)
    assert from_outage.status == from_failover.status == MET
    # A write the old Region still acknowledged is not recovery in the new one.
    late = records + [served(17, 13.6, 13.7, "east-1")]
    (still,) = global_database.recovery(Evidence.of(late), target=target, since="failover", new_region=WEST)
    assert still.measured == pytest.approx(1.5)
    with pytest.raises(ScenarioError, match="no switchover"):
        global_database.recovery(Evidence.of(records), target=target, since="switchover", new_region=WEST)


def test_writes_refused_is_the_write_outage_of_the_switchover() -> None:
    records = [members(), served(1, 0.0, 0.1, "east-1"), fault(1.0, "global-switchover"),
               served(2, 1.5, 2.0, "", "failed"), served(3, 2.0, 3.0, "", "failed"), served(4, 3.0, 3.5, "west-1")]
    (verdict,) = global_database.writes_refused(Evidence.of(records), limit_s=1.0)
    assert (verdict.status, verdict.measured, verdict.check) == (BREACHED, 2.0, "writes refused")
    assert global_database.writes_refused(Evidence.of(records), limit_s=60)[0].status == MET


def test_writes_refused_judges_each_client_the_wrapper_probe_and_each_load_on_its_own() -> None:
    records = [members(), served(1, 0.0, 0.1, "east-1"), fault(1.0, "global-switchover"),
               served(2, 1.5, 2.0, "", "failed"), served(3, 2.0, 3.0, "", "failed"), served(4, 3.0, 3.5, "west-1")]
    wrapper = [{**served(s, start, end, server, outcome), "driver": "aws-wrapper"}
               for s, start, end, server, outcome in ((1, 0.0, 0.1, "east-1", "acknowledged"),
                                                      (2, 1.2, 1.4, "", "failed"),
                                                      (3, 1.6, 1.7, "west-1", "acknowledged"))]
    loads = [second(s, 10, load=name) for s in range(0, 6) for name in ("oltp/naive", "oltp/aws-wrapper")]
    loads += [failure(1.2, 4.7, 30, load="oltp/naive"), failure(1.1, 1.6, 3, load="oltp/aws-wrapper")]
    verdicts = global_database.writes_refused(Evidence.of(records + wrapper + loads), limit_s=2.0,
                                              loads=["oltp/naive", "oltp/aws-wrapper"])
    found = {v.check: (v.status, v.measured) for v in verdicts}
    assert found == {"writes refused": (MET, pytest.approx(2.0)),  # at the limit
                     "writes refused, AWS Advanced Python Wrapper": (MET, pytest.approx(0.5)),
                     "writes refused, load oltp/naive": (BREACHED, pytest.approx(3.5)),
                     "writes refused, load oltp/aws-wrapper": (MET, pytest.approx(0.5))}


def test_roles_swapped_and_rejoined_read_the_last_recorded_topology() -> None:
    before = topology(1.0, EAST, {EAST: "", WEST: "connected"})
    after = topology(5.0, WEST, {EAST: "connected", WEST: ""})
    swapped = global_database.roles_swapped(Evidence.of([before, after]), writer_region=WEST, secondary_region=EAST)
    assert swapped.status == MET and "us-east-1's cluster c-us-east-1 is a secondary" in swapped.explanation
    mid = topology(5.0, WEST, {EAST: "", WEST: ""}, failover="switching-over")
    assert global_database.roles_swapped(Evidence.of([before, mid]), writer_region=WEST,
                                         secondary_region=EAST).status == BREACHED

    back = {"kind": "action", "t": 0, "m": 6.1, "name": "region-returns", "start": 6.0, "end": 6.1}
    resyncing = topology(6.5, WEST, {EAST: "pending-resync", WEST: ""})
    connected = topology(9.0, WEST, {EAST: "connected", WEST: ""})
    assert global_database.rejoined(Evidence.of([back, resyncing]), region=EAST).status == BREACHED
    assert global_database.rejoined(Evidence.of([back, resyncing, connected]), region=EAST).status == MET
    # a topology from before the Region returned proves nothing
    assert global_database.rejoined(Evidence.of([after, back]), region=EAST).status == BREACHED
    with pytest.raises(ScenarioError):
        global_database.rejoined(Evidence.of([after]), region=EAST)


def test_cross_region_lag_judges_p50_and_p99_on_the_secondary_before_any_fault() -> None:
    records = [write(s, s, s + 0.1) for s in range(1, 101)]
    # The secondary shows each write 0.3 s after its ack, but every 50th only with the next one
    # (1.3 s); a reader in the primary Region does not count.
    records += [read("secondary:west-1", s + 0.35, s + 0.4, s - 1 if s % 50 == 0 else s) for s in range(1, 101)]
    records += [read("reader:east-2", s + 5, s + 5.1, s) for s in range(1, 101)]
    target = TARGETS["global-database-replication-latency"]
    p50, p99 = global_database.replication_lag(Evidence.of(records), target=target)
    assert (p50.metric, p50.status, p50.measured) == ("lag_p50_s", MET, pytest.approx(0.3))
    assert (p99.metric, p99.status, p99.measured) == ("lag_p99_s", BREACHED, pytest.approx(1.3))
    assert p99.target_id == p50.target_id == "global-database-replication-latency"
    # What follows a fault is not the steady state: a write seen a minute after the failover does not count.
    steady = [write(s, s, s + 0.1) for s in range(1, 101)]
    steady += [read("secondary:west-1", s + 0.35, s + 0.4, s) for s in range(1, 101)]
    late = steady + [fault(101.0, "global-failover"), write(101, 101.0, 101.1), read("secondary:west-1", 160, 161, 101)]
    assert global_database.replication_lag(Evidence.of(late), target=target)[1].status == MET


def test_commits_held_once_the_rpo_lag_passed_the_parameter() -> None:
    records = [fault(10.0, "region-link-cut")]
    records += [write(s, 10 + s * 0.5, 10 + s * 0.5 + 0.05) for s in range(1, 42)]  # acked until 30.55
    records += [write(42, 30.6, 32.6, "unknown"), write(43, 32.6, 34.6, "unknown")]
    held = global_database.commits_held(Evidence.of(records), rpo_s=20, tolerance_s=5)
    assert (held.status, held.measured) == (MET, pytest.approx(20.55))
    early = [fault(10.0, "region-link-cut")] + [write(s, 10 + s, 10.05 + s) for s in range(1, 5)] + [
        write(5, 15, 40, "unknown")]
    assert global_database.commits_held(Evidence.of(early), rpo_s=20, tolerance_s=5).status == BREACHED
