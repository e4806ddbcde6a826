"""`gameday report`: a run's Allure results rendered to HTML by Allure 3, offline, with history.

Allure 3 is the npm package `allure`, pinned in the checkout's package.json and installed into
node_modules/ on first use (`npm ci` against the committed lockfile), so a fresh clone renders
with nothing but Node and the npm registry. Nothing is fetched while rendering.

History: every run of the checkout shares `reports/history.jsonl` (Allure 3's `historyPath`):
each render of a new run appends one line, and the report shows trends over all earlier lines.
Rendering the same run again reads the history but does not append to it, so a re-render never
counts a run twice.

The Allure config is written as `allurerc.json` into the run directory: plain data (no
`import ... from "allure"`, which fails unless allure resolves from the run directory), and a
record of exactly how the report was made.

Quality gate: given rules (`gameday certify` gives them), the report is rendered by
`generate_report.mjs`, which also judges Allure 3's quality gate (`allure generate` reads the
rules but never evaluates them): the Quality Gates tab shows the result, and `quality-gate.json`
in the run directory keeps it for the caller.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.report import PROJECT
from harness.report.evidence import CATEGORIES, REGRESSION_CATEGORY

__all__ = ["GateResult", "NoResults", "RenderError", "add_report_arguments", "latest_run", "node_tool",
           "quality_gate_results", "render", "report_command"]

RESULTS = "allure-results"
OUTPUT = "html"
HISTORY = "history.jsonl"
CONFIG = "allurerc.json"
QUALITY_GATE = "quality-gate.json"
GATED_GENERATOR = Path(__file__).with_name("generate_report.mjs")
NPM_FLAGS = ("--no-audit", "--no-fund")
NPM_TIMEOUT = 600
RENDER_TIMEOUT = 600
ANALYTICS_HOST = "googletagmanager.com"
ANALYTICS = re.compile(r'<script async src="https://www\.googletagmanager\.com/[^"]*"></script>\s*'
                       r"<script>(?:(?!</script>)[\s\S])*gtag\((?:(?!</script>)[\s\S])*</script>")


class RenderError(RuntimeError):
    """The report could not be made (a tool is missing or failed); the message says what to do."""


class NoResults(RenderError):
    """There is nothing to render: no run, or a run without Allure results."""


@dataclass(frozen=True)
class GateResult:
    """One rule of Allure 3's quality gate, as the report's Quality Gates tab shows it."""

    rule: str
    success: bool
    expected: Any
    actual: Any
    message: str


def render(run_dir: Path, *, single_file: bool = False,
           quality_gate: Sequence[Mapping[str, Any]] | None = None) -> Path:
    """Render `run_dir/allure-results` into `run_dir/html`; returns the report's index.html.

    `single_file` inlines everything into index.html (an archivable artifact that opens from
    disk); otherwise the report is a directory that must be served over HTTP to be viewed.
    `quality_gate`: Allure 3 rule sets (e.g. `[{"maxFailures": 0}]`) judged into the report and
    `quality-gate.json` (`quality_gate_results`).
    """
    run_dir = Path(run_dir).resolve()
    results = run_dir / RESULTS
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise NoResults(f"no Allure results in {results}: run scenarios with `gameday run` (or pytest "
                        f"--alluredir={results}) first")
    allure = node_tool("allure")
    output = run_dir / OUTPUT
    history = run_dir.parent / HISTORY
    name = f"aurora-gameday: {run_dir.name}"
    config = {
        "name": name,
        "output": str(output),
        "historyPath": str(history),
        "appendHistory": not _in_history(history, name),
        "plugins": {"awesome": {"options": {"reportName": name, "singleFile": single_file,
                                            "groupBy": ["epic", "feature"]}}},
        "categories": [{k: c[k] for k in ("name", "matchedStatuses", "messageRegex") if k in c}
                       for c in CATEGORIES] + [REGRESSION_CATEGORY],
    }
    if quality_gate is not None:
        config["qualityGate"] = {"rules": [dict(rules) for rules in quality_gate]}
    config_path = run_dir / CONFIG
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if output.exists():
        shutil.rmtree(output)  # a stale file from an earlier render (other mode) must not survive
    (run_dir / QUALITY_GATE).unlink(missing_ok=True)
    if quality_gate is None:
        _run([str(allure), "generate", str(results), "--config", str(config_path), "--cwd", str(run_dir)],
             cwd=run_dir, timeout=RENDER_TIMEOUT, what="Allure 3 (allure generate)")
    else:
        judged = _run(["node", str(GATED_GENERATOR), str(config_path), str(results), str(run_dir)], cwd=run_dir,
                      timeout=RENDER_TIMEOUT, what="Allure 3 with its quality gate (generate_report.mjs)")
        try:
            gate = json.loads(judged.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError) as exc:
            raise RenderError(f"the quality gate gave no result: {judged[-500:]!r}") from exc
        (run_dir / QUALITY_GATE).write_text(json.dumps(gate, indent=2) + "\n", encoding="utf-8")
    index = output / "index.html"
    if not index.exists():
        raise RenderError(f"Allure 3 finished but wrote no {index}")
    _strip_analytics(index)
    return index


def quality_gate_results(run_dir: Path) -> list[GateResult]:
    """The quality gate's rules as the last gated render judged them (empty: no gate)."""
    path = Path(run_dir) / QUALITY_GATE
    if not path.exists():
        return []
    return [GateResult(r["rule"], bool(r["success"]), r.get("expected"), r.get("actual"), r.get("message", ""))
            for r in json.loads(path.read_text(encoding="utf-8"))]


