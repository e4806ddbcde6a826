"""The load summary: what the application saw, before, during and after the fault, as one HTML page.

Built from `measure_load`'s output as `verdict.json` stores it (`measurements.load`), so the page
can be rebuilt from the evidence alone. Per load: a table of requests, failures, error rate,
throughput and latency percentiles per phase, the application's error window and latency
recovery, then the failures grouped by request and error, phase by phase.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from harness.measure.load import PHASES

STYLE = (
    "body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:12px;color:#263238}"
    "h2{font-size:15px;margin:18px 0 6px}table{border-collapse:collapse;font-size:13px;margin-bottom:8px}"
    "th,td{border:1px solid #cfd8dc;padding:4px 8px;text-align:right;vertical-align:top}"
    "th{background:#eceff1}td.text,th.text{text-align:left}tr.failing td{background:#ffebee}"
    "p.facts{margin:4px 0 8px}.none{color:#607d8b}"
)
PHASE_NAMES = {"before": "before the fault (steady state)", "during": "during (fault → recovery)",
               "after": "after the recovery"}


def load_summary_html(scenario: str, load: Mapping[str, Any]) -> str:
    """The whole page; a scenario without a load gives a page that says so."""
    if not load.get("measured"):
        body = f'<p class="none">No load ran in this scenario ({escape(str(load.get("reason", "")))}).</p>'
    else:
        body = "".join(_load_section(name, result) for name, result in load["loads"].items())
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Load: {escape(scenario)}</title>'
            f"<style>{STYLE}</style></head><body><h1 style=\"font-size:17px\">What the application saw: "
            f"{escape(scenario)}</h1>{body}</body></html>\n")


def _load_section(name: str, result: Mapping[str, Any]) -> str:
    rows = "".join(_phase_row(phase, result["phases"][phase]) for phase in PHASES)
    facts = [f"{result['requests']} requests, {result['failures']} failed"]
    if result["error_window_s"] is not None:
        facts.append(f"application error window {_num(result['error_window_s'], 's')}"
                     + (f" (errors from {_num(result['first_error_after_fault_s'], 's')} to "
                        f"{_num(result['last_error_after_fault_s'], 's')} after the fault)"
                        if result["first_error_after_fault_s"] is not None else ""))
    if result["latency_recovery_s"] is not None:
        facts.append(f"p95 back under {_num(result['latency_threshold_ms'], 'ms')} (steady state "
                     f"{_num(result['baseline_p95_ms'], 'ms')}) {_num(result['latency_recovery_s'], 's')} "
                     f"after the fault")
    elif result.get("latency_reason"):
        facts.append(f"latency recovery not measured: {result['latency_reason']}")
    return (f"<h2>Load {escape(name)}</h2><p class=\"facts\">{escape('; '.join(facts))}</p>"
            "<table><thead><tr><th class=\"text\">phase</th><th>seconds</th><th>requests</th><th>failed</th>"
            "<th>error rate</th><th>requests/s</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>{_failures(result)}")


def _phase_row(phase: str, stats: Mapping[str, Any]) -> str:
    cells = [_num(stats["seconds"], "s"), str(stats["requests"]), str(stats["failures"]),
             "–" if stats["error_rate"] is None else f"{stats['error_rate']:.1%}", _num(stats["rps"], ""),
             *(_num(stats[key], "ms") for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))]
    css = ' class="failing"' if stats["failures"] else ""
    return (f'<tr{css}><td class="text">{escape(PHASE_NAMES[phase])}</td>'
            + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")


def _failures(result: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><td class="text">{escape(PHASE_NAMES[phase])}</td><td class="text">{escape(g["request_type"])}</td>'
        f'<td class="text">{escape(g["name"])}</td><td class="text">{escape(g["error"])}</td>'
        f"<td>{g['occurrences']}</td></tr>"
        for phase in PHASES for g in result["phases"][phase]["failure_groups"])
    if not rows:
        return '<p class="none">No request failed.</p>'
    return ("<table><thead><tr><th class=\"text\">phase</th><th class=\"text\">endpoint</th>"
            "<th class=\"text\">request</th><th class=\"text\">error</th><th>count</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}".strip()
