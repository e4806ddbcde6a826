"""`gameday run`: run scenarios with pytest-bdd and write `reports/<run-id>/`.

pytest runs in this process (never as a child), so killing `gameday run` takes everything it
started with it: the probes die with the process, the emulator's watchdog reaps the engines,
and the timeline written so far stays on disk.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from gherkin.errors import ParserError
from gherkin.parser import Parser

from harness.targets import table

PROJECT = Path(__file__).resolve().parents[1]
SCENARIOS_MODULE = PROJECT / "steps" / "test_gameday.py"
FEATURES_DIR = PROJECT / "features"
EXIT_OK, EXIT_BREACHED, EXIT_USAGE = 0, 1, 2


class RunError(ValueError):
    """Bad input to `gameday run`: the message names the file or option at fault."""


@dataclass
class RunOptions:
    features: list[Path] = field(default_factory=list)
    target: str = "emulator"
    tags: str | None = None
    profile: Path | None = None
    dry_run: bool = False
    run_id: str | None = None
    reports: Path = PROJECT / "reports"
    dns_ttl: float | None = None
    load_workers: int = 0  # Locust worker processes per load (0: one process, no master)


@dataclass
class Outcome:
    """What pytest reported for one scenario."""

    name: str
    status: str  # passed | failed | skipped | error
    message: str = ""


class OutcomeCollector:
    """A pytest plugin that keeps each scenario's result, for the summary."""

    def __init__(self) -> None:
        self.outcomes: dict[str, Outcome] = {}
        self.collection_errors: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            status = report.outcome if report.when == "call" else ("error" if report.failed else report.outcome)
            previous = self.outcomes.get(report.nodeid)
            if previous is None or previous.status == "passed":
                message = ""
                if status == "skipped" and isinstance(report.longrepr, tuple):
                    message = str(report.longrepr[2]).removeprefix("Skipped: ")
                elif status != "passed":
                    message = _headline(report.longreprtext)
                self.outcomes[report.nodeid] = Outcome(report.nodeid.split("::")[-1], status, message)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(_headline(report.longreprtext))


def _headline(text: str) -> str:
    """The line of a failure that says what went wrong (E-lines first, else the last line)."""
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    lines = errors or [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:6])[:600] if errors else (lines[-1][:600] if lines else "")


def check_features(paths: Sequence[Path]) -> list[Path]:
    """Resolve feature files and parse each, so a malformed one is reported before anything runs."""
    files: list[Path] = []
    for path in paths or [FEATURES_DIR]:
        path = Path(path).resolve()
        if path.is_dir():
            files += sorted(path.rglob("*.feature"))
        elif path.suffix == ".feature" and path.is_file():
            files.append(path)
        else:
            raise RunError(f"{path}: not a .feature file or a directory of them")
    if not files:
        raise RunError(f"no .feature files in {', '.join(map(str, paths))}")
    for file in files:
        try:
            Parser().parse(file.read_text(encoding="utf-8"))
        except ParserError as exc:
            detail = " ".join(str(exc).split())
            raise RunError(f"{file}: malformed feature: {detail}") from None
    return files


