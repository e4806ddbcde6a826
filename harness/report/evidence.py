"""The evidence each scenario leaves for an auditor, in Allure and beside its timeline.

Per scenario (`attach_scenario_evidence`, called after `GameDay.close()` wrote `verdict.json`
and `timeline.jsonl`): the verdict table, the timeline chart, the raw timeline, the RDS events,
the measurements and a manifest of sha256 sums of every file in the scenario directory. The
table and chart are also written there (`verdicts.html`, `chart.svg`) so the directory alone
is a complete record, and `manifest.json` lets an auditor prove none of it was edited later.
A scenario that ran a load also gets its load summary (`load-summary.html`: before, during and
after the fault, failures grouped) and each load's own Locust HTML report (`load/*/locust.html`).
Given its trend (`harness.certify.trends`), a scenario also shows its figures over the earlier
runs (`trend.svg`, and in `verdicts.html`) and, when one regressed, carries the `regression`
label that files it under the "Regression (warning)" category (Allure 3).

Per run (`write_run_metadata`): `environment.properties`, `executor.json` and
`categories.json` in the Allure results directory, and the environment again as
`environment.json` in the run directory (for the certificate). The categories sort failed scenarios by the
checks they breached, matching the failure `steps/plugin.py` raises:
`AssertionError: PolicyBreached (n):\\n  <check>: <explanation>` (one line per breach).

No secret ever reaches a report: nothing here passes the cluster's credentials on, and any text
that happens to contain the database password (say, a driver error quoting a DSN) is redacted
before Allure sees it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from html import escape
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import allure

from harness.certify.trend_chart import trend_svg
from harness.certify.trends import ScenarioTrend, trend_html
from harness.report import PROJECT
from harness.report.blue_green import blue_green_svg, blue_green_tables_html
from harness.report.chart import timeline_svg
from harness.report.global_database import global_tables_html, global_timeline_svg
from harness.report.load_summary import load_summary_html
from harness.targets import SYMBOLS, quantity
from harness.timeline import read_timeline
from harness.verdicts import BREACHED, MET, Verdict, overall_status

__all__ = ["CATEGORIES", "EPIC", "REGRESSION_CATEGORY", "attach_scenario_evidence", "faults_html", "limit_text",
           "measured_text", "restore_html", "run_environment", "scenario_parameters", "verdict_table_html",
           "write_manifest", "write_run_metadata"]

EPIC = "Disaster recovery"
MANIFEST = "manifest.json"
REDACTED = "***redacted***"
MIN_SECRET_LENGTH = 4  # shorter "passwords" would redact ordinary words

# (category, description, the `check` names of the judgements it gathers), most serious first:
# Allure 3 files a result under the first category that matches, Allure 2 under every one.
BREACH_CATEGORIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Data loss", "An acknowledged write was missing after recovery (RPO breached).", ("data loss (RPO)",)),
    ("Restore not exact", "A restore missed writes acknowledged before its point, or held writes begun after it.",
     ("restore keeps every write before its point", "restore holds nothing after its point", "bad change undone")),
    ("RTO breached", "Writes were not back in time, or were interrupted when they should not have been.",
     ("writes back (RTO)", "writes not interrupted")),
    ("Wrong writer", "The writer after the fault is not the one Aurora's rules pick.",
     ("promoted reader", "no failover")),
    ("Writes not halted", "Writes went on while the storage quorum was lost.", ("writes halted",)),
    ("Reads unavailable", "A reader or the reader endpoint could not serve reads.", ("read availability",)),
    ("Replica lag breached", "Readers saw acknowledged writes later than the documented replica lag.",
     ("replica lag",)),
    ("Application errors", "The load's requests failed for too long, or its latency stayed high.",
     ("application errors", "latency back to baseline")),
    ("Stop condition", "The stop condition let a fault through, or did not hold it back when it should have.",
     ("stop condition",)),
    ("Restore too slow", "The restore took longer than allowed, or restored to a point too far back.",
     ("restore time", "latest restorable time")),
)


def _category(name: str, description: str, checks: Iterable[str]) -> dict[str, Any]:
    """An Allure category matching a PolicyBreached failure that lists one of `checks`.

    `[\\s\\S]*` rather than a DOTALL flag: Allure 2 (Java) needs the regex to match the whole
    message, Allure 3 (JavaScript) searches it and has no inline flags; this works in both.
    """
    alternatives = "|".join(_regex_literal(check) for check in checks)
    return {"name": name, "description": description, "matchedStatuses": ["failed"],
            "messageRegex": rf"[\s\S]*PolicyBreached \(\d+\):[\s\S]*\n  (?:{alternatives}): [\s\S]*"}


def _regex_literal(text: str) -> str:
    """`text` as a regex that means the same in Java and JavaScript, readable in categories.json.

    Only metacharacters are escaped: `re.escape` would also escape spaces and hyphens.
    """
    return "".join("\\" + c if c in r"\.^$|?*+()[]{}" else c for c in text)


CATEGORIES: list[dict[str, Any]] = [
    *(_category(name, description, checks) for name, description, checks in BREACH_CATEGORIES),
    {"name": "Aborted by a stop condition", "matchedStatuses": ["broken"],
     "messageRegex": r"[\s\S]*GameDayAborted[\s\S]*",
     "description": "The steady state was unhealthy (say, the load's error rate above its ceiling), so the fault "
                    "was not injected: nothing after it could be judged."},
    {"name": "Infrastructure broken", "matchedStatuses": ["broken"],
     "description": "The scenario could not run to its verdicts: the cluster, the emulator or the harness failed."},
]
REGRESSION_LABEL = "regression"
# Allure 3 only (labels are no matcher in Allure 2's categories.json): a figure above its earlier
# runs' median by the trends' margin, whatever the status. Last, so a breach is filed as a breach.
REGRESSION_CATEGORY: dict[str, Any] = {"name": "Regression (warning)", "groupByMessage": False,
                                       "matchers": [{"labels": {REGRESSION_LABEL: ".+"}}]}


class ScenarioDay(Protocol):
    """What evidence needs from a `harness.gameday.GameDay` (and what test doubles provide)."""

    directory: Path
    scenario: str
    verdicts: list[Verdict]
    cut: Any
    environment: Any
    timeline: Any


# --- per scenario ------------------------------------------------------------------------------------
def attach_scenario_evidence(day: ScenarioDay, trend: ScenarioTrend | None = None) -> Path:
    """Write chart, table and manifest into the scenario directory and attach all evidence.

    Without `--alluredir` the allure calls do nothing, so the files are still written and a plain
    pytest run keeps its evidence. Returns the manifest's path.
    """
    directory = Path(day.directory)
    redact = _redactor(day)
    timeline_path = Path(day.timeline.path)
    records = read_timeline(timeline_path) if timeline_path.exists() else []
    document = _verdict_document(day)

    trend_chart = trend_svg(trend) if trend is not None else None
    trend_section = trend_html(trend, trend_chart) if trend is not None and trend_chart is not None else ""
    table = redact(verdict_table_html(day.scenario, document, trend_section + global_tables_html(records)
                                     + blue_green_tables_html(records)))
    chart = redact(timeline_svg(records, day.scenario))
    global_chart = global_timeline_svg(records, day.scenario)
    if global_chart is not None:
        global_chart = redact(global_chart)
        (directory / "global-chart.svg").write_text(global_chart, encoding="utf-8")
    blue_green_chart = blue_green_svg(records, day.scenario)
    if blue_green_chart is not None:
        blue_green_chart = redact(blue_green_chart)
        (directory / "blue-green-chart.svg").write_text(blue_green_chart, encoding="utf-8")
    (directory / "verdicts.html").write_text(table, encoding="utf-8")
    (directory / "chart.svg").write_text(chart, encoding="utf-8")
    if trend_chart is not None:
        (directory / "trend.svg").write_text(trend_chart, encoding="utf-8")
    load = document.get("measurements", {}).get("load", {})
    summary = redact(load_summary_html(day.scenario, load)) if load.get("measured") else None
    if summary is not None:
        (directory / "load-summary.html").write_text(summary, encoding="utf-8")
    manifest = write_manifest(directory, day.scenario)

    allure.dynamic.epic(EPIC)
    allure.dynamic.story(day.scenario)
    for name, value in scenario_parameters(day).items():
        allure.dynamic.parameter(name, value)
    allure.attach(table, name="Verdicts", attachment_type=allure.attachment_type.HTML)
    allure.attach(chart, name="Timeline chart", attachment_type=allure.attachment_type.SVG)
    if global_chart is not None:
        allure.attach(global_chart, name="Global database by Region", attachment_type=allure.attachment_type.SVG)
    if blue_green_chart is not None:
        allure.attach(blue_green_chart, name="Blue/Green switchover phases", attachment_type=allure.attachment_type.SVG)
    if trend is not None and trend_chart is not None:
        allure.attach(trend_chart, name="Trend chart", attachment_type=allure.attachment_type.SVG)
        if trend.regressions:
            allure.dynamic.label(REGRESSION_LABEL, "; ".join(r.sentence() for r in trend.regressions))
    if summary is not None:
        allure.attach(summary, name="Load summary", attachment_type=allure.attachment_type.HTML)
    for report in sorted(directory.glob("load/*/locust.html")):
        allure.attach(redact(report.read_text(encoding="utf-8")), name=f"Locust report ({report.parent.name})",
                      attachment_type=allure.attachment_type.HTML)
    if timeline_path.exists():
        allure.attach(redact(timeline_path.read_text(encoding="utf-8")), name="Timeline (JSONL)",
                      attachment_type="text/plain", extension="jsonl")  # text/plain: the report previews it
    events = [_event(r) for r in records if r["kind"] == "event"]
    allure.attach(redact(_json(events)), name="RDS events", attachment_type=allure.attachment_type.JSON)
    allure.attach(redact(_json(document.get("measurements", {}))), name="Measurements",
                  attachment_type=allure.attachment_type.JSON)
    allure.attach(manifest.read_text(encoding="utf-8"), name="Evidence manifest",
                  attachment_type=allure.attachment_type.JSON)
    return manifest


def scenario_parameters(day: ScenarioDay) -> dict[str, str]:
    """Target and cluster: with the engine (the scenario's `engine` parameter, which Allure shows
    already), what an auditor needs to tell runs apart (never credentials)."""
    parameters = {"target": str(getattr(day.environment, "name", "unknown"))}
    if day.cut is not None:
        parameters["cluster identifier"] = str(day.cut.identifier)
    return parameters


def write_manifest(directory: Path, scenario: str) -> Path:
    """`manifest.json`: sha256 and size of every other file under `directory`, by relative path."""
    directory = Path(directory)
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.relative_to(directory).as_posix() != MANIFEST)
    document = {
        "scenario": scenario,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "algorithm": "sha256",
        "files": [{"path": p.relative_to(directory).as_posix(), "bytes": p.stat().st_size, "sha256": _sha256(p)}
                  for p in files],
    }
    path = directory / MANIFEST
    path.write_text(_json(document), encoding="utf-8")
    return path


def verdict_table_html(scenario: str, document: Mapping[str, Any], trend: str = "") -> str:
    """A standalone HTML page: overall status, then one colour-coded row per verdict (and the
    scenario's trend section, when given)."""
    verdicts = document.get("verdicts", [])
    status = document.get("status", MET)
    breached = sum(1 for v in verdicts if v["status"] == BREACHED)
    aborted = document.get("aborted")
    rows = "".join(
        f'<tr class="{"met" if v["status"] == MET else "breached"}">'
        f'<td>{escape(v["check"])}</td><td>{escape(measured_text(v))}</td><td>{escape(limit_text(v))}</td>'
        f'<td class="status">{"✓ " if v["status"] == MET else "✗ "}{escape(v["status"])}</td>'
        f'<td>{escape(v.get("source_title") or "set in the scenario")}</td>'
        f'<td class="why">{escape(v.get("explanation", ""))}</td></tr>'
        for v in verdicts
    ) or '<tr><td colspan="6">This scenario judged nothing.</td></tr>'
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Verdicts</title><style>'
        "body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:12px;color:#263238}"
        "table{border-collapse:collapse;width:100%;font-size:13px}th,td{border:1px solid #cfd8dc;padding:5px 8px;"
        "text-align:left;vertical-align:top}th{background:#eceff1}tr.met{background:#e8f5e9}"
        "tr.breached{background:#ffebee}tr.met .status{color:#1b5e20;font-weight:bold}"
        "tr.breached .status{color:#b71c1c;font-weight:bold}.why{color:#455a64}"
        ".banner{padding:8px 10px;margin-bottom:10px;font-weight:bold;border-radius:3px}"
        ".banner.met{background:#c8e6c9;color:#1b5e20}.banner.breached{background:#ffcdd2;color:#b71c1c}"
        ".banner.aborted{background:#ffe0b2;color:#e65100}"
        "</style></head><body>"
        f'<div class="banner {"met" if status == MET else "breached"}">{escape(scenario)}: {escape(status)} — '
        f"{breached} of {len(verdicts)} checks breached</div>"
        + (f'<div class="banner aborted">Stopped before the fault: {escape(aborted)}</div>' if aborted else "")
        + "<table><thead><tr><th>Check</th><th>Measured</th><th>Limit</th><th>Status</th><th>Source</th>"
        f"<th>Explanation</th></tr></thead><tbody>{rows}</tbody></table>"
        + faults_html(document.get("measurements", {}).get("faults", []))
        + restore_html(document.get("measurements", {}).get("restore", {}))
        + topology_views_html(document.get("measurements", {}).get("topology_views", {}))
        + rto_by_driver_html(document.get("measurements", {}).get("by_driver", {}).get("drivers", {}))
        + trend
        + "</body></html>\n"
    )


