"""`gameday run`: run scenarios with pytest-bdd and write `reports/<run-id>/`.

pytest runs in this process (never as a child), so killing `gameday run` takes everything it
started with it: the probes die with the process, the emulator's watchdog reaps the engines,
and the timeline written so far stays on disk.

Exit status, so a scheduler can tell a finding from a failure to look: 0 every verdict met; 1 a
verdict breached or a scenario failed; 2 usage or bad input (nothing ran, or nothing matched);
3 the target or the harness could not run (an emulator that would not start, an unreachable
AWS endpoint, a scenario that errored before or after its steps) with no breach to report.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from gherkin.errors import ParserError
from gherkin.parser import Parser

from harness.certify.settings import SettingsError, trend_settings
from harness.environments import ENGINES, AwsEnvironment, TargetUnavailable, check_engines
from harness.report.junit import write_junit
from harness.targets import table

PLUGIN = "harness.steps.plugin"  # the shipped steps (`steps/` in a checkout): see setup.py
EXIT_OK, EXIT_BREACHED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
JUNIT = "junit.xml"


class RunError(ValueError):
    """Bad input to `gameday run`: the message names the file or option at fault (exit 2)."""

    status = EXIT_USAGE


class TargetUnreachable(RunError):
    """The target did not answer before anything ran (exit 3): not the user's input, the infrastructure."""

    status = EXIT_UNAVAILABLE


@dataclass
class RunOptions:
    features: list[Path] = field(default_factory=list)  # default: ./features
    target: str = "emulator"
    tags: str | None = None
    engines: list[str] = field(default_factory=list)  # default: both on the emulator, the profile's on AWS
    profile: Path | None = None
    dry_run: bool = False
    run_id: str | None = None
    reports: Path = field(default_factory=lambda: Path.cwd() / "reports")
    dns_ttl: float | None = None
    load_workers: int = 0  # Locust worker processes per load (0: one process, no master)


@dataclass
class Outcome:
    """What pytest reported for one scenario."""

    name: str
    status: str  # passed | failed | skipped | error
    message: str = ""
    title: str | None = None  # as the reports name it: "<scenario> on <engine>" (set by the plugin)
    feature: str | None = None
    duration: float = 0.0


@dataclass
class RunResult:
    """What `execute` did: the exit status, where the run is, and each scenario's outcome."""

    status: int
    run_id: str
    run_dir: Path
    target: str
    engines: list[str]
    outcomes: list[Outcome]
    summary: dict[str, Any]
    started: datetime
    finished: datetime


class OutcomeCollector:
    """A pytest plugin that keeps each scenario's result, for the summary."""

    def __init__(self) -> None:
        self.outcomes: dict[str, Outcome] = {}
        self.collection_errors: list[str] = []
        self._seconds: dict[str, float] = {}  # setup, call and teardown together

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._seconds[report.nodeid] = self._seconds.get(report.nodeid, 0.0) + report.duration
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
        outcome = self.outcomes.get(report.nodeid)
        if outcome is not None:
            outcome.duration = self._seconds[report.nodeid]
            named = dict(report.user_properties)
            outcome.title = outcome.title or named.get("scenario")
            outcome.feature = outcome.feature or named.get("feature")

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
    if not paths and not (Path.cwd() / "features").is_dir():
        raise RunError(f"no feature files given and no features/ directory in {Path.cwd()}: name your .feature "
                       f"files or a directory of them")
    for path in paths or [Path.cwd() / "features"]:
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
    return execute(options).status


