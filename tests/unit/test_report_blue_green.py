"""The Blue/Green report: the switchover's phases as a band, writes by environment, and the
downtime per client (hand-made histories from tests/unit/test_judgements_blue_green.py)."""

from __future__ import annotations

from harness.report.blue_green import blue_green_svg, blue_green_tables_html, phase_spans
from tests.unit.test_judgements_blue_green import completed
from tests.unit.test_measure import write


def test_the_phases_run_from_available_through_the_switchover() -> None:
    spans = phase_spans(completed(), 0.0, 20.0)
    assert [s for s, _, _ in spans] == ["AVAILABLE", "SWITCHOVER_IN_PROGRESS", "SWITCHOVER_COMPLETED"]
    assert spans[1][1:] == (5.6, 10.5) and spans[-1][2] == 20.0


def test_the_chart_shows_the_phases_and_the_table_the_downtime_per_client() -> None:
    svg = blue_green_svg(completed(), "Switchover")
    assert svg is not None and "<title>SWITCHOVER_IN_PROGRESS</title>" in svg and "writes on green" in svg
    table = blue_green_tables_html(completed())
    assert "Switchover downtime per client" in table and "<td>write probe (plain)</td><td>4.100 s</td>" in table


def test_a_timeline_without_a_deployment_has_no_blue_green_report() -> None:
    assert blue_green_svg([write(1, 0.0, 0.1)], "x") is None and blue_green_tables_html([write(1, 0.0, 0.1)]) == ""


def test_the_timeline_chart_marks_the_switchovers_phases() -> None:
    from harness.report.chart import timeline_svg

    svg = timeline_svg(completed(), "Switchover")
    assert "⇄ switchover in progress" in svg and "⇄ switchover completed" in svg
    assert "Blue/Green deployment bgd-1: SWITCHOVER_COMPLETED" in svg