DRIVER_NAMES = {"plain": "Plain driver", "aws-wrapper": "AWS Advanced Python Wrapper (failover plugin)"}


def rto_by_driver_html(by_driver: Mapping[str, Any]) -> str:
    """The RTO, outage and data loss each driver's write probe saw, and the errors each driver's
    loads saw after the fault; only when more than one driver ran."""
    if len(by_driver) < 2:
        return ""

    def seconds(entry: Mapping[str, Any], key: str) -> str:
        if not entry.get("measured"):
            return f"not measured ({entry.get('reason', '')})"
        value = entry.get(key)
        return "not recovered" if value is None else f"{value:.3f} s"

    def lost(entry: Mapping[str, Any]) -> str:
        if not entry.get("measured"):
            return "not measured"
        return f"{entry.get('lost_count')} of {entry.get('acknowledged')} acknowledged"

    def load_errors(loads: Mapping[str, Any]) -> str:
        said = []
        for name, load in loads.items():
            failed = load.get("failed_requests")
            said.append(f"{name}: " + ("not measured" if failed is None else "none" if failed == 0 else
                                      f"{failed} failed ({load.get('requests')} requests in all), errors for "
                                      f"{load.get('error_window_s'):.3f} s"))
        return "; ".join(said) or "no load"

    rows = "".join(
        f"<tr><td>{escape(DRIVER_NAMES.get(driver, driver))}</td><td>{escape(seconds(r.get('rto', {}), 'rto_s'))}</td>"
        f"<td>{escape(seconds(r.get('rto', {}), 'outage_s'))}</td>"
        f"<td>{r.get('rto', {}).get('failed_attempts', 0)} failed, {r.get('rto', {}).get('unknown_attempts', 0)} "
        f"unknown</td><td>{escape(lost(r.get('data_loss', {})))}</td>"
        f"<td>{escape(load_errors(r.get('loads', {})))}</td></tr>"
        for driver, r in by_driver.items()
    )
    return ("<h4>RTO by driver</h4><table><thead><tr><th>Driver</th><th>RTO</th><th>Outage</th>"
            "<th>Missed attempts</th><th>Writes lost</th><th>Load errors after the fault</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def faults_html(faults: list[Mapping[str, Any]]) -> str:
    """One row per fault with the RTO measured over its own window (up to the next fault): a
    scenario's figures are timed from its last fault, and this shows every fault's own."""
    if not faults:
        return ""
    first = faults[0]["start"]

    def rto(entry: Mapping[str, Any], last: bool) -> str:
        if not entry.get("measured"):
            return f"not measured ({entry.get('reason', '')})"
        if not entry.get("recovered"):
            return "not recovered" if last else "writes not back before the next fault"
        outage = f", outage {entry['outage_s']:.3f} s" if entry.get("disrupted") else ", no write failed"
        return f"{entry['rto_s']:.3f} s{outage}"

    rows = "".join(
        f"<tr><td>{index + 1}</td><td>{escape(str(f.get('description') or f.get('name')))}</td>"
        f"<td>+{f['start'] - first:.3f} s</td><td>{escape(rto(f.get('rto', {}), index == len(faults) - 1))}</td></tr>"
        for index, f in enumerate(faults))
    return ("<h4>Faults</h4><table><thead><tr><th>#</th><th>Fault</th><th>Issued</th><th>RTO (to the first "
            f"acknowledged write in its window)</th></tr></thead><tbody>{rows}</tbody></table>"
            + ("<p>The verdicts time their figures from the last fault.</p>" if len(faults) > 1 else ""))


def restore_html(restore: Mapping[str, Any]) -> str:
    """The restore's exactness: what it kept, lost and leaked around its boundary, and how sharp
    that boundary was."""
    if not restore.get("measured"):
        return ""

    def at(epoch: float) -> str:
        return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="microseconds")

    low, high = restore["boundary_low"], restore["boundary_high"]
    boundary = at(low) if low == high else f"{at(low)} to {at(high)}"
    seqs = (lambda values: ", ".join(map(str, values[:20])) + (" …" if len(values) > 20 else "") or "none")
    rows = [
        ("Restored into", restore["target"] + f" ({restore['kind']})"),
        ("Boundary (server clock)", boundary),
        ("Tolerance", f"{restore['tolerance_s'] * 1000:g} ms (engine {restore['engine_resolution_s'] * 1000:g} ms, "
                      f"clock offset {restore['clock_uncertainty_s'] * 1000:g} ms)"),
        ("Acknowledged before it, present", str(restore["present"])),
        ("Acknowledged before it, lost", f"{restore['restore_lost_count']}: {seqs(restore['lost'])}"),
        ("Begun after it, leaked", f"{restore['restore_leaked_count']}: {seqs(restore['leaked'])}"),
        ("In flight across it (ambiguous)", str(restore["ambiguous"])),
        ("Unknown outcome (never counted)", str(restore["unknown_not_counted"])),
        ("Restore time (request to first acknowledged write)",
         "not measured" if restore["restore_time_s"] is None else f"{restore['restore_time_s']:.3f} s"),
    ]
    if restore["kind"] == "backtrack":
        rows[0] = ("Rewound in place", restore["target"] + " (backtrack)")
        rows[-1] = ("Backtrack duration (request to completed)",
                    "not measured" if restore.get("restore_duration_s") is None
                    else f"{restore['restore_duration_s']:.3f} s")
        if restore.get("requested_point") is not None and restore["requested_point"] != low:
            rows.insert(2, ("Asked for (server clock)", at(restore["requested_point"])))
    if restore["kind"] == "latest":
        rows.append(("Given up by restoring to the latest restorable time",
                     f"{restore['accepted_loss_count']} acknowledged writes, "
                     f"{restore['accepted_loss_window_s']:.3f} s before the request"))
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<h4>Restore exactness</h4><table><tbody>{body}</tbody></table>"


