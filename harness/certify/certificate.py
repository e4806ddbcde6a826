"""The one-page DR certificate: what was tested, by whom, with what, and whether it passed.

Built from a run directory alone (`summary.json`, `environment.json`, each scenario's
`verdict.json` and timeline, `quality-gate.json`), so it states nothing the evidence bundle does
not hold: the system under test (target, clusters, engines and versions, Regions), the harness
version and git revision, who ran it and when, one line per DR capability and check with the
measured figure, the target, its source and met or breached, and the digest of the evidence it
summarises. `certificate.json` holds the same facts for machines (and for `gameday verify`).

The PDF is printed by the Chromium the project already drives (playwright-core,
`print_certificate.mjs`), scaled to fit one A4 page; the same visit reports what the page shows,
so a test can look at it as a person would.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from harness.environments import ENGINE_TITLES
from harness.report.evidence import limit_text, measured_text
from harness.report.inspect import chromium_script
from harness.targets import load_targets
from harness.verdicts import BREACHED, MET

__all__ = ["Certificate", "CertificateView", "Line", "build_certificate", "certificate_html", "print_certificate",
           "signature_text", "write_certificate"]

SCRIPT = Path(__file__).with_name("print_certificate.mjs")
PRINT_TIMEOUT = 180
CLUSTER_NOTE = re.compile(r"^cluster (\S+) \(")
TITLE_ENGINE = re.compile(r"^(?P<capability>.*) on (?P<engine>Aurora \w+)$")
ENGINE_BY_TITLE = {title: engine for engine, title in ENGINE_TITLES.items()}


@dataclass(frozen=True)
class Line:
    """One check of one DR capability (a scenario on one engine)."""

    capability: str
    engine: str
    check: str
    measured: str
    target: str
    source: str
    url: str | None
    status: str  # PolicyMet | PolicyBreached | not run | failed


@dataclass
class Certificate:
    title: str
    certified: bool
    reason: str  # the sentence under the verdict
    run_id: str
    target: str
    system: list[tuple[str, str]]  # system under test, as label and value
    harness: list[tuple[str, str]]
    run: list[tuple[str, str]]  # who, when
    lines: list[Line]
    quality_gate: list[dict[str, Any]]
    evidence_digest: str
    signature: str
    regressions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        document = asdict(self)
        for key in ("system", "harness", "run"):
            document[key] = dict(getattr(self, key))
        return document


@dataclass(frozen=True)
class CertificateView:
    """What Chromium showed of the certificate before printing it."""

    title: str
    verdict: str
    lines: int
    digest: str
    external_requests: tuple[str, ...]
    scale: float  # how much the PDF was shrunk to fit one page (1: not at all)


def build_certificate(run_dir: Path, *, evidence_digest: str, signature: str, name: str | None = None,
                      clusters: Sequence[Mapping[str, str]] = (), regressions: Sequence[str] = ()) -> Certificate:
    """The certificate of a run. `clusters`: on AWS, the profile's clusters as DescribeDBClusters
    gives them (identifier, engine, version, region); on the emulator they come from the timelines."""
    run_dir = Path(run_dir)
    summary = _json(run_dir / "summary.json") or {}
    facts = _json(run_dir / "environment.json") or {}
    gate = _json(run_dir / "quality-gate.json") or []
    documents = {d["scenario"]: d for d in summary.get("scenarios", [])}
    outcomes = sorted(summary.get("outcomes", []), key=lambda o: (o.get("feature") or "", o.get("title") or ""))
    lines = [line for outcome in outcomes for line in _lines(outcome, documents.get(outcome.get("title") or ""))]
    breached = sum(line.status == BREACHED for line in lines)
    problems = [o for o in outcomes if o["status"] in ("failed", "error")]
    judged = [o for o in outcomes if o["status"] in ("passed", "failed")]
    gate_failed = [g for g in gate if not g.get("success")]
    certified = bool(judged) and not breached and not problems and not gate_failed
    if certified:
        reason = f"Every one of the {len(lines)} checks of {len(judged)} scenario runs met its target."
    elif not judged:
        reason = "No scenario of the suite ran to its verdicts on this target: nothing is certified."
    else:
        reason = (f"{breached} of {len(lines)} checks breached their target; {len(problems)} scenario run(s) did not "
                  f"pass{'; the quality gate failed' if gate_failed else ''}.")
    target = str(facts.get("target") or summary.get("target") or "unknown")
    return Certificate(
        title=f"Disaster-recovery certification{f': {name}' if name else ''}",
        certified=certified, reason=reason, run_id=str(facts.get("run.id") or run_dir.name), target=target,
        system=_system(run_dir, facts, target, clusters, summary.get("engines")), harness=_harness(facts),
        run=_who_and_when(summary),
        lines=lines, quality_gate=gate, evidence_digest=evidence_digest, signature=signature,
        regressions=list(regressions))


def certificate_html(certificate: Certificate) -> str:
    """A standalone page (no script, no external asset) laid out for one A4 page."""
    c = certificate
    verdict = "CERTIFIED" if c.certified else "NOT CERTIFIED"
    rows, previous, sources = [], None, {}  # sources: (title, url) -> its footnote number
    for line in c.lines:
        first = (line.capability, line.engine) != previous
        previous = (line.capability, line.engine)
        css = {MET: "met", BREACHED: "breached"}.get(line.status, "other")
        mark = {MET: "✓ met", BREACHED: "✗ breached"}.get(line.status, line.status)
        source = escape(line.source)
        if line.url:
            number = sources.setdefault((line.source, line.url), len(sources) + 1)
            source += f" <sup>[{number}]</sup>"
        if first:
            rows.append(f'<tr class="capability"><td colspan="5">{escape(line.capability)}'
                        f'{f" · {escape(line.engine)}" if line.engine else ""}</td></tr>')
        rows.append(f'<tr class="line {css}"><td>{escape(line.check)}</td><td>{escape(line.measured)}</td>'
                    f"<td>{escape(line.target)}</td><td>{source}</td>"
                    f'<td class="status">{escape(mark)}</td></tr>')
    gate = "; ".join(_gate_rule(g) for g in c.quality_gate) or "not evaluated"
    regressions = "".join(f"<li>{escape(r)}</li>" for r in c.regressions)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(c.title)} — run {escape(c.run_id)}</title><style>{STYLE}</style></head><body>"
        f'<header><div><h1>{escape(c.title)}</h1><div class="sub">aurora-gameday run {escape(c.run_id)} on '
        f'{escape(c.target)}</div></div><div data-testid="verdict" class="verdict {"ok" if c.certified else "no"}">'
        f"{verdict}</div></header><p class=\"reason\">{escape(c.reason)}</p>"
        '<section class="facts">'
        + _facts("System under test", c.system) + _facts("Harness", c.harness) + _facts("Run", c.run)
        + _facts("Evidence", [("Evidence digest (sha256)", c.evidence_digest), ("Signature", c.signature),
                              ("Quality gate", gate)], digest=True)
        + "</section>"
        '<table><thead><tr><th>DR capability: check</th><th>Measured</th><th>Target</th><th>Source</th>'
        f'<th>Result</th></tr></thead><tbody>{"".join(rows) or _NOTHING}</tbody></table>'
        + (f'<ol class="sources">{"".join(f"<li>{escape(title)}: {escape(url)}</li>" for title, url in sources)}'
           "</ol>" if sources else "")
        + (f'<div class="warn"><b>Regressions (warnings, not breaches):</b><ul>{regressions}</ul></div>'
           if regressions else "")
        + '<footer>Every figure is recomputable from the evidence bundle: <code>gameday verify BUNDLE --public-key '
          'KEY</code> checks each file against the signed manifest and recomputes each verdict from its timeline.'
          "</footer></body></html>\n")


def print_certificate(html: Path, pdf: Path) -> CertificateView:
    """Open the certificate in headless Chromium, say what it shows, and print it to one A4 page."""
    seen = chromium_script(SCRIPT, [Path(html).resolve().as_uri(), str(Path(pdf).resolve())], timeout=PRINT_TIMEOUT,
                           what="printing the certificate")
    return CertificateView(seen["title"], seen["verdict"], seen["lines"], seen["digest"], tuple(seen["external"]),
                           seen["scale"])


def write_certificate(certificate: Certificate, directory: Path) -> tuple[Path, Path, Path]:
    """certificate.html and certificate.json into `directory`; the PDF path is where to print it."""
    html, document, pdf = directory / "certificate.html", directory / "certificate.json", directory / "certificate.pdf"
    html.write_text(certificate_html(certificate), encoding="utf-8")
    document.write_text(json.dumps(certificate.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return html, document, pdf


def signature_text(key_id: str | None) -> str:
    return (f"Ed25519, key {key_id} (MANIFEST.json.sig)" if key_id else
            "unsigned: the bundle is hashed, not signed (no signing key was given)")


# --- what the certificate says ----------------------------------------------------------------------
def _lines(outcome: Mapping[str, Any], document: Mapping[str, Any] | None) -> list[Line]:
    title = outcome.get("title") or outcome.get("name") or "?"
    named = TITLE_ENGINE.match(title)
    capability, engine = (named["capability"], named["engine"]) if named else (title, "")
    if document is None or not document.get("verdicts"):
        said = {"skipped": "not run", "error": "could not run", "failed": "failed", "passed": "judged nothing"}
        status = "aborted" if document and document.get("aborted") else said.get(outcome["status"], outcome["status"])
        why = (document or {}).get("aborted") or outcome.get("message") or ""
        return [Line(capability, engine, "—", why[:160], "—", "—", None, status)]
    targets = load_targets()
    lines = []
    for verdict in document["verdicts"]:
        target = targets.get(verdict.get("target_id") or "")
        source = verdict.get("source_title") or "limit set in the scenario"
        if target is not None and target.source.section:
            source = f"{source}, {target.source.section}"
        lines.append(Line(capability, engine, verdict["check"], measured_text(verdict), limit_text(verdict), source,
                          target.source.url if target is not None else None, verdict["status"]))
    if outcome["status"] in ("failed", "error") and all(v["status"] == MET for v in document["verdicts"]):
        lines.append(Line(capability, engine, "scenario", (outcome.get("message") or "")[:160], "—", "—", None,
                          "failed"))
    return lines


def _system(run_dir: Path, facts: Mapping[str, str], target: str, clusters: Sequence[Mapping[str, str]],
            engines_run: Sequence[str] | None) -> list[tuple[str, str]]:
    system = [("Target", "Aurora emulator (real PostgreSQL and MariaDB engines)" if target == "emulator"
               else "Amazon Aurora (real AWS)")]
    if clusters:
        system.append(("Clusters", ", ".join(f"{c['identifier']} ({c.get('engine', '?')} {c.get('version', '')}, "
                                             f"{c.get('region', '?')})" for c in clusters)))
        system.append(("Regions", ", ".join(sorted({c.get("region", "?") for c in clusters}))))
    else:
        created = _clusters_of(run_dir)
        if created:
            system.append(("Clusters", f"{len(created)} created for the run, one per scenario, deleted after: "
                                       f"{', '.join(created)}"))
        if facts.get("emulator.region") or facts.get("aws.region"):
            system.append(("Regions", str(facts.get("emulator.region") or facts.get("aws.region"))))
    engines = [(ENGINE_TITLES.get(key.removeprefix("engine."), key), str(value)) for key, value in facts.items()
               if key.startswith("engine.") and (not engines_run or key.removeprefix("engine.") in engines_run)]
    if engines:
        system.append(("Engines and versions", "; ".join(f"{name} {version}" for name, version in engines)))
    if facts.get("emulator.dns_ttl_s"):
        system.append(("Cluster endpoint DNS TTL", f"{facts['emulator.dns_ttl_s']} s"))
    return system


def _clusters_of(run_dir: Path) -> list[str]:
    """The cluster each scenario ran on, from the first note of its timeline."""
    found = []
    for timeline in sorted(run_dir.glob("scenarios/*/*/timeline.jsonl")):
        with open(timeline, encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                matched = CLUSTER_NOTE.match(str(record.get("text", ""))) if record.get("kind") == "note" else None
                if matched:
                    found.append(matched[1])
                    break
    return found


def _harness(facts: Mapping[str, str]) -> list[tuple[str, str]]:
    revision = str(facts.get("git.revision", "unknown"))
    if facts.get("git.dirty") == "true":
        revision += " (with uncommitted changes)"
    return [("aurora-gameday", str(facts.get("harness.version", "unknown"))), ("Git revision", revision),
            ("Python", str(facts.get("python", "")))]


def _who_and_when(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    operator = os.environ.get("GAMEDAY_OPERATOR")
    if not operator and os.environ.get("GITHUB_ACTIONS"):
        operator = (f"GitHub Actions run {os.environ.get('GITHUB_RUN_ID', '?')} of "
                    f"{os.environ.get('GITHUB_REPOSITORY', '?')} by {os.environ.get('GITHUB_ACTOR', '?')}")
    if not operator:
        try:
            operator = f"{getpass.getuser()}@{socket.gethostname()}"
        except (OSError, KeyError):  # a container's user may have no name
            operator = f"uid {os.getuid()}@{socket.gethostname()}"
    return [("Run by", operator), ("Started", str(summary.get("started", "?"))),
            ("Finished", str(summary.get("finished", "?")))]


def _gate_rule(rule: Mapping[str, Any]) -> str:
    name = str(rule.get("rule"))
    bound = "at most" if name.rsplit("/", 1)[-1].startswith("max") else "at least"
    return f"{'✓' if rule.get('success') else '✗'} {name}: {rule.get('actual')} ({bound} {rule.get('expected')})"


def _facts(heading: str, facts: Sequence[tuple[str, str]], digest: bool = False) -> str:
    items = "".join(f"<dt>{escape(label)}</dt><dd{' data-testid=digest class=mono' if digest and i == 0 else ''}>"
                    f"{escape(value)}</dd>" for i, (label, value) in enumerate(facts))
    return f"<div><h2>{escape(heading)}</h2><dl>{items}</dl></div>"


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


_NOTHING = '<tr><td colspan="5">No scenario of the suite was selected.</td></tr>'
STYLE = (
    "@page{size:A4;margin:10mm}"
    "*{box-sizing:border-box}body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;color:#263238;margin:0;"
    "font-size:10px;width:190mm}"
    "header{display:flex;justify-content:space-between;align-items:center;border-bottom:2px solid #37474f;"
    "padding-bottom:6px}h1{font-size:18px;margin:0}.sub{color:#546e7a;font-size:11px}"
    ".verdict{font-size:16px;font-weight:bold;padding:6px 12px;border-radius:4px;letter-spacing:1px}"
    ".verdict.ok{background:#c8e6c9;color:#1b5e20;border:2px solid #1b5e20}"
    ".verdict.no{background:#ffcdd2;color:#b71c1c;border:2px solid #b71c1c}"
    ".reason{margin:6px 0 8px;font-weight:bold}"
    ".facts{display:grid;grid-template-columns:1fr 1fr;gap:4px 16px;margin-bottom:8px}"
    "h2{font-size:11px;margin:4px 0 2px;color:#37474f;text-transform:uppercase;letter-spacing:.5px}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:1px 8px;margin:0}dt{color:#546e7a}"
    "dd{margin:0;overflow-wrap:anywhere}.mono{font-family:DejaVu Sans Mono,monospace;font-size:9px}"
    "table{border-collapse:collapse;width:100%;font-size:9px}th,td{border:1px solid #cfd8dc;padding:2px 4px;"
    "text-align:left;vertical-align:top}th{background:#eceff1}"
    "tr.capability td{background:#eceff1;font-weight:bold;border-top:1.5px solid #78909c}"
    "tr.line td:first-child{padding-left:12px}"
    "tr.met .status{color:#1b5e20;font-weight:bold}tr.breached{background:#ffebee}"
    "tr.breached .status{color:#b71c1c;font-weight:bold}tr.other{background:#fff8e1}"
    ".sources{margin:4px 0 0;padding-left:22px;color:#546e7a;font-size:8px;overflow-wrap:anywhere}"
    "sup{font-size:7px}"
    ".warn{margin-top:6px;padding:4px 8px;background:#fff3e0;border-left:3px solid #ef6c00}.warn ul{margin:2px 0}"
    "footer{margin-top:8px;color:#546e7a;font-size:9px}code{font-size:9px}"
)
