"""Verdicts: PolicyMet / PolicyBreached, the sentence that explains them, and verdict.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.targets import Source, Target
from harness.verdicts import (
    BREACHED,
    MET,
    Verdict,
    format_verdict_table,
    judge,
    judge_target,
    overall_status,
    write_verdict_file,
)

FAILOVER_TARGET = Target(
    id="failover-with-replicas",
    title="Writes are back within a minute",
    metric="rto_s",
    limit=60.0,
    unit="s",
    comparison="<",
    kind="documented-typical",
    source=Source(title="High availability for Amazon Aurora", wording="..."),
)
RPO_TARGET = Target(
    id="in-region-acknowledged-writes",
    title="No acknowledged write is lost",
    metric="lost_count",
    limit=0.0,
    unit="writes",
    comparison="<=",
    kind="interpreted",
    source=Source(
        title="Amazon Aurora under the hood: quorums and correlated failure", wording="..."
    ),
)


def test_met_against_a_catalog_target() -> None:
    assert judge_target(FAILOVER_TARGET, 12.4) == Verdict(
        check="RTO",
        metric="rto_s",
        measured=12.4,
        limit=60.0,
        unit="s",
        comparison="<",
        status=MET,
        target_id="failover-with-replicas",
        source_title="High availability for Amazon Aurora",
        explanation="RTO 12.4 s < 60 s (High availability for Amazon Aurora)",
    )


def test_breached_names_the_bound_it_missed() -> None:
    verdict = judge_target(FAILOVER_TARGET, 72.1, check="writer failover RTO")
    assert (verdict.status, verdict.check) == (BREACHED, "writer failover RTO")
    assert verdict.explanation == (
        "RTO 72.1 s ≥ 60 s, breaching < 60 s (High availability for Amazon Aurora)"
    )


def test_limit_written_in_the_scenario() -> None:
    verdict = judge("rto_s", 12.4, 60, "<=", "s")
    assert (verdict.status, verdict.target_id, verdict.source_title) == (MET, None, None)
    assert verdict.explanation == "RTO 12.4 s ≤ 60 s (limit set in the scenario)"


@pytest.mark.parametrize(
    ("measured", "comparison", "status"),
    [(60.0, "<", BREACHED), (60.0, "<=", MET), (59.999, "<", MET), (60.001, "<=", BREACHED)],
)
def test_the_boundary_follows_the_comparison(
    measured: float, comparison: str, status: str
) -> None:
    assert judge("rto_s", measured, 60, comparison, "s").status == status


def test_a_zero_limit_is_judged_honestly() -> None:
    assert judge_target(RPO_TARGET, 0).status == MET
    lost = judge_target(RPO_TARGET, 3)
    assert lost.status == BREACHED
    assert lost.explanation == (
        "data loss 3 writes > 0 writes, breaching ≤ 0 writes "
        "(Amazon Aurora under the hood: quorums and correlated failure)"
    )


def test_no_measured_value_is_breached_and_says_why() -> None:
    verdict = judge_target(
        FAILOVER_TARGET, None, reason="writes never recovered before the timeline ended"
    )
    assert verdict.status == BREACHED
    assert verdict.explanation == (
        "RTO has no measured value: writes never recovered before the timeline ended, "
        "so it is not shown < 60 s (High availability for Amazon Aurora)"
    )
    assert judge("lag_p99_s", None, 0.1, "<", "s").explanation == (
        "visibility lag p99 has no measured value, so it is not shown < 0.1 s "
        "(limit set in the scenario)"
    )


def test_higher_is_better_comparisons_for_scenario_limits() -> None:
    assert judge("availability", 0.995, 0.99, ">=", "").status == MET
    assert judge("availability", 0.98, 0.99, ">=", "").explanation == (
        "read availability 0.98 < 0.99, breaching ≥ 0.99 (limit set in the scenario)"
    )


def test_judge_refuses_unknown_comparisons_and_mismatched_targets() -> None:
    with pytest.raises(ValueError, match="unknown comparison '=='"):
        judge("rto_s", 1.0, 60, "==", "s")
    with pytest.raises(ValueError, match="judges rto_s, not outage_s"):
        judge("outage_s", 1.0, 60, "<", "s", target=FAILOVER_TARGET)


def test_overall_status() -> None:
    met, breached = judge_target(FAILOVER_TARGET, 10.0), judge_target(FAILOVER_TARGET, 90.0)
    assert overall_status([met, met]) == MET
    assert overall_status([met, breached]) == BREACHED
    assert overall_status([]) == MET


def test_verdict_file_holds_status_verdicts_and_measurements(tmp_path: Path) -> None:
    verdicts = [judge_target(FAILOVER_TARGET, 12.4), judge_target(RPO_TARGET, 2)]
    measurements = {"rto": {"measured": True, "rto_s": 12.4}}
    path = tmp_path / "run" / "verdict.json"
    assert write_verdict_file(path, "writer failover", verdicts, measurements) == path
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["scenario"] == "writer failover"
    assert document["status"] == BREACHED
    assert [v["status"] for v in document["verdicts"]] == [MET, BREACHED]
    assert document["verdicts"][1]["target_id"] == "in-region-acknowledged-writes"
    assert document["measurements"] == measurements


def test_verdict_table_for_the_terminal() -> None:
    text = format_verdict_table([
        judge_target(FAILOVER_TARGET, 12.4),
        judge_target(FAILOVER_TARGET, None),
        judge("availability", 0.995, 0.99, ">=", ""),
    ])
    lines = text.splitlines()
    assert lines[0].split() == ["STATUS", "CHECK", "MEASURED", "TARGET", "SOURCE"]
    assert lines[1].split("  ")[0] == "✓ MET"
    assert "✗ BREACHED" in lines[2] and "not measured" in lines[2]
    assert lines[3].endswith("scenario")
    assert lines[-1] == "PolicyBreached: 1 of 3 checks breached"
    source_column = lines[0].index("SOURCE")
    assert lines[1][source_column:] == "High availability for Amazon Aurora"