def topology_views_html(views: Mapping[str, Any]) -> str:
    """The writer and replica lag as the RDS API and as Aurora's own SQL reported them."""
    if not views.get("measured"):
        return ""

    def after(seconds: float | None) -> str:
        return "did not change" if seconds is None else f"{seconds:.3f} s after the fault"

    lags = ", ".join(f"{escape(reader)} {'n/a' if lag is None else f'{lag:g} ms'}"
                     for reader, lag in views.get("sql_max_lag_ms", {}).items()) or "no reader"
    return (
        "<h4>Topology seen two ways</h4><table><thead><tr><th>View</th><th>Writer at the end</th>"
        "<th>Writer changed</th></tr></thead><tbody>"
        f"<tr><td>RDS API (DescribeDBClusters)</td><td>{escape(str(views.get('api_writer')))}</td>"
        f"<td>{after(views.get('api_writer_changed_after_s'))}</td></tr>"
        f"<tr><td>Aurora SQL (replica status, {views.get('sql_samples', 0)} reads)</td>"
        f"<td>{escape(str(views.get('sql_writer')))}</td><td>{after(views.get('sql_writer_changed_after_s'))}</td></tr>"
        f"</tbody></table><p>Highest replica lag reported by Aurora's SQL: {lags}.</p>"
    )