def execute(options: RunOptions) -> RunResult:
    """Run the game day and say how it went (RunError before anything ran)."""
    if options.target not in ("emulator", "aws"):
        raise RunError(f"unknown target {options.target!r}: use emulator or aws")
    if options.dry_run and options.target != "aws":
        raise RunError("--dry-run shows the plan for real AWS; on the emulator nothing needs protecting")
    if options.profile and not options.profile.is_file():
        raise RunError(f"profile {options.profile} does not exist")
    try:
        trend_settings(options.profile)  # read by each scenario's teardown: a bad table is bad input now
    except SettingsError as error:
        raise RunError(str(error)) from None
    features = check_features(options.features)
    engines = run_engines(options)
    run_id = options.run_id or new_run_id()
    run_dir = (options.reports / run_id).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update({
        "GAMEDAY_TARGET": options.target,
        "GAMEDAY_RUN_ID": run_id,
        "GAMEDAY_RUN_DIR": str(run_dir),
        "GAMEDAY_FEATURES": os.pathsep.join(map(str, features)),
        "GAMEDAY_DRY_RUN": "1" if options.dry_run else "0",
        "GAMEDAY_ENGINES": ",".join(engines),
    })
    if options.profile:
        os.environ["GAMEDAY_PROFILE"] = str(options.profile.resolve())
    if options.dns_ttl is not None:
        os.environ["GAMEDAY_DNS_TTL"] = str(options.dns_ttl)
    if options.load_workers:
        os.environ["GAMEDAY_LOAD_WORKERS"] = str(options.load_workers)
    # allure-pytest-bdd names results by the feature's path under the rootdir, so it must hold them all;
    # the user's own pytest configuration (if any) has nothing to say about a game day.
    rootdir = os.path.commonpath([str(f.parent) for f in features])
    args = [str(scenarios_module()), "-p", PLUGIN, "--rootdir", rootdir, "-c", os.devnull, "--import-mode=importlib",
            "-p", "no:cacheprovider", "--strict-markers", "-q", "--tb=short",
            f"--alluredir={run_dir / 'allure-results'}"]
    if options.tags:
        args += ["-m", marker_expression(options.tags)]
    collector = OutcomeCollector()
    print(f"gameday: run {run_id} on {options.target} ({', '.join(engines)}): {len(features)} feature file(s) -> "
          f"{run_dir}", flush=True)
    started = datetime.now(timezone.utc)
    pytest_status = pytest.main(args, plugins=[collector])
    finished = datetime.now(timezone.utc)
    summary = summarize(run_dir, collector, about={
        "run_id": run_id, "target": options.target, "engines": engines,
        "started": started.isoformat(timespec="seconds"), "finished": finished.isoformat(timespec="seconds")})
    print(summary["text"], flush=True)
    status = exit_status(pytest_status, collector, summary["breached"])
    if pytest_status == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("gameday: no scenario matched the selection", flush=True)
    write_junit(run_dir / JUNIT, collector.outcomes.values(), {s["scenario"]: s for s in summary["scenarios"]},
                suite=f"aurora-gameday: {run_id}", started=started,
                properties={"target": options.target, "engines": ",".join(engines), "run.id": run_id})
    return RunResult(status, run_id, run_dir, options.target, engines, list(collector.outcomes.values()), summary,
                     started, finished)


def exit_status(pytest_status: int | pytest.ExitCode, collector: OutcomeCollector, breached: int) -> int:
    """A breach (or a failed scenario) outranks a scenario that could not run: it is a finding."""
    if collector.collection_errors or pytest_status in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR,
                                                        pytest.ExitCode.NO_TESTS_COLLECTED):
        return EXIT_USAGE
    statuses = {o.status for o in collector.outcomes.values()}
    if "failed" in statuses or breached:
        return EXIT_BREACHED
    return EXIT_UNAVAILABLE if "error" in statuses else EXIT_OK


def scenarios_module() -> Path:
    """The module that binds the features as tests, shipped beside the steps."""
    import harness.steps

    return Path(harness.steps.__file__).with_name("test_gameday.py")


def run_engines(options: RunOptions) -> list[str]:
    """`--engine` as given; else both engines on the emulator, and on AWS the engines of the clusters
    the profile allows (read, never changed, through DescribeDBClusters)."""
    try:
        if options.engines:
            return check_engines(options.engines)
        if options.target == "aws" and options.profile:
            engines = AwsEnvironment(profile=options.profile,
                                     endpoint_url=os.environ.get("GAMEDAY_AWS_ENDPOINT_URL")).engines()
            if not engines:
                raise RunError(f"profile {options.profile} allows no cluster")
            return engines
    except RunError:
        raise
    except TargetUnavailable as error:
        raise RunError(str(error)) from None
    except Exception as error:  # the API refused or did not answer
        raise TargetUnreachable(f"cannot read the engines of the profile's clusters: {error}") from None
    return list(ENGINES)


def summarize(run_dir: Path, collector: OutcomeCollector, about: dict[str, Any] | None = None) -> dict[str, Any]:
    """summary.json and a terminal table: each scenario's status and its verdicts; `about` (the
    run's id, target, engines and times) heads summary.json."""
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
    document = {**(about or {}), "run_dir": str(run_dir), "scenarios": scenarios,
                "outcomes": [o.__dict__ for o in collector.outcomes.values()], "breached": breached}
    (run_dir / "summary.json").write_text(json.dumps(document, indent=2) + "\n")
    text = "\n".join(lines)
    (run_dir / "summary.txt").write_text(text + "\n")
    return {"text": text, "breached": breached, "scenarios": scenarios}


def _shorten(text: str, width: int) -> str:
    """Keep both ends: an outline's example ("... on Aurora MySQL") is at the end."""
    return text if len(text) <= width else f"{text[:width - 22]}…{text[-21:]}"
