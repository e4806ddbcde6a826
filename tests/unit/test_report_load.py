"""The load in the report: a lane on the chart's time axis, and the load summary page."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

from harness.load import histogram
from harness.measure import measure_all
from harness.report.chart import timeline_svg
from harness.report.load_summary import load_summary_html

Record = dict[str, Any]
T0, M0 = 1_700_000_000.0, 2_000.0
SVG = "{http://www.w3.org/2000/svg}"


def at(kind: str, seconds: float, **fields: Any) -> Record:
    return {"kind": kind, "t": T0 + seconds, "m": M0 + seconds, **fields}


def load_second(seconds: int, requests: int, failures: int, load: str = "oltp/naive") -> Record:
    times: histogram.Histogram = {}
    histogram.add(times, 3.0, requests - failures)
    return at("load", seconds, load=load, start=M0 + seconds, end=M0 + seconds + 1, users=20, workers=0,
              requests=requests, failures=failures, rps=float(requests), p50_ms=3.0, p95_ms=3.0, p99_ms=3.0,
              max_ms=3.0, response_times=times, names=[])


def timeline() -> list[Record]:
    """A failover at 5 s; the naive load fails from 5.1 to 8.9 s; writes fail from 5.05 to 9 s."""
    records = [at("phase", 0.0, name="steady-state"),
               at("fault", 5.1, name="failover", description="FailoverDBCluster", start=M0 + 5.0, end=M0 + 5.1,
                  detail={}),
               at("phase", 9.5, name="recovery")]
    for step in range(120):
        end = step * 0.1
        outcome = "failed" if 5.05 < end < 9.0 else "acknowledged"
        records.append(at("write", end, seq=step, start=M0 + end - 0.01, end=M0 + end, outcome=outcome))
    for second in range(12):
        failing = 5 <= second < 9
        records.append(load_second(second, 100, 30 if failing else 0))
        records.append(load_second(second, 100, 0, load="oltp/resilient"))
        if failing:
            records.append(at("load-failure", second + 0.1, load="oltp/naive", second=M0 + second,
                              request_type="cluster endpoint", name="place order", error="08006: lost",
                              occurrences=30, first=M0 + second + 0.1, last=M0 + second + 0.9))
    return sorted(records, key=lambda r: r["m"])


def test_each_load_gets_a_lane_of_throughput_and_errors_on_the_probes_time_axis() -> None:
    root = ET.fromstring(timeline_svg(timeline(), "under load"))
    labels = ["".join(n.itertext()) for n in root.iter(f"{SVG}text")]
    tips = [n.text or "" for n in root.iter(f"{SVG}title")]
    assert "load oltp/naive" in labels and "load oltp/resilient" in labels
    assert "load requests ok" in labels and "load requests failed" in labels
    assert any(t.startswith("5 s–6 s: 100 requests, 30 failed, p50 3 ms, p95 3 ms, 20 users") for t in tips)
    assert any("30 × cluster endpoint place order: 08006: lost" in t for t in tips)
    # one axis: the naive load's failure strip starts where the write probe's failures start
    strip = [r for r in root.iter(f"{SVG}rect") if any("30 ×" in (t.text or "") for t in r.iter(f"{SVG}title"))]
    fault_line = next(n for n in root.iter(f"{SVG}line") if n.get("stroke-dasharray") == "6 3")
    assert abs(float(strip[0].get("x")) + 0.75 - float(fault_line.get("x1"))) < 15


def test_a_chart_without_load_has_no_load_lane() -> None:
    records = [r for r in timeline() if not r["kind"].startswith("load")]
    labels = ["".join(n.itertext()) for n in ET.fromstring(timeline_svg(records, "no load")).iter(f"{SVG}text")]
    assert not any(label.startswith("load") for label in labels)


class Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.cells.append(data.strip())


def test_the_load_summary_tabulates_each_phase_and_groups_the_failures() -> None:
    measurements = json.loads(json.dumps(measure_all(timeline())))
    page = load_summary_html("under load", measurements["load"])
    parser = Cells()
    parser.feed(page)
    cells = parser.cells
    assert "Load oltp/naive" in cells and "Load oltp/resilient" in cells
    row = cells[cells.index("during (fault → recovery)"):][:10]
    assert row[1:5] == ["5 s", "500", "120", "24.0%"]  # seconds 5..9 overlap the fault's window
    assert "08006: lost" in cells and "120" in cells
    assert "No request failed." in cells  # the resilient load
    assert any(c.startswith("1200 requests, 120 failed; application error window 3.8 s") for c in cells)


def test_a_summary_without_load_says_so() -> None:
    assert "No load ran in this scenario" in load_summary_html("quiet", {"measured": False, "reason": "no load"})