def _verdict_document(day: ScenarioDay) -> dict[str, Any]:
    """`verdict.json` as `GameDay.close()` wrote it; rebuilt from `day.verdicts` if it is missing."""
    path = Path(day.directory) / "verdict.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"scenario": day.scenario, "status": overall_status(day.verdicts),
            "verdicts": [v.as_dict() for v in day.verdicts], "measurements": {}}


def measured_text(verdict: Mapping[str, Any]) -> str:
    if verdict["metric"] == "fact":
        return "holds" if verdict["status"] == MET else "does not hold"
    if verdict["measured"] is None:
        return "not measured"
    return quantity(verdict["measured"], verdict["unit"])


def limit_text(verdict: Mapping[str, Any]) -> str:
    if verdict["metric"] == "fact":
        return "must hold"
    return f"{SYMBOLS.get(verdict['comparison'], verdict['comparison'])} {quantity(verdict['limit'], verdict['unit'])}"


def _event(record: Mapping[str, Any]) -> dict[str, Any]:
    """An RDS event as the API gave it, with its date also in ISO 8601 for a person."""
    iso = datetime.fromtimestamp(float(record["date"]), timezone.utc).isoformat(timespec="milliseconds")
    return {"date": iso, **{k: v for k, v in record.items() if k not in ("kind", "t", "m", "date")},
            "epoch": record["date"]}


