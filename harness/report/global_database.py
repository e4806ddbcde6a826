"""The report of a global game day: one chart with a lane per Region, the RPO table and the RTO per driver.

Each Region's lane shows, against the same time axis: the writes its instances acknowledged (green
bars, per time bucket; red where writes through the global writer endpoint were refused while the
Region held the writer), its role (a band: writer, secondary, resyncing, out), and, for the
Region whose instances were read, the cross-Region visibility lag (a line, log scale). Faults are
vertical lines across both lanes. Everything is computed from the timeline, like the checkers.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from harness.measure import measure_data_loss, measure_rto
from harness.measure.common import NotMeasured, drivers_in
from harness.measure.faults import faults_of
from harness.report.chart import STYLE, lag_samples
from harness.timeline import Record, of_kind

__all__ = ["global_tables_html", "global_timeline_svg"]

WIDTH, LEFT, RIGHT, LANE_H, TOP = 1200, 150, 24, 120, 44
BUCKETS = 200
ROLE_COLOURS = {"writer": "#ce93d8", "secondary": "#90caf9", "resyncing": "#ffe082", "out": "#ef9a9a",
                "switching": "#ffcc80"}
ACK, REFUSED, LAG, FAULT = "#2e7d32", "#c62828", "#1565c0", "#b71c1c"
SECONDARY_READER = "secondary:"


def global_timeline_svg(records: list[Record], title: str) -> str | None:
    """The chart, or None when the timeline is not a global game day's."""
    database = next(of_kind(records, "global-database"), None)
    if database is None:
        return None
    instances: dict[str, list[str]] = database["instances"]
    regions = list(instances)
    server_region = {i: region for region, names in instances.items() for i in names}
    writes = list(of_kind(records, "write"))
    times = [float(r["m"]) for r in records if "m" in r] + [float(w["end"]) for w in writes]
    start, end = (min(times), max(times)) if times else (0.0, 1.0)
    span = max(end - start, 1e-3)
    plot_w = WIDTH - LEFT - RIGHT
    x = lambda t: LEFT + (t - start) / span * plot_w  # noqa: E731 - a local scale
    height = TOP + LANE_H * len(regions) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}"><style>{STYLE}</style>',
             f'<text class="title" x="10" y="20">{escape(title)}: global database by Region</text>',
             _legend()]
    roles = _role_spans(records, regions, start, end)
    lags = {p: s for p, s in lag_samples(records).items() if p.startswith(SECONDARY_READER)}
    for index, region in enumerate(regions):
        top = TOP + index * LANE_H
        parts.append(f'<text class="lane" x="10" y="{top + 16}">{escape(region)}</text>')
        parts.append(f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{LANE_H - 10}" fill="none" '
                     f'class="grid" stroke="#cfd8dc"/>')
        for role, a, b in roles[region]:
            parts.append(f'<rect x="{x(a):.1f}" y="{top}" width="{max(x(b) - x(a), 0.5):.1f}" height="10" '
                         f'fill="{ROLE_COLOURS[role]}"><title>{escape(region)}: {role}</title></rect>')
        parts.append(f'<text class="small" x="10" y="{top + 32}">role band, writes</text>')
        parts += _write_bars(writes, region, server_region, roles[region], start, span, top, x)
        region_lags = [s for p, s in lags.items() if server_region.get(p[len(SECONDARY_READER):]) == region]
        if region_lags:
            parts.append(f'<text class="small" x="10" y="{top + 46}">visibility lag (log)</text>')
            parts += _lag_line([s for samples in region_lags for s in samples], top, x)
    for fault in faults_of(records):
        parts.append(f'<line x1="{x(fault.start):.1f}" x2="{x(fault.start):.1f}" y1="{TOP - 6}" '
                     f'y2="{TOP + LANE_H * len(regions) - 10}" stroke="{FAULT}" stroke-width="1.5" '
                     f'stroke-dasharray="4 3"><title>{escape(fault.description or fault.name)}</title></line>')
        parts.append(f'<text class="small" x="{x(fault.start) + 3:.1f}" y="{TOP - 8}">{escape(fault.name)}</text>')
    axis_y = TOP + LANE_H * len(regions)
    for tick in range(0, int(span) + 1, max(1, int(span / 10) or 1)):
        parts.append(f'<text class="small" x="{x(start + tick):.1f}" y="{axis_y + 4}">{tick} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def global_tables_html(records: list[Record]) -> str:
    """The RPO table (per driver: acknowledged writes lost, their window, rpo_s) and the RTO per
    driver from each fault of the scenario; empty for a timeline that is not a global game day's."""
    if next(of_kind(records, "global-database"), None) is None:
        return ""
    faults = faults_of(records)
    last = faults[-1] if faults else None
    rpo_rows, rto_rows = [], []
    for driver in drivers_in(records):
        loss = measure_data_loss(records, last, driver=driver)
        if isinstance(loss, NotMeasured):
            rpo_rows.append(f"<tr><td>{escape(driver)}</td><td colspan='4'>not measured: {escape(loss.reason)}"
                            "</td></tr>")
        else:
            shown = ", ".join(str(s) for s in loss.lost[:10]) + (" …" if loss.lost_count > 10 else "")
            rpo_rows.append(f"<tr><td>{escape(driver)}</td><td>{loss.lost_count} of {loss.acknowledged}</td>"
                            f"<td>{loss.lost_window_s:.3f} s</td><td>{loss.rpo_s:.3f} s</td>"
                            f"<td>{escape(shown) or '–'}</td></tr>")
        for fault in faults:
            whole = fault.__class__(**{**fault.__dict__, "until": None})
            rto = measure_rto(records, whole, driver=driver)
            said = (f"not measured: {rto.reason}" if isinstance(rto, NotMeasured) else "not recovered"
                    if rto.rto_s is None else f"{rto.rto_s:.3f} s (writes refused {rto.outage_s:.3f} s)")
            rto_rows.append(f"<tr><td>{escape(driver)}</td><td>{escape(fault.description or fault.name)}</td>"
                            f"<td>{escape(said)}</td></tr>")
    if not faults:
        return ""
    return ("<h4>RPO: acknowledged writes lost</h4><table><thead><tr><th>Driver</th><th>Lost</th>"
            "<th>Window</th><th>RPO</th><th>First lost seqs</th></tr></thead><tbody>" + "".join(rpo_rows)
            + "</tbody></table><h4>RTO per driver, to the first acknowledged write after each fault</h4>"
            "<table><thead><tr><th>Driver</th><th>Counted from</th><th>RTO</th></tr></thead><tbody>"
            + "".join(rto_rows) + "</tbody></table>")


# --- pieces --------------------------------------------------------------------------------------------
def _role_spans(records: list[Record], regions: list[str], start: float, end: float
                ) -> dict[str, list[tuple[str, float, float]]]:
    """Per Region, (role, from, to): from the recorded global topology, 'out' during a Region outage."""
    changes: dict[str, list[tuple[float, str]]] = {r: [] for r in regions}
    for topology in of_kind(records, "global-topology"):
        for region, member in (topology.get("regions") or {}).items():
            if region not in changes:
                continue
            role = ("switching" if topology.get("failover_state") else "writer" if member.get("writer")
                    else "resyncing" if member.get("sync") not in ("connected", "", None) else "secondary")
            changes[region].append((float(topology["m"]), role))
    returns = [a for a in of_kind(records, "action") if a.get("name") == "region-returns"]
    for outage in (f for f in of_kind(records, "fault") if f.get("name") == "region-outage"):
        region, begun = (outage.get("detail") or {}).get("region"), float(outage["start"])
        if region not in changes:
            continue
        back = next((float(a["end"]) for a in returns if a["start"] >= begun), end)
        # Out while out, whatever the API said; back, it resyncs until the topology says otherwise.
        changes[region] = [c for c in changes[region] if not begun <= c[0] <= back]
        changes[region] += [(begun, "out")] + ([(back, "resyncing")] if back < end else [])
    spans: dict[str, list[tuple[str, float, float]]] = {}
    for region, seen in changes.items():
        seen.sort()
        spans[region] = [(role, max(at, start), seen[i + 1][0] if i + 1 < len(seen) else end)
                         for i, (at, role) in enumerate(seen)]
    return spans


def _write_bars(writes: list[Record], region: str, server_region: dict[str, str],
                roles: list[tuple[str, float, float]], start: float, span: float, top: float, x: Any) -> list[str]:
    """Acknowledged writes served in `region` per bucket (bars up from the lane's middle), refused
    ones while it held the writer role (bars down)."""
    width = span / BUCKETS
    acked, refused = [0] * BUCKETS, [0] * BUCKETS
    writer_spans = [(a, b) for role, a, b in roles if role in ("writer", "out", "switching")]
    for w in writes:
        bucket = min(int((w["end"] - start) / width), BUCKETS - 1)
        if w["outcome"] == "acknowledged" and server_region.get(str(w.get("server"))) == region:
            acked[bucket] += 1
        elif w["outcome"] != "acknowledged" and any(a <= w["end"] <= b for a, b in writer_spans):
            refused[bucket] += 1
    peak = max(acked + refused + [1])
    middle, scale = top + 62, 40 / peak
    bars = []
    for i in range(BUCKETS):
        left, bar_w = x(start + i * width), max(x(start + (i + 1) * width) - x(start + i * width) - 0.3, 0.5)
        if acked[i]:
            h = acked[i] * scale
            bars.append(f'<rect x="{left:.1f}" y="{middle - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                        f'fill="{ACK}"/>')
        if refused[i]:
            h = max(refused[i] * scale, 2)
            bars.append(f'<rect x="{left:.1f}" y="{middle:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                        f'fill="{REFUSED}"/>')
    return bars


def _lag_line(samples: list[tuple[float, float]], top: float, x: Any) -> list[str]:
    """Visibility lag as dots on a log scale from 1 ms (bottom of the lane) to 10 s (top)."""
    if not samples:
        return []
    step = max(1, len(samples) // 2000)
    y = lambda lag: top + LANE_H - 12 - (math.log10(max(lag, 1e-3)) + 3) / 4 * (LANE_H - 24)  # noqa: E731
    dots = "".join(f"M{x(t):.1f},{y(lag):.1f}h1" for t, lag in sorted(samples)[::step])
    ticks = "".join(f'<text class="small" x="{LEFT - 34}" y="{y(v) + 3:.1f}">{label}</text>'
                    for v, label in ((0.001, "1 ms"), (0.1, "100 ms"), (1.0, "1 s")))
    return [f'<path d="{dots}" stroke="{LAG}" stroke-width="2" fill="none"/>', ticks]


def _legend() -> str:
    items = [("writer", ROLE_COLOURS["writer"]), ("secondary", ROLE_COLOURS["secondary"]),
             ("resyncing", ROLE_COLOURS["resyncing"]), ("Region out", ROLE_COLOURS["out"]),
             ("acknowledged writes", ACK), ("refused writes", REFUSED), ("cross-Region lag", LAG)]
    out, left = [], LEFT
    for label, colour in items:
        out.append(f'<rect x="{left}" y="27" width="12" height="9" fill="{colour}"/>'
                   f'<text class="small" x="{left + 15}" y="35">{label}</text>')
        left += 18 + 6 * len(label)
    return "".join(out)
