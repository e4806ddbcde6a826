"""The report of a Blue/Green game day: the switchover's phases against the writes, and the
downtime per client.

One chart: a band of the deployment's statuses as the harness saw them (AVAILABLE, SWITCHOVER_IN_
PROGRESS, then COMPLETED or FAILED, or INVALID_CONFIGURATION), and under it the write probe's
acknowledged writes per time bucket, coloured by the environment whose instance served them
(blue's instances, or green's, which take blue's names in the switchover: a write after the
switchover's completion under a blue name is green's), refused ones in red. A table gives each
client's downtime: each write probe's write outage and each load's error window. Everything is
computed from the timeline, like the checkers.
"""

from __future__ import annotations

from html import escape
from typing import Any

from harness.measure import measure_load, measure_rto
from harness.measure.common import NotMeasured, drivers_in
from harness.measure.faults import faults_of
from harness.report.chart import STYLE
from harness.timeline import Record, of_kind

__all__ = ["blue_green_svg", "blue_green_tables_html", "phase_spans"]

WIDTH, LEFT, RIGHT, TOP, BAND_H, BARS_H = 1200, 150, 24, 44, 14, 90
BUCKETS = 200
PHASE_COLOURS = {"AVAILABLE": "#90caf9", "SWITCHOVER_IN_PROGRESS": "#ffcc80", "SWITCHOVER_COMPLETED": "#a5d6a7",
                 "SWITCHOVER_FAILED": "#ef9a9a", "INVALID_CONFIGURATION": "#ce93d8", "PROVISIONING": "#e0e0e0"}
BLUE, GREEN, REFUSED, FAULT = "#1565c0", "#2e7d32", "#c62828", "#b71c1c"


def phase_spans(records: list[Record], start: float, end: float) -> list[tuple[str, float, float]]:
    """(status, from, to) for each status the deployment was seen in, AVAILABLE from its record."""
    seen = [(float(r["m"]), "AVAILABLE") for r in of_kind(records, "blue-green")]
    seen += [(float(r.get("at", r["m"])), str(r["status"])) for r in of_kind(records, "blue-green-status")]
    seen.sort()
    merged = [s for i, s in enumerate(seen) if i == 0 or s[1] != seen[i - 1][1]]
    return [(status, max(at, start), merged[i + 1][0] if i + 1 < len(merged) else end)
            for i, (at, status) in enumerate(merged)]