def _redactor(day: ScenarioDay) -> Any:
    """A function that blanks the database password out of text bound for the report.

    The password is only compared with, never passed to Allure or written anywhere.
    """
    credentials = getattr(day.cut, "credentials", None) if day.cut is not None else None
    secret = getattr(credentials, "password", None) or ""
    if len(secret) < MIN_SECRET_LENGTH:
        return lambda text: text
    return lambda text: text.replace(secret, REDACTED)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n"


# --- per run -----------------------------------------------------------------------------------------
def write_run_metadata(config: Any, environment: Any) -> Path | None:
    """environment.properties, executor.json and categories.json into the Allure results directory.

    Does nothing (returns None) when pytest runs without `--alluredir`.
    """
    results = getattr(config.option, "allure_report_dir", None)
    if not results:
        return None
    directory = Path(results)
    directory.mkdir(parents=True, exist_ok=True)
    facts = run_environment(environment)
    (directory / "environment.properties").write_text(_properties(facts), encoding="utf-8")
    # the same facts for the certificate, beside the results (Allure reads every file inside them)
    run_dir = Path(os.environ.get("GAMEDAY_RUN_DIR") or directory.parent)
    (run_dir / "environment.json").write_text(_json(facts), encoding="utf-8")
    run_id = os.environ.get("GAMEDAY_RUN_ID")
    executor = {"name": "aurora-gameday", "type": "ci" if os.environ.get("CI") else "local",
                "reportName": f"aurora-gameday: {run_id}" if run_id else "aurora-gameday"}
    if run_id:
        executor["buildName"] = run_id
    (directory / "executor.json").write_text(_json(executor), encoding="utf-8")
    (directory / "categories.json").write_text(_json(CATEGORIES), encoding="utf-8")
    return directory


