"""A scenario's figures over its runs: small multiples in one self-contained SVG.

One panel per figure and driver, the runs on the x axis (oldest left, this run right), the
values as a line of points from 0, the earlier runs' allowance (median plus margin, the line
above which a value is a regression) dashed, and a regressed point red. Like the timeline chart
it has no script and no external asset, so it displays anywhere, in Allure or on its own.
"""

from __future__ import annotations

from html import escape

from harness.certify.trends import FIGURES, Regression, ScenarioTrend, figure_label
from harness.measure import metrics
from harness.targets import quantity

__all__ = ["trend_svg"]

COLUMNS = 3
PANEL_W, PANEL_H = 300, 130
PAD_L, PAD_R, PAD_T, PAD_B = 46, 12, 24, 22
TITLE_H = 26
LINE, REGRESSED, ALLOWANCE = "#1565c0", "#c62828", "#ef6c00"
STYLE = ("text{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;font-size:10px;fill:#263238}"
         ".title{font-size:13px;font-weight:bold}.panel{font-weight:bold;font-size:11px}"
         ".small{font-size:9px;fill:#546e7a}.axis{stroke:#90a4ae;stroke-width:1}")


def trend_svg(trend: ScenarioTrend, title: str | None = None) -> str:
    """The chart; a trend without any value gives a valid SVG that says so."""
    panels = list(trend.series.items())
    rows = max(1, -(-len(panels) // COLUMNS))
    width, height = COLUMNS * PANEL_W, TITLE_H + rows * PANEL_H
    heading = title or f"{trend.scenario}: {trend.points} run{'s' if trend.points != 1 else ''}"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img"><style>{STYLE}</style>'
             f'<rect width="{width}" height="{height}" fill="#fff"/>'
             f'<text class="title" x="8" y="17">{escape(heading)}</text>']
    if not panels:
        parts.append(f'<text x="8" y="{TITLE_H + 20}">No figure was measured in this scenario.</text>')
    flagged = {(r.driver, r.figure): r for r in trend.regressions}
    for index, ((driver, figure), values) in enumerate(panels):
        x0 = (index % COLUMNS) * PANEL_W
        y0 = TITLE_H + (index // COLUMNS) * PANEL_H
        parts.append(_panel(x0, y0, driver, figure, values, trend.runs, trend.allowances.get((driver, figure)),
                            flagged.get((driver, figure))))
    parts.append("</svg>")
    return "".join(parts) + "\n"


def _panel(x0: float, y0: float, driver: str, figure: str, values: list[float | None], runs: list[str],
           allowance: float | None, regression: Regression | None) -> str:
    unit = metrics.unit(figure)
    top = max([v for v in values if v is not None] + [allowance or 0.0, FIGURES[figure] or 1.0]) * 1.15
    left, right = x0 + PAD_L, x0 + PANEL_W - PAD_R
    high, low = y0 + PAD_T, y0 + PANEL_H - PAD_B

    def x(i: int) -> float:
        return (left + right) / 2 if len(values) == 1 else left + (right - left) * i / (len(values) - 1)

    def y(value: float) -> float:
        return low - (low - high) * value / top

    out = [f'<text class="panel" x="{x0 + 8}" y="{y0 + 14}">{escape(figure_label(figure, driver))}</text>',
           f'<line class="axis" x1="{left}" y1="{low}" x2="{right}" y2="{low}"/>',
           f'<line class="axis" x1="{left}" y1="{high}" x2="{left}" y2="{low}"/>',
           f'<text class="small" x="{left - 4}" y="{low}" text-anchor="end">0</text>',
           f'<text class="small" x="{left - 4}" y="{high + 8}" text-anchor="end">{escape(quantity(top, ""))}</text>']
    if allowance is not None:
        out.append(f'<line x1="{left}" y1="{y(allowance):.1f}" x2="{right}" y2="{y(allowance):.1f}" '
                   f'stroke="{ALLOWANCE}" stroke-dasharray="4 3"><title>allowed up to '
                   f'{escape(quantity(allowance, unit))}</title></line>')
    shown = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(shown) > 1:
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in shown)
        out.append(f'<polyline points="{points}" fill="none" stroke="{LINE}" stroke-width="1.5"/>')
    for i, v in shown:
        last = i == len(values) - 1
        colour = REGRESSED if last and regression is not None else LINE
        out.append(f'<circle class="point" cx="{x(i):.1f}" cy="{y(v):.1f}" r="{4 if last else 3}" fill="{colour}">'
                   f'<title>{escape(runs[i])}: {escape(quantity(v, unit))}</title></circle>')
    latest = values[-1]
    said = "not measured" if latest is None else quantity(latest, unit)
    flag, style = ("⚠ ", f' style="fill:{REGRESSED}"') if regression is not None else ("", "")
    out.append(f'<text class="small" x="{right}" y="{y0 + 14}" text-anchor="end"{style}>{flag}this run: '
               f'{escape(said)}</text>')
    out.append(f'<text class="small" x="{left}" y="{low + 13}">{escape(_short(runs[0]))}</text>')
    if len(runs) > 1:
        out.append(f'<text class="small" x="{right}" y="{low + 13}" text-anchor="end">'
                   f'{escape(_short(runs[-1]))}</text>')
    return "".join(out)


def _short(run_id: str) -> str:
    return run_id if len(run_id) <= 20 else f"…{run_id[-19:]}"