def blue_green_svg(records: list[Record], title: str) -> str | None:
    """The chart, or None when the timeline is not a Blue/Green game day's."""
    deployment = next(of_kind(records, "blue-green"), None)
    if deployment is None:
        return None
    writes = list(of_kind(records, "write"))
    times = [float(r["m"]) for r in records if "m" in r] + [float(w["end"]) for w in writes]
    start, end = min(times), max(times)
    span = max(end - start, 1e-3)
    plot_w = WIDTH - LEFT - RIGHT
    x = lambda t: LEFT + (t - start) / span * plot_w  # noqa: E731 - a local scale
    height = TOP + BAND_H + BARS_H + 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}"><style>{STYLE}</style>',
             f'<text class="title" x="10" y="20">{escape(title)}: Blue/Green switchover phases</text>', _legend(),
             f'<text class="lane" x="10" y="{TOP + 11}">deployment</text>']
    for status, a, b in phase_spans(records, start, end):
        parts.append(f'<rect x="{x(a):.1f}" y="{TOP}" width="{max(x(b) - x(a), 0.5):.1f}" height="{BAND_H}" '
                     f'fill="{PHASE_COLOURS.get(status, "#bdbdbd")}"><title>{escape(status)}</title></rect>')
    parts.append(f'<text class="lane" x="10" y="{TOP + BAND_H + 30}">writes</text>')
    parts += _write_bars(records, writes, start, span, TOP + BAND_H + 6 + BARS_H / 2, x)
    for fault in faults_of(records):
        parts.append(f'<line x1="{x(fault.start):.1f}" x2="{x(fault.start):.1f}" y1="{TOP - 6}" '
                     f'y2="{TOP + BAND_H + BARS_H + 10}" stroke="{FAULT}" stroke-width="1.5" stroke-dasharray="4 3">'
                     f'<title>{escape(fault.description or fault.name)}</title></line>')
    axis_y = TOP + BAND_H + BARS_H + 26
    for tick in range(0, int(span) + 1, max(1, int(span / 10) or 1)):
        parts.append(f'<text class="small" x="{x(start + tick):.1f}" y="{axis_y}">{tick} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def blue_green_tables_html(records: list[Record]) -> str:
    """Downtime per client around the switchover: each write probe's write outage and each load's
    error window; empty for a timeline that is not a Blue/Green game day's (or has no switchover)."""
    faults = [f for f in faults_of(records) if f.name == "blue-green-switchover"]
    if next(of_kind(records, "blue-green"), None) is None or not faults:
        return ""
    fault, rows = faults[-1], []
    for driver in drivers_in(records):
        rto = measure_rto(records, fault, driver=driver)
        said = (f"not measured: {rto.reason}" if isinstance(rto, NotMeasured) else
                "writes did not come back" if rto.outage_s is None and rto.rto_s is None else
                f"{(rto.outage_s or 0.0):.3f} s")
        rows.append(f"<tr><td>write probe ({escape(driver)})</td><td>{escape(said)}</td></tr>")
    loads = measure_load(records, fault)
    for name, load in ({} if isinstance(loads, NotMeasured) else loads).items():
        window = "–" if load.error_window_s is None else f"{load.error_window_s:.3f} s"
        rows.append(f"<tr><td>load {escape(name)}</td><td>{window} ({load.failed_requests or 0} failed "
                    f"requests)</td></tr>")
    return ("<h4>Switchover downtime per client</h4><table><thead><tr><th>Client</th><th>Downtime</th></tr>"
            "</thead><tbody>" + "".join(rows) + "</tbody></table>")


def _write_bars(records: list[Record], writes: list[Record], start: float, span: float, middle: float,
                x: Any) -> list[str]:
    """Acknowledged writes per bucket (up, blue's or green's colour), refused ones (down, red)."""
    deployment = next(of_kind(records, "blue-green"))
    green = set(deployment["target"]["instances"])
    completed = next((float(r.get("at", r["m"])) for r in of_kind(records, "blue-green-status")
                      if r["status"] == "SWITCHOVER_COMPLETED"), None)
    width = span / BUCKETS
    blue_n, green_n, refused = [0] * BUCKETS, [0] * BUCKETS, [0] * BUCKETS
    for w in writes:
        bucket = min(int((w["end"] - start) / width), BUCKETS - 1)
        if w["outcome"] != "acknowledged":
            refused[bucket] += 1
        elif w.get("server") in green or (completed is not None and w["end"] >= completed):
            green_n[bucket] += 1
        else:
            blue_n[bucket] += 1
    peak = max(blue_n + green_n + refused + [1])
    scale = (BARS_H / 2 - 4) / peak
    bars = []
    for i in range(BUCKETS):
        left = x(start + i * width)
        bar_w = max(x(start + (i + 1) * width) - left - 0.3, 0.5)
        for count, colour in ((blue_n[i], BLUE), (green_n[i], GREEN)):
            if count:
                h = count * scale
                bars.append(f'<rect x="{left:.1f}" y="{middle - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                            f'fill="{colour}"/>')
        if refused[i]:
            h = max(refused[i] * scale, 2)
            bars.append(f'<rect x="{left:.1f}" y="{middle:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                        f'fill="{REFUSED}"/>')
    return bars


def _legend() -> str:
    items = [(status.replace("SWITCHOVER_", "").lower().replace("_", " "), colour)
             for status, colour in PHASE_COLOURS.items() if status != "PROVISIONING"]
    items += [("writes on blue", BLUE), ("writes on green", GREEN), ("refused writes", REFUSED)]
    out, left = [], LEFT
    for label, colour in items:
        out.append(f'<rect x="{left}" y="27" width="12" height="9" fill="{colour}"/>'
                   f'<text class="small" x="{left + 15}" y="35">{escape(label)}</text>')
        left += 18 + 6 * len(label)
    return "".join(out)