def run_environment(environment: Any) -> dict[str, str]:
    """What the report's environment section shows: the target's own facts, then versions."""
    facts = {str(k): str(v) for k, v in environment.describe().items()}
    facts["harness.version"] = _version("aurora-gameday")
    facts.update(_git())
    facts["python"] = platform.python_version()
    for package in ("boto3", "botocore", "psycopg"):
        facts[package] = _version(package)
    if os.environ.get("GAMEDAY_RUN_ID"):
        facts["run.id"] = os.environ["GAMEDAY_RUN_ID"]
    return facts


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git() -> dict[str, str]:
    """The revision the harness ran from, and whether the work tree had uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(PROJECT), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    try:
        revision = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git.revision": revision, "git.dirty": str(dirty).lower()}


def _properties(values: Mapping[str, str]) -> str:
    """Java .properties text: separators and line breaks escaped, non-ASCII as \\uXXXX (both Allures read it)."""
    def escaped(text: str, key: bool) -> str:
        out = []
        for char in text:
            if char == "\\" or (key and char in "=:#! "):
                out.append("\\" + char)
            elif char == "\n":
                out.append("\\n")
            elif char == "\r":
                out.append("\\r")
            elif char == "\t":
                out.append("\\t")
            elif ord(char) > 126 or ord(char) < 32:
                out.extend(f"\\u{unit:04x}" for unit in _utf16(char))
            else:
                out.append(char)
        return "".join(out)
    return "".join(f"{escaped(k, True)}={escaped(v, False)}\n" for k, v in values.items())


def _utf16(char: str) -> list[int]:
    data = char.encode("utf-16-be")
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
