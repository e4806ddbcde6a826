"""Trends across runs: the figures each run appends, the regression rule, the chart and the table."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from harness.certify.settings import SettingsError, certification_settings, trend_settings
from harness.certify.trend_chart import trend_svg
from harness.certify.trends import (HISTORY, ScenarioTrend, TrendSettings, assess, figures_of, format_trends,
                                    read_history, record_scenario, run_regressions, trend_of)
from tests.unit.certify_support import TITLE, make_run

SVG = "{http://www.w3.org/2000/svg}"


def document(rto: float | None = 4.0, lost: int = 0, **extra: Any) -> dict[str, Any]:
    return {"scenario": "Failover on Aurora PostgreSQL", "status": "PolicyMet", "measurements": {
        "rto": {"measured": True, "rto_s": rto, "outage_s": 3.5},
        "data_loss": {"measured": True, "lost_count": lost, "rpo_s": 0.0},
        "visibility_lag": {"measured": True, "probes": {"reader:db-2": {"lag_p99_s": 0.01},
                                                        "reader-endpoint": {"lag_p99_s": 0.03}}},
        "load": {"measured": False, "reason": "no load ran"}, **extra}}


def test_figures_per_driver_from_verdict_json() -> None:
    by_driver = {"measured": True, "drivers": {
        "plain": {"rto": {"measured": True, "rto_s": 4.0}, "data_loss": {"measured": True, "lost_count": 0},
                  "loads": {}},
        "aws-wrapper": {"rto": {"measured": True, "rto_s": 1.5, "outage_s": 1.2},
                        "data_loss": {"measured": False, "reason": "no ledger read"},
                        "loads": {"oltp/aws-wrapper": {"failed_requests": 3}}}}}
    loads = {"measured": True, "loads": {"oltp/naive": {"driver": "plain", "failed_requests": 40},
                                         "oltp/resilient": {"driver": "plain", "failed_requests": 0},
                                         "oltp/aws-wrapper": {"driver": "aws-wrapper", "failed_requests": 3}}}
    figures = figures_of(document(load=loads, by_driver=by_driver))
    assert figures["plain"] == {"rto_s": 4.0, "outage_s": 3.5, "lost_count": 0, "rpo_s": 0.0, "lag_p99_s": 0.03,
                                "failed_requests": 40}
    assert figures["aws-wrapper"] == {"rto_s": 1.5, "outage_s": 1.2, "lost_count": None, "rpo_s": None,
                                      "lag_p99_s": None, "failed_requests": 3}
    assert figures_of({"scenario": "broken before any probe", "measurements": {}}) == {}


def test_three_runs_give_three_points_per_figure_and_a_larger_rto_is_a_regression(tmp_path: Path) -> None:
    for run_id, rto in (("r1", 3.0), ("r2", 3.2), ("r3", 8.0)):
        make_run(tmp_path, run_id, rto=rto, limit=60)
    history = read_history(tmp_path / HISTORY)
    assert [e["run_id"] for e in history] == ["r1", "r2", "r3"]
    trend = trend_of(history, target="emulator", scenario=TITLE, run_id="r3")
    assert trend.runs == ["r1", "r2", "r3"]
    assert trend.series[("plain", "rto_s")] == [3.0, 3.2, 8.0]
    assert all(len(values) == 3 for values in trend.series.values())
    assert [r.figure for r in trend.regressions] == ["rto_s", "outage_s"]  # the outage grew with it
    regression = trend.regressions[0]
    assert (regression.value, regression.median, regression.threshold) == (8.0, 3.1, 3.875)
    assert regression.sentence() == ("RTO 8 s is above 3.1 s, the median of the last 2 runs, beyond the allowed "
                                     "3.875 s")
    assert [r.line() for r in run_regressions(tmp_path / HISTORY, run_id="r3", target="emulator")][0] == \
        f"{TITLE}: {regression.sentence()}"
    assert not run_regressions(tmp_path / HISTORY, run_id="r2", target="emulator"), "r2 was in line with r1"
    # the scenario's own evidence: the chart with a point per run and the warning in its verdicts page
    directory = next((tmp_path / "r3").glob("scenarios/*/*"))
    chart = ET.fromstring((directory / "trend.svg").read_text())
    assert len(chart.findall(f".//{SVG}circle")) == 3 * len(trend.series)
    assert "Regression: RTO 8 s is above 3.1 s" in (directory / "verdicts.html").read_text()
    assert "<svg" in (directory / "verdicts.html").read_text(), "the chart is in the verdicts page too"


def trend(values: list[float | None], figure: str = "rto_s") -> ScenarioTrend:
    return ScenarioTrend("s", [f"r{i}" for i in range(len(values))], {("plain", figure): values})


@pytest.mark.parametrize(("values", "figure", "settings", "flagged"), [
    ([4.0, 4.2, 5.0], "rto_s", TrendSettings(), False),  # within 25 % of the median (4.1 -> 5.125)
    ([4.0, 4.2, 5.2], "rto_s", TrendSettings(), True),
    ([0.01, 0.01, 0.4], "rto_s", TrendSettings(), False),  # 40x, but within the 0.5 s floor
    ([0, 0, 1], "lost_count", TrendSettings(), True),  # one lost write where none was lost
    ([4.0, 5.2], "rto_s", TrendSettings(), False),  # one earlier run: not enough to judge
    ([4.0, 5.2], "rto_s", TrendSettings(min_runs=1), True),
    ([9.0, 9.0, 9.0, 4.0, 4.0, 5.2], "rto_s", TrendSettings(window=2), True),  # only the last 2 runs count
    ([4.0, 4.2, 5.0], "rto_s", TrendSettings(margin=0.1), True),
    ([4.0, None, 4.2, 5.2], "rto_s", TrendSettings(), True),  # a run without the figure is skipped
    ([4.0, 4.2, None], "rto_s", TrendSettings(), False),
])
def test_the_regression_rule(values: list[float | None], figure: str, settings: TrendSettings, flagged: bool) -> None:
    judged = trend(values, figure)
    assess(judged, settings)
    assert bool(judged.regressions) is flagged


def test_the_history_survives_a_torn_line_and_foreign_lines(tmp_path: Path) -> None:
    history = tmp_path / HISTORY
    record_scenario(history, document(4.0), run_id="a", target="emulator", engine="aurora-postgresql")
    with open(history, "a") as out:
        out.write('{"not": "a trend"}\n[1, 2]\n{"run_id": "b", "scen')
    record_scenario(history, document(4.1), run_id="c", target="emulator", engine="aurora-postgresql")
    assert [e["run_id"] for e in read_history(history)] == ["a", "c"]
    assert read_history(tmp_path / "missing.jsonl") == []


def test_trends_table_flags_the_regression_and_filters_by_scenario(tmp_path: Path) -> None:
    history = tmp_path / HISTORY
    for run_id, rto in (("r1", 4.0), ("r2", 4.2), ("r3", 9.0)):
        record_scenario(history, document(rto), run_id=run_id, target="emulator", engine="aurora-postgresql")
    table = format_trends(read_history(history), runs=2)
    header, *rows = table.splitlines()
    assert header.split()[:3] == ["TARGET", "SCENARIO", "FIGURE"] and "r1" not in header and "r3" in header
    rto = next(row for row in rows if "RTO (s)" in row)
    assert "4.2" in rto and "9" in rto and rto.endswith("REGRESSION")
    assert not any(row.endswith("REGRESSION") for row in rows if "RTO (s)" not in row)
    assert format_trends(read_history(history), scenario="nothing like it") == \
        "no game day has recorded trends yet for 'nothing like it'"


def test_a_chart_with_nothing_measured_is_still_a_valid_svg() -> None:
    empty = ScenarioTrend("quiet", ["r1"], {})
    assert "No figure was measured" in ET.tostring(ET.fromstring(trend_svg(empty)), encoding="unicode")


def test_profile_tables(tmp_path: Path) -> None:
    profile = tmp_path / "gameday.toml"
    profile.write_text('[trends]\nmargin = 0.5\nwindow = 3\n[certification]\ntags = "@certification and not @slow"\n'
                       'features = ["dr"]\nname = "Orders"\n')
    assert trend_settings(profile) == TrendSettings(margin=0.5, window=3, min_runs=2)
    settings = certification_settings(profile)
    assert (settings.tags, settings.features, settings.name) == ("@certification and not @slow",
                                                                 [(tmp_path / "dr").resolve()], "Orders")
    assert trend_settings(None) == TrendSettings() and certification_settings(None).tags == "@certification"
    for read, bad, said in (
            (trend_settings, "[trends]\nmargin = -1\n", "margin must be"),
            (trend_settings, "[trends]\nwindow = 0\n", "window must be"),
            (trend_settings, "trends = 1\n", r"\[trends\] must be a table"),
            (trend_settings, "[trends\n", "cannot read profile"),
            (certification_settings, "[certification]\ntags = 3\n", "tags must be"),
            (certification_settings, "[certification]\nfeatures = 'x'\n", "features must be")):
        profile.write_text(bad)
        with pytest.raises(SettingsError, match=said):
            read(profile)


def test_history_lines_are_plain_json(tmp_path: Path) -> None:
    record_scenario(tmp_path / HISTORY, document(4.0), run_id="a", target="aws", engine="aurora-mysql")
    (line,) = (tmp_path / HISTORY).read_text().splitlines()
    entry = json.loads(line)
    assert {k: entry[k] for k in ("run_id", "target", "engine", "scenario", "driver", "status")} == {
        "run_id": "a", "target": "aws", "engine": "aurora-mysql", "scenario": "Failover on Aurora PostgreSQL",
        "driver": "plain", "status": "PolicyMet"}
    assert entry["figures"]["rto_s"] == 4.0