def latest_run(reports_dir: Path) -> Path:
    """The run directory under `reports_dir` whose Allure results were written last."""
    runs = [p.parent for p in Path(reports_dir).glob(f"*/{RESULTS}") if p.is_dir()]
    if not runs:
        raise NoResults(f"no run with Allure results under {reports_dir}: run `gameday run` first")
    return max(runs, key=lambda run: (run / RESULTS).stat().st_mtime)


def node_tool(name: str) -> Path:
    """node_modules/.bin/<name> of the checkout, installing the pinned npm packages if needed."""
    tool = PROJECT / "node_modules" / ".bin" / name
    if tool.exists():
        return tool
    for program in ("node", "npm"):
        if shutil.which(program) is None:
            raise RenderError(f"{program} is not installed: the report tools run on Node.js 20+ "
                              "(Debian: apt-get install nodejs npm)")
    if not (PROJECT / "package.json").exists():
        raise RenderError(f"no package.json in {PROJECT}: the report tools are installed from the checkout")
    install = "ci" if (PROJECT / "package-lock.json").exists() else "install"
    _run(["npm", install, *NPM_FLAGS], cwd=PROJECT, timeout=NPM_TIMEOUT, what=f"npm {install}")
    if not tool.exists():
        raise RenderError(f"npm {install} succeeded but {tool} is missing: is {name} in package.json?")
    return tool


def _strip_analytics(index: Path) -> None:
    """Remove the Google Analytics tag Allure 3's Awesome page always carries.

    An auditor's report must not report its opening (with the report's id) to a third party,
    and must open the same with no network at all.
    """
    page = index.read_text(encoding="utf-8")
    stripped = ANALYTICS.sub("", page, count=1)
    if ANALYTICS_HOST in stripped:
        raise RenderError(f"{index} still loads {ANALYTICS_HOST}: Allure's page template changed; update "
                          "harness/report/render.py (ANALYTICS) for the pinned allure version")
    index.write_text(stripped, encoding="utf-8")


def _in_history(history: Path, name: str) -> bool:
    """Whether a report of this name (one per run) already added its line to the history."""
    if not history.exists():
        return False
    for line in history.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("name") == name:
                return True
        except (json.JSONDecodeError, AttributeError):
            continue
    return False


def _run(command: list[str], *, cwd: Path, timeout: float, what: str) -> str:
    """Run a report tool; its stdout, or RenderError with the tail of what it said."""
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=_quiet_env())
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"{what} did not finish within {timeout:.0f} s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise RenderError(f"{what} failed with exit status {done.returncode}:\n{tail}")
    return done.stdout


def _quiet_env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}


# --- gameday report [RUN_DIR] [--single-file] ----------------------------------------------------------
def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments `report_command` reads, for the `gameday report` subparser."""
    parser.add_argument("run_dir", nargs="?", type=Path, default=None,
                        help="a run directory, reports/<run-id> (default: the latest run)")
    parser.add_argument("--single-file", action="store_true",
                        help="inline everything into one index.html that opens from disk")
    parser.add_argument("--reports", type=Path, default=None,
                        help="where runs live when RUN_DIR is not given (default: ./reports)")
    parser.set_defaults(handler=report_command)


def report_command(args: argparse.Namespace) -> int:
    """Render a run's report and say where it is; 2 if there is nothing to render, 1 if rendering failed."""
    try:
        run_dir = args.run_dir if args.run_dir is not None else latest_run(args.reports or Path.cwd() / "reports")
        index = render(run_dir, single_file=args.single_file)
    except NoResults as exc:
        print(f"gameday: {exc}", file=sys.stderr)
        return 2
    except RenderError as exc:
        print(f"gameday: {exc}", file=sys.stderr)
        return 1
    print(f"report: {index}")
    if args.single_file:
        print("open it in a browser directly (everything is inside the one file)")
    else:
        print(f"view it served over HTTP: {node_tool('allure')} open {index.parent}")
    return 0
