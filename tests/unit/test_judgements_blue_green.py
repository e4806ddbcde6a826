"""Blue/Green judgements over hand-made histories: a completed switchover (nothing lost, downtime
per client, endpoints, old blue, engine version), a refused one, a rolled-back one, DDL on blue,
and the negative control's lost writes named."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import ScenarioError
from harness.judgements import Evidence, blue_green
from harness.targets import load_targets
from harness.verdicts import BREACHED, MET
from tests.unit.test_measure import ledger, write

TARGETS = load_targets()
BLUE = {"cluster": "orders", "endpoint": "10.0.0.1", "reader_endpoint": "10.0.0.2", "engine_version": "15.10",
        "instances": ["orders-1", "orders-2"]}
GREEN = {"cluster": "orders-green-abc123", "endpoint": "10.0.1.1", "reader_endpoint": "10.0.1.2",
         "engine_version": "15.13", "instances": ["orders-1-green-abc123", "orders-2-green-abc123"]}


def served(seq: int, start: float, end: float, server: str, outcome: str = "acknowledged") -> dict[str, Any]:
    return {**write(seq, start, end, outcome, None if outcome == "acknowledged" else "refused"), "server": server}


def deployment() -> dict[str, Any]:
    return {"kind": "blue-green", "t": 1_700_000_000, "m": 0.0, "deployment": "bgd-1", "name": "bg",
            "status": "AVAILABLE", "details": None, "source": BLUE, "target": GREEN, "production": BLUE}


def switchover(start: float, outcome: str = "started", message: str | None = None) -> dict[str, Any]:
    detail = {"deployment": "bgd-1", "outcome": outcome, "timeout_s": 300}
    if message:
        detail.update(code="InvalidBlueGreenDeploymentStateFault", message=message)
    return {"kind": "fault", "t": 1_700_000_000 + start, "m": start, "name": "blue-green-switchover",
            "start": start, "end": start + 0.1, "detail": detail}


def status(at: float, value: str, details: str | None = None) -> dict[str, Any]:
    return {"kind": "blue-green-status", "t": 1_700_000_000 + at, "m": at, "deployment": "bgd-1", "status": value,
            "details": details, "at": at}


def after(value: str, source: dict[str, Any], target: dict[str, Any], production: dict[str, Any],
          details: str | None = None) -> dict[str, Any]:
    return {"kind": "blue-green-after", "t": 1_700_000_100, "m": 100.0, "deployment": "bgd-1", "name": "bg",
            "status": value, "details": details, "source": source, "target": target, "production": production}


def renamed(cluster: dict[str, Any], name: str, instances: list[str], like: dict[str, Any]) -> dict[str, Any]:
    return {**cluster, "cluster": name, "instances": instances, "endpoint": like["endpoint"],
            "reader_endpoint": like["reader_endpoint"]}


def completed(lost: bool = False) -> list[dict[str, Any]]:
    """Writes 1-5 on blue; the switchover at 5.5; 6-8 refused; 9-11 on green (renamed) from 10.
    The ledger holds everything, or (`lost`) not 4 and 5 (acknowledged 4.1, 5.1)."""
    old = renamed(BLUE, "orders-old1", ["orders-1-old1", "orders-2-old1"], GREEN)
    production = renamed(GREEN, "orders", ["orders-1", "orders-2"], BLUE)
    records = [deployment()] + [served(s, s, s + 0.1, "orders-1") for s in range(1, 6)]
    records += [switchover(5.5), status(5.6, "SWITCHOVER_IN_PROGRESS")]
    records += [served(s, s, s + 0.5, "", "failed") for s in (6, 7, 8)]
    records += [served(s, s + 1, s + 1.1, "orders-1") for s in (9, 10, 11)]
    records += [status(10.5, "SWITCHOVER_COMPLETED"), after("SWITCHOVER_COMPLETED", old, production, production)]
    records += [ledger([[1, 3], [9, 11]] if lost else [[1, 11]])]
    return records


def test_a_completed_switchover_loses_nothing_and_keeps_the_application_endpoints() -> None:
    evidence = Evidence.of(completed())
    assert blue_green.switched_over(evidence).status == MET
    (loss,) = blue_green.no_write_lost(evidence, target=TARGETS["blue-green-switchover-rpo"])
    assert loss.status == MET and loss.measured == 0
    endpoints = blue_green.endpoints_unchanged(evidence)
    assert endpoints.status == MET and "production is orders at 10.0.0.1" in endpoints.explanation
    version = blue_green.production_engine_version(evidence)
    assert version.status == MET and "reports 15.13" in version.explanation


def test_the_writes_an_unsafe_switchover_lost_are_named() -> None:
    (loss,) = blue_green.no_write_lost(Evidence.of(completed(lost=True)), target=TARGETS["blue-green-switchover-rpo"])
    assert loss.status == BREACHED and loss.measured == 2
    assert "lost: seq 4, 5" in loss.explanation


def test_downtime_per_write_probe_against_the_documented_minute() -> None:
    (probe,) = blue_green.downtime(Evidence.of(completed()), loads=[],
                                   target=TARGETS["blue-green-switchover-downtime"])
    assert probe.status == MET and probe.check == "switchover downtime, write probe (plain driver)"
    assert probe.measured == pytest.approx(10.1 - 6.0)  # the first refused attempt to the first acknowledged after
    (tight,) = blue_green.downtime(Evidence.of(completed()), loads=[], limit_s=1.0)
    assert tight.status == BREACHED


def test_an_endpoint_that_moved_breaches() -> None:
    records = completed()
    moved = {**records[-2]["production"], "endpoint": "10.9.9.9"}
    records[-2] = {**records[-2], "production": moved}
    assert blue_green.endpoints_unchanged(Evidence.of(records)).status == BREACHED


def test_the_old_blue_refuses_writes() -> None:
    refused = {"kind": "old-blue-write", "t": 1, "m": 1.0, "cluster": "orders-old1", "endpoint": "10.0.1.1",
               "outcome": "refused", "error": "25006 read-only transaction"}
    verdict = blue_green.old_blue_refuses_writes(Evidence.of(completed() + [refused]))
    assert verdict.status == MET and "orders-old1 refused the write" in verdict.explanation
    took = {**refused, "outcome": "acknowledged", "server": "orders-1-old1"}
    assert blue_green.old_blue_refuses_writes(Evidence.of(completed() + [took])).status == BREACHED
    with pytest.raises(ScenarioError):
        blue_green.old_blue_refuses_writes(Evidence.of(completed()))


def test_a_refused_switchover_changes_nothing() -> None:
    records = [deployment()] + [served(s, s, s + 0.1, "orders-1") for s in range(1, 6)]
    records += [switchover(3.0, "refused", "Long-running activity on the blue environment: a write transaction"),
                status(3.2, "AVAILABLE"), after("AVAILABLE", BLUE, GREEN, BLUE), ledger([[1, 5]])]
    verdicts = blue_green.nothing_changed(Evidence.of(records))
    assert [v.status for v in verdicts] == [MET, MET]
    assert "Long-running activity" in verdicts[0].explanation
    assert blue_green.switched_over(Evidence.of(records)).status == BREACHED


def test_a_switchover_that_was_not_refused_breaches_the_guardrail_check() -> None:
    verdicts = blue_green.nothing_changed(Evidence.of(completed()))
    assert [v.status for v in verdicts] == [BREACHED, BREACHED]
    assert "source cluster: orders -> orders-old1" in verdicts[1].explanation


def test_a_switchover_past_its_timeout_is_rolled_back_with_writes_back_on_blue() -> None:
    records = [deployment()] + [served(s, s, s + 0.1, "orders-1") for s in range(1, 4)]
    records += [switchover(3.5), status(3.6, "SWITCHOVER_IN_PROGRESS")]
    records += [served(s, s, s + 0.5, "", "failed") for s in range(4, 34)]
    records += [status(34.0, "SWITCHOVER_FAILED", "Switchover canceled: the green environment did not catch up.")]
    records += [served(s, s + 1, s + 1.1, "orders-1") for s in (34, 35)]
    records += [after("SWITCHOVER_FAILED", BLUE, GREEN, BLUE, "Switchover canceled"), ledger([[1, 3], [34, 35]])]
    evidence = Evidence.of(records)
    assert [v.status for v in blue_green.rolled_back(evidence)] == [MET, MET, MET]
    (probe,) = blue_green.downtime(evidence, loads=[], limit_s=60.0, check="writes refused")
    assert probe.status == MET and probe.measured == pytest.approx(35.1 - 4.0)
    (loss,) = blue_green.no_write_lost(evidence, target=TARGETS["blue-green-switchover-rpo"])
    assert loss.status == MET


def test_ddl_on_blue_is_reported_before_any_switchover() -> None:
    invalid = status(5.0, "INVALID_CONFIGURATION", "Replication degraded: a DDL statement ran on the blue environment")
    verdict = blue_green.not_switchable(Evidence.of([deployment(), status(1.0, "AVAILABLE"), invalid]))
    assert verdict.status == MET and "DDL" in verdict.explanation
    stayed = blue_green.not_switchable(Evidence.of([deployment(), status(1.0, "AVAILABLE")]))
    assert stayed.status == BREACHED and "stayed AVAILABLE" in stayed.explanation
    tried = blue_green.not_switchable(Evidence.of([deployment(), switchover(2.0), invalid]))
    assert tried.status == BREACHED and "attempted first" in tried.explanation


def test_judging_without_a_switchover_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError):
        blue_green.switched_over(Evidence.of([deployment()]))
