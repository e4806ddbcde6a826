"""Trends across scheduled game days: each run's figures in a history, and regressions flagged.

A scheduled game day passing its targets says little about drift: an RTO that doubled from 4 s
to 8 s still meets a 60 s target. So every scenario that ends appends its figures (per driver:
RTO, outage, lost writes, RPO window, visibility lag p99, load errors after the fault) to one
history beside the reports (`reports/trends.jsonl`, one JSON line per scenario, engine and driver
per run), and each figure is compared with the same scenario's previous runs on the same target:
above the median of the last `window` runs by more than `margin` of it (and by at least the
figure's floor, so jitter of a few milliseconds is never a regression), it is flagged. A
regression is a warning, not a breach: the report files the scenario under the "Regression"
category and draws the figure over the runs, the verdicts stay what the targets say.

Settings come from the profile's `[trends]` table (`harness.certify.settings`).
"""

from __future__ import annotations

import fcntl
import json
import os
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from harness.measure import metrics
from harness.targets import quantity, table

__all__ = ["FIGURES", "HISTORY", "Regression", "ScenarioTrend", "TrendSettings", "assess", "figures_of",
           "format_trends", "read_history", "record_scenario", "record_verdict_file", "run_regressions", "trend_html",
           "trend_of"]

HISTORY = "trends.jsonl"
PLAIN = "plain"
# The figures followed, each with its floor: the smallest rise that counts as a regression whatever
# the margin says (a median of 0 lost writes makes any lost write one). None is better higher.
FIGURES: dict[str, float] = {"rto_s": 0.5, "outage_s": 0.5, "lost_count": 0.0, "rpo_s": 0.1, "lag_p99_s": 0.05,
                             "failed_requests": 10.0}
CHART_RUNS = 20  # how many runs a scenario's trend chart shows at most


@dataclass(frozen=True)
class TrendSettings:
    """When a figure is a regression: above the median of the last `window` earlier runs (at least
    `min_runs` of them) by more than `margin` of that median and by more than the figure's floor."""

    margin: float = 0.25
    window: int = 5
    min_runs: int = 2


@dataclass(frozen=True)
class Regression:
    scenario: str
    driver: str
    figure: str
    value: float
    median: float
    threshold: float
    runs: int  # how many earlier runs the median is of

    def sentence(self) -> str:
        """What regressed, as the scenario's own page says it."""
        unit = metrics.unit(self.figure)
        return (f"{figure_label(self.figure, self.driver, unit=False)} {quantity(self.value, unit)} is above "
                f"{quantity(self.median, unit)}, the median of the last {self.runs} runs, beyond the allowed "
                f"{quantity(self.threshold, unit)}")

    def line(self) -> str:
        """The same, named by its scenario, for a run's summary."""
        return f"{self.scenario}: {self.sentence()}"


@dataclass
class ScenarioTrend:
    """One scenario's figures over the runs (oldest first, this run last) and its regressions."""

    scenario: str
    runs: list[str]  # run ids, oldest first; the last is this run
    series: dict[tuple[str, str], list[float | None]]  # (driver, figure) -> a value per run
    allowances: dict[tuple[str, str], float] = field(default_factory=dict)  # the most the last run may show
    regressions: list[Regression] = field(default_factory=list)

    @property
    def points(self) -> int:
        return len(self.runs)


def figure_label(figure: str, driver: str = PLAIN, unit: bool = True) -> str:
    """"RTO (s)", or "RTO (s), aws-wrapper" for another driver than the plain one."""
    symbol = metrics.unit(figure) if unit else ""
    label = f"{metrics.label(figure)}{f' ({symbol})' if symbol else ''}"
    return label if driver == PLAIN else f"{label}, {driver}"