def marker_expression(tags: str) -> str:
    """'@emulator-only and not @negative-control' -> 'emulator_only and not negative_control'."""
    return re.sub(r"@([\w-]+)", lambda m: m.group(1).replace("-", "_"), tags)


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def run(options: RunOptions) -> int:
    """Run the game day; the exit status is non-zero when any target is breached or a scenario fails."""
    if options.target not in ("emulator", "aws"):
        raise RunError(f"unknown target {options.target!r}: use emulator or aws")
    if options.dry_run and options.target != "aws":
        raise RunError("--dry-run shows the plan for real AWS; on the emulator nothing needs protecting")
    if options.profile and not options.profile.is_file():
        raise RunError(f"profile {options.profile} does not exist")
    features = check_features(options.features)
    run_id = options.run_id or new_run_id()
    run_dir = (options.reports / run_id).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update({
        "GAMEDAY_TARGET": options.target,
        "GAMEDAY_RUN_ID": run_id,
        "GAMEDAY_RUN_DIR": str(run_dir),
        "GAMEDAY_FEATURES": os.pathsep.join(map(str, features)),
        "GAMEDAY_DRY_RUN": "1" if options.dry_run else "0",
    })
    if options.profile:
        os.environ["GAMEDAY_PROFILE"] = str(options.profile.resolve())
    if options.dns_ttl is not None:
        os.environ["GAMEDAY_DNS_TTL"] = str(options.dns_ttl)
    if options.load_workers:
        os.environ["GAMEDAY_LOAD_WORKERS"] = str(options.load_workers)
    # allure-pytest-bdd names results by the feature's path under the rootdir, so it must hold them all.
    rootdir = os.path.commonpath([str(PROJECT), *map(str, features)])
    args = [str(SCENARIOS_MODULE), "--rootdir", rootdir, "-o", "addopts=", "-p", "no:cacheprovider",
            "--strict-markers", "-q", "--tb=short", f"--alluredir={run_dir / 'allure-results'}"]
    if options.tags:
        args += ["-m", marker_expression(options.tags)]
    collector = OutcomeCollector()
    print(f"gameday: run {run_id} on {options.target}: {len(features)} feature file(s) -> {run_dir}", flush=True)
    pytest_status = pytest.main(args, plugins=[collector])
    summary = summarize(run_dir, collector)
    print(summary["text"], flush=True)
    if collector.collection_errors or pytest_status in (pytest.ExitCode.USAGE_ERROR,
                                                        pytest.ExitCode.INTERNAL_ERROR):
        return EXIT_USAGE
    if pytest_status == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("gameday: no scenario matched the selection", flush=True)
        return EXIT_USAGE
    failed = any(o.status in ("failed", "error") for o in collector.outcomes.values())
    return EXIT_BREACHED if failed or summary["breached"] else EXIT_OK


def summarize(run_dir: Path, collector: OutcomeCollector) -> dict[str, Any]:
    """summary.json and a terminal table: each scenario's status and its verdicts."""
    verdict_files = sorted(run_dir.glob("scenarios/*/*/verdict.json"))
    scenarios = [json.loads(path.read_text()) for path in verdict_files]
    rows = [("SCENARIO", "STATUS", "VERDICTS")]
    for scenario in scenarios:
        breached = [v for v in scenario["verdicts"] if v["status"] == "PolicyBreached"]
        rows.append((_shorten(scenario["scenario"], 70), scenario["status"],
                     f"{len(scenario['verdicts']) - len(breached)} met, {len(breached)} breached"))
    lines = [table(rows)] if scenarios else ["no scenario produced a verdict"]
    for scenario in scenarios:
        for verdict in scenario["verdicts"]:
            if verdict["status"] == "PolicyBreached":
                lines.append(f"  BREACHED  {scenario['scenario']}: {verdict['explanation']}")
    problems = [o for o in collector.outcomes.values() if o.status in ("failed", "error") and
                not o.message.startswith("AssertionError: PolicyBreached")]
    lines += [f"  {o.status.upper()}  {o.name}: {o.message}" for o in problems]
    lines += [f"  SKIPPED  {o.name}: {o.message}" for o in collector.outcomes.values() if o.status == "skipped"]
    lines += [f"  COLLECTION ERROR  {message}" for message in collector.collection_errors]
    breached = sum(1 for s in scenarios if s["status"] == "PolicyBreached")
    document = {"run_dir": str(run_dir), "scenarios": scenarios,
                "outcomes": [o.__dict__ for o in collector.outcomes.values()], "breached": breached}
    (run_dir / "summary.json").write_text(json.dumps(document, indent=2) + "\n")
    text = "\n".join(lines)
    (run_dir / "summary.txt").write_text(text + "\n")
    return {"text": text, "breached": breached}


def _shorten(text: str, width: int) -> str:
    """Keep both ends: an outline's example ("... on Aurora MySQL") is at the end."""
    return text if len(text) <= width else f"{text[:width - 22]}…{text[-21:]}"