def figures_of(document: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per driver, the trend figures of one `verdict.json` (the plain driver's from the checkers of
    the whole scenario, another driver's from `by_driver`); None where it was not measured."""
    measured = document.get("measurements") or {}
    loads = _entries(measured.get("load"), "loads")
    by_driver = _entries(measured.get("by_driver"), "drivers")
    figures = {PLAIN: {
        "rto_s": _value(measured.get("rto"), "rto_s"),
        "outage_s": _value(measured.get("rto"), "outage_s"),
        "lost_count": _value(measured.get("data_loss"), "lost_count"),
        "rpo_s": _value(measured.get("data_loss"), "rpo_s"),
        "lag_p99_s": _worst(r.get("lag_p99_s") for r in _entries(measured.get("visibility_lag"), "probes").values()),
        "failed_requests": _total(load.get("failed_requests") for load in loads.values()
                                  if load.get("driver", PLAIN) == PLAIN),
    }}
    for driver, entry in by_driver.items():
        if driver == PLAIN:
            continue
        figures[driver] = {
            "rto_s": _value(entry.get("rto"), "rto_s"), "outage_s": _value(entry.get("rto"), "outage_s"),
            "lost_count": _value(entry.get("data_loss"), "lost_count"),
            "rpo_s": _value(entry.get("data_loss"), "rpo_s"), "lag_p99_s": None,
            "failed_requests": _total(load.get("failed_requests") for load in (entry.get("loads") or {}).values()),
        }
    return {driver: values for driver, values in figures.items() if any(v is not None for v in values.values())}


def record_scenario(history: Path, document: Mapping[str, Any], *, run_id: str, target: str, engine: str,
                    settings: TrendSettings = TrendSettings(), when: datetime | None = None) -> ScenarioTrend:
    """Append one scenario's figures to the history, then compare them with its earlier runs."""
    scenario = str(document.get("scenario", ""))
    when = when or datetime.now(timezone.utc)
    lines = [{"run_id": run_id, "time": when.isoformat(timespec="seconds"), "target": target, "engine": engine,
              "scenario": scenario, "driver": driver, "status": document.get("status"), "figures": values}
             for driver, values in figures_of(document).items()]
    if lines:
        _append(history, lines)
    return trend_of(read_history(history), target=target, scenario=scenario, run_id=run_id, settings=settings)


def record_verdict_file(verdict_file: Path, *, history: Path, run_id: str, target: str, engine: str,
                        settings: TrendSettings = TrendSettings()) -> ScenarioTrend | None:
    """`record_scenario` for a scenario's `verdict.json`; None when it wrote none (a dry run)."""
    if not Path(verdict_file).exists():
        return None
    document = json.loads(Path(verdict_file).read_text(encoding="utf-8"))
    return record_scenario(history, document, run_id=run_id, target=target, engine=engine, settings=settings)


def run_regressions(history: Path, *, run_id: str, target: str,
                    settings: TrendSettings = TrendSettings()) -> list[Regression]:
    """Every regression of one run, over all its scenarios (as their teardown flagged them)."""
    entries = read_history(history)
    scenarios = sorted({e["scenario"] for e in entries if e["run_id"] == run_id and e.get("target") == target})
    return [regression for scenario in scenarios
            for regression in trend_of(entries, target=target, scenario=scenario, run_id=run_id,
                                       settings=settings).regressions]


def trend_of(entries: Iterable[Mapping[str, Any]], *, target: str, scenario: str, run_id: str,
             settings: TrendSettings = TrendSettings()) -> ScenarioTrend:
    """The scenario's series over its runs up to `run_id` (the last point) and that run's regressions."""
    mine = [e for e in entries if e.get("target") == target and e.get("scenario") == scenario]
    runs = _runs_in_order(mine)
    if run_id in runs:
        runs = runs[:runs.index(run_id) + 1]
    runs = runs[-CHART_RUNS:]
    by_key = {(e["run_id"], e["driver"]): e.get("figures") or {} for e in mine}
    drivers = sorted({e["driver"] for e in mine}, key=lambda d: (d != PLAIN, d))
    series: dict[tuple[str, str], list[float | None]] = {}
    for driver in drivers:
        for figure in FIGURES:
            values = [by_key.get((run, driver), {}).get(figure) for run in runs]
            if any(v is not None for v in values):
                series[(driver, figure)] = values
    trend = ScenarioTrend(scenario, runs, series)
    if runs and runs[-1] == run_id:
        assess(trend, settings)
    return trend


def assess(trend: ScenarioTrend, settings: TrendSettings) -> None:
    """Fill in each figure's allowance for the trend's last run (the earlier runs' median plus the
    margin, at least plus the floor) and the figures above it."""
    for (driver, figure), values in trend.series.items():
        value, earlier = values[-1], [v for v in values[:-1] if v is not None][-settings.window:]
        if len(earlier) < max(1, settings.min_runs):
            continue
        median = statistics.median(earlier)
        threshold = median + max(settings.margin * abs(median), FIGURES[figure])
        trend.allowances[(driver, figure)] = threshold
        if value is not None and value > threshold:
            trend.regressions.append(Regression(trend.scenario, driver, figure, value, median, threshold,
                                                len(earlier)))


def read_history(path: Path) -> list[dict[str, Any]]:
    """Every entry of the history (a torn or foreign line is skipped); a missing history is empty."""
    entries = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and {"run_id", "scenario", "driver"} <= set(entry):
            entries.append(entry)
    return entries


def format_trends(entries: list[dict[str, Any]], *, runs: int = 5, settings: TrendSettings = TrendSettings(),
                  scenario: str | None = None) -> str:
    """`gameday trends`: one row per scenario, driver and figure, its values over the last `runs`
    runs (columns, oldest first), and whether the latest is a regression."""
    if scenario:
        entries = [e for e in entries if scenario.lower() in str(e["scenario"]).lower()]
    if not entries:
        return "no game day has recorded trends yet" + (f" for {scenario!r}" if scenario else "")
    columns = _runs_in_order(entries)[-runs:]
    rows = [("TARGET", "SCENARIO", "FIGURE", *columns, "LATEST")]
    keys = sorted({(e.get("target", ""), e["scenario"]) for e in entries})
    for target, name in keys:
        trend = trend_of(entries, target=target, scenario=name, run_id=_runs_in_order(
            [e for e in entries if e.get("target", "") == target and e["scenario"] == name])[-1], settings=settings)
        flagged = {(r.driver, r.figure) for r in trend.regressions}
        for (driver, figure), values in trend.series.items():
            by_run = dict(zip(trend.runs, values))
            cells = [_cell(by_run.get(run)) for run in columns]
            rows.append((target, name, figure_label(figure, driver), *cells,
                         "REGRESSION" if (driver, figure) in flagged else ""))
    return table(rows)


def trend_html(trend: ScenarioTrend, chart_svg: str) -> str:
    """The trend section of a scenario's verdicts page: warnings, then the chart."""
    if trend.points < 2:
        return (f"<h4>Trend</h4><p>The first recorded run of this scenario on this target: later runs are "
                f"compared with it.</p>{chart_svg}")
    warnings = "".join(f'<div class="banner aborted">Regression: {escape(r.sentence())}</div>'
                       for r in trend.regressions)
    return f"<h4>Trend over the last {trend.points} runs</h4>{warnings}{chart_svg}"


def _append(history: Path, lines: list[dict[str, Any]]) -> None:
    """One write under an exclusive lock, so scenarios of concurrent runs never interleave a line;
    after a torn last line (a run killed mid-write) on a line of its own."""
    history.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n" for line in lines).encode()
    with open(history, "a+b") as out:
        fcntl.flock(out, fcntl.LOCK_EX)
        try:
            if out.seek(0, os.SEEK_END) > 0:
                out.seek(-1, os.SEEK_END)
                if out.read(1) != b"\n":
                    text = b"\n" + text
            out.write(text)
            out.flush()
        finally:
            fcntl.flock(out, fcntl.LOCK_UN)


def _runs_in_order(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Run ids by the time of their first entry (an id names one run)."""
    first: dict[str, str] = {}
    for entry in entries:
        run, when = str(entry["run_id"]), str(entry.get("time", ""))
        if run not in first or when < first[run]:
            first[run] = when
    return sorted(first, key=lambda run: (first[run], run))


def _entries(checker: Any, key: str) -> dict[str, Any]:
    if isinstance(checker, Mapping) and checker.get("measured") and isinstance(checker.get(key), Mapping):
        return dict(checker[key])
    return {}


def _value(checker: Any, key: str) -> float | None:
    if isinstance(checker, Mapping) and checker.get("measured"):
        value = checker.get(key)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return None


def _worst(values: Iterable[Any]) -> float | None:
    numbers = [v for v in values if isinstance(v, (int, float))]
    return max(numbers) if numbers else None


def _total(values: Iterable[Any]) -> int | None:
    numbers = [v for v in values if isinstance(v, int)]
    return sum(numbers) if numbers else None


def _cell(value: float | None) -> str:
    return "-" if value is None else quantity(value, "")
