"""The report an auditor reads, end to end: real Allure results from a real pytest-bdd run,
rendered by Allure 3, opened in headless Chromium.

No database is involved: a tiny feature in tmp_path drives a stand-in for `GameDay` whose
timeline is written by hand, and whose teardown does what `steps/plugin.py` does (write
verdict.json, then `attach_scenario_evidence`). The verdicts are judged by the real checkers and
the real catalog targets, and a breach fails the scenario with the same message the real hook
raises, so the categories are tested against the failure text they must match.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report.inspect import ensure_chromium, inspect_report
from harness.report.render import HISTORY, add_report_arguments, latest_run, render

PASSWORD = "Tr0ub4dor-and-3-correct-horse"  # the test cluster's password: must appear in no report file
RUN_ID = "20990101-000000-e2e1"
SCENARIOS = {
    "Failover within its targets": "passed",
    "Failover that loses acknowledged writes": "failed",
    "Cluster that never comes up": "broken",
}

FEATURE = """\
Feature: Evidence for auditors
  Scenario: Failover within its targets
    Given a game day that recorded a failover
    When the writes come back after 4 seconds
    Then the failover is judged

  Scenario: Failover that loses acknowledged writes
    Given a game day that recorded a failover
    When the writes come back after 4 seconds
    And the ledger lost 3 acknowledged writes
    Then the failover is judged

  Scenario: Cluster that never comes up
    Given a game day whose cluster cannot start
"""

TEST_MODULE = """\
from pytest_bdd import scenarios

from conftest import *  # noqa: F403 - the step definitions

scenarios("evidence.feature")
"""

CONFTEST = '''\
"""A stand-in for steps/plugin.py: a GameDay-like object, hand-written timelines, real verdicts."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from harness.dialects.base import Credentials
from harness.measure import measure_all
from harness.report.evidence import attach_scenario_evidence, write_run_metadata
from harness.targets import load_targets
from harness.timeline import read_timeline, to_ranges
from harness.verdicts import judge_fact, judge_target, write_verdict_file

PASSWORD = {password!r}
T0, M0 = 1_900_000_000.0, 5_000.0
FAULT_AT = 10.0


class FakeEnvironment:
    name = "fake-target"

    def describe(self):
        return {{"target": self.name, "fake.note": "écrit à la main: a=b"}}


@dataclass
class FakeDay:
    directory: Path
    scenario: str
    environment: Any
    cut: Any
    verdicts: list = field(default_factory=list)
    measurements: dict = field(default_factory=dict)

    def __post_init__(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        self.timeline = SimpleNamespace(path=self.directory / "timeline.jsonl")
        self.acked = []

    def record(self, kind, at, **fields):
        entry = {{"kind": kind, "t": T0 + at, "m": M0 + at, **fields}}
        with open(self.timeline.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\\n")

    def breached(self):
        return [v for v in self.verdicts if not v.met]


@pytest.fixture(scope="session", autouse=True)
def run_metadata(request):
    write_run_metadata(request.config, FakeEnvironment())


def pytest_bdd_before_scenario(request, feature, scenario):
    request.node.stash["scenario"] = scenario.name


@pytest.fixture
def game_day(request, tmp_path_factory):
    name = request.node.stash["scenario"]
    directory = Path(request.config.rootpath) / "run" / "scenarios" / name.lower().replace(" ", "-")
    cut = SimpleNamespace(identifier="gd-evidence-1", dialect=SimpleNamespace(engine="aurora-postgresql"),
                          credentials=Credentials("gameday", PASSWORD, "gameday"))
    day = FakeDay(directory, name, FakeEnvironment(), cut)
    yield day
    write_verdict_file(directory / "verdict.json", name, day.verdicts, day.measurements)
    attach_scenario_evidence(day)


def pytest_bdd_after_step(request, feature, scenario, step, step_func, step_func_args):
    """As steps/plugin.py: after the last step a breached verdict fails the scenario."""
    if step is not scenario.steps[-1] or "game_day" not in request.fixturenames:
        return
    breached = request.getfixturevalue("game_day").breached()
    if breached:
        lines = "\\n".join(f"  {{v.check}}: {{v.explanation}}" for v in breached)
        raise AssertionError(f"PolicyBreached ({{len(breached)}}):\\n{{lines}}")


@given("a game day that recorded a failover")
def steady_state(game_day):
    day = game_day
    day.record("topology", 0.0, status="available", writer="db-1", readers=["db-2", "db-3"])
    day.record("phase", 0.01, name="steady-state")
    for seq in range(1, 200):
        at = seq * 0.05
        day.record("write", at, seq=seq, start=M0 + at - 0.004, end=M0 + at, outcome="acknowledged",
                   server="db-1", error=None)
        day.acked.append(seq)
        for probe in ("reader:db-2", "reader-endpoint"):
            day.record("read", at + 0.02, probe=probe, start=M0 + at + 0.01, end=M0 + at + 0.02, outcome="ok",
                       max_seq=seq, server="db-2", error=None)
    day.record("phase", FAULT_AT - 0.01, name="fault")
    day.record("fault", FAULT_AT + 0.2, name="failover", description="FailoverDBCluster on gd-evidence-1",
               start=M0 + FAULT_AT, end=M0 + FAULT_AT + 0.2, detail={{}})


@when(parsers.parse("the writes come back after {{seconds:d}} seconds"))
def writes_back(game_day, seconds):
    day = game_day
    seq = 200
    at = FAULT_AT + 0.3
    while at < FAULT_AT + seconds:
        day.record("write", at, seq=seq, start=M0 + at - 0.3, end=M0 + at, outcome="failed", server=None,
                   error="connection refused")
        for probe in ("reader:db-2", "reader-endpoint"):
            day.record("read", at, probe=probe, start=M0 + at - 0.3, end=M0 + at, outcome="failed", max_seq=None,
                       server=None, error="connection refused")
        seq, at = seq + 1, at + 0.3
    day.record("topology", FAULT_AT + 1, status="failing-over", writer="db-1", readers=["db-2", "db-3"])
    day.record("event", FAULT_AT + 1.2, date=T0 + FAULT_AT + 1.1, source="gd-evidence-1", source_type="db-cluster",
               message="Started cross AZ failover to DB instance: db-2", categories=["failover"])
    day.record("topology", FAULT_AT + seconds, status="available", writer="db-2", readers=["db-1", "db-3"])
    day.record("phase", FAULT_AT + seconds, name="recovery")
    while at < FAULT_AT + seconds + 5:
        day.record("write", at, seq=seq, start=M0 + at - 0.004, end=M0 + at, outcome="acknowledged",
                   server="db-2", error=None)
        day.acked.append(seq)
        for probe in ("reader:db-2", "reader-endpoint"):
            day.record("read", at + 0.03, probe=probe, start=M0 + at + 0.01, end=M0 + at + 0.03, outcome="ok",
                       max_seq=seq, server="db-2", error=None)
        seq, at = seq + 1, at + 0.05
    day.record("ledger", at + 0.1, ranges=to_ranges(day.acked), duplicates={{}})


@when(parsers.parse("the ledger lost {{count:d}} acknowledged writes"))
def ledger_lost(game_day, count):
    kept = [s for s in game_day.acked if s not in range(190, 190 + count)]
    game_day.record("ledger", FAULT_AT + 30, ranges=to_ranges(kept), duplicates={{}})


@then("the failover is judged")
def judged(game_day):
    day = game_day
    records = read_timeline(day.timeline.path)
    day.measurements = measure_all(records)
    targets = load_targets()
    day.verdicts.append(judge_fact("promoted reader", holds=True,
                                   explanation="db-2 became the writer; the promotion tiers pick db-2"))
    day.verdicts.append(judge_target(targets["failover-with-replicas"], day.measurements["rto"]["rto_s"],
                                     check="writes back (RTO)"))
    day.verdicts.append(judge_target(targets["in-region-acknowledged-writes"],
                                     day.measurements["data_loss"]["lost_count"], check="data loss (RPO)"))


@given("a game day whose cluster cannot start")
def cluster_cannot_start(game_day):
    game_day.record("note", 0.0, text=f"connect to postgresql://gameday:{{PASSWORD}}@127.45.0.1:5432 failed")
    raise RuntimeError("the cluster did not start: DBClusterNotFoundFault")
'''


def write_project(directory: Path) -> Path:
    """The tiny pytest-bdd project, isolated from this repository's pytest configuration."""
    directory.mkdir(parents=True)
    (directory / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (directory / "evidence.feature").write_text(FEATURE)
    (directory / "conftest.py").write_text(CONFTEST.format(password=PASSWORD))
    (directory / "test_evidence.py").write_text(TEST_MODULE)
    return directory


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """reports/<run id>/allure-results from a real pytest-bdd + allure-pytest-bdd run."""
    root = tmp_path_factory.mktemp("gameday")
    project = write_project(root / "project")
    run = root / "reports" / RUN_ID
    env = {**os.environ, "GAMEDAY_RUN_ID": RUN_ID}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", f"--alluredir={run / 'allure-results'}", "."],
                          cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 failed, 1 passed" in done.stdout, done.stdout  # one scenario breaches, one breaks
    return run


def results_of(run_dir: Path) -> dict[str, dict]:
    results = [json.loads(p.read_text()) for p in (run_dir / "allure-results").glob("*-result.json")]
    return {r["name"]: r for r in results}


def test_each_scenario_carries_its_evidence(run_dir: Path) -> None:
    results = results_of(run_dir)
    assert {name: r["status"] for name, r in results.items()} == SCENARIOS
    for name, result in results.items():
        attachments = {a["name"]: a for a in result["attachments"]}
        assert {"Verdicts", "Timeline chart", "Timeline (JSONL)", "RDS events", "Measurements",
                "Evidence manifest"} <= set(attachments), name
        assert attachments["Timeline chart"]["type"] == "image/svg+xml"
        assert attachments["Verdicts"]["type"] == "text/html"
        labels = {(label["name"], label["value"]) for label in result["labels"]}
        assert ("epic", "Disaster recovery") in labels and ("story", name) in labels
        parameters = {p["name"]: p["value"] for p in result["parameters"]}
        assert parameters == {"target": "'fake-target'", "cluster identifier": "'gd-evidence-1'"}
    breach = results["Failover that loses acknowledged writes"]["statusDetails"]["message"]
    assert "PolicyBreached (1):\n  data loss (RPO): data loss 3 writes" in breach


def scenario_dirs(run_dir: Path) -> list[Path]:
    return sorted((run_dir.parent.parent / "project" / "run" / "scenarios").iterdir())


def test_manifest_proves_the_scenario_directory(run_dir: Path) -> None:
    for directory in scenario_dirs(run_dir):
        manifest = json.loads((directory / "manifest.json").read_text())
        listed = {f["path"]: f["sha256"] for f in manifest["files"]}
        assert set(listed) == {"timeline.jsonl", "verdict.json", "chart.svg", "verdicts.html"}
        for path, digest in listed.items():
            assert hashlib.sha256((directory / path).read_bytes()).hexdigest() == digest


def test_scenario_directory_keeps_chart_and_table(run_dir: Path) -> None:
    directory = run_dir.parent.parent / "project" / "run" / "scenarios" / "failover-that-loses-acknowledged-writes"
    assert "⚡ failover @ 10 s" in (directory / "chart.svg").read_text()
    table = (directory / "verdicts.html").read_text()
    assert table.count('<tr class="met">') == 2 and table.count('<tr class="breached">') == 1


def test_run_metadata_files(run_dir: Path) -> None:
    results = run_dir / "allure-results"
    properties = (results / "environment.properties").read_text()
    assert "target=fake-target" in properties and "harness.version=" in properties
    assert "fake.note=\\u00e9crit \\u00e0 la main: a=b" in properties
    executor = json.loads((results / "executor.json").read_text())
    assert executor["name"] == "aurora-gameday" and executor["buildName"] == RUN_ID
    categories = {c["name"]: c for c in json.loads((results / "categories.json").read_text())}
    breach = results_of(run_dir)["Failover that loses acknowledged writes"]["statusDetails"]["message"]
    matching = [name for name, c in categories.items()
                if "failed" in c["matchedStatuses"] and re.fullmatch(c.get("messageRegex", ".*"), breach)]
    assert matching == ["Data loss"]
    assert categories["Infrastructure broken"]["matchedStatuses"] == ["broken"]


def test_no_password_in_results(run_dir: Path) -> None:
    assert_no_password(run_dir / "allure-results")
    broken = results_of(run_dir)["Cluster that never comes up"]
    timeline = next(a for a in broken["attachments"] if a["name"] == "Timeline (JSONL)")
    assert "***redacted***" in (run_dir / "allure-results" / timeline["source"]).read_text()


def assert_no_password(directory: Path) -> None:
    leaks = [p for p in directory.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    assert not leaks, f"the password leaked into {leaks}"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed on first use (this test needs a browser)."""
    return ensure_chromium()


@pytest.mark.browser
def test_report_in_headless_chromium(run_dir: Path, chromium: Path) -> None:
    index = render(run_dir)
    assert index == run_dir / "html" / "index.html"
    assert_no_password(run_dir / "html")

    summary = inspect_report(index.parent)
    assert summary.title == f"aurora-gameday: {RUN_ID}"
    assert {s.name: s.status for s in summary.scenarios} == SCENARIOS
    for scenario in summary.scenarios:
        assert scenario.verdicts and scenario.chart, scenario
    assert summary.complete
    assert summary.external_requests == ()  # the report works offline and tells no third party it was opened

    history = run_dir.parent / HISTORY
    assert len(history.read_text().splitlines()) == 1
    render(run_dir)  # rendering the same run again must not count it twice
    assert len(history.read_text().splitlines()) == 1
    second = run_dir.parent / "20990101-000100-e2e2"
    shutil.copytree(run_dir / "allure-results", second / "allure-results")
    render(second, single_file=True)
    assert len(history.read_text().splitlines()) == 2
    assert (second / "html" / "index.html").stat().st_size > 0
    assert_no_password(second / "html")


def report_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    return parser.parse_args(argv)


def test_report_command_without_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = report_args(str(tmp_path / "no-such-run"))
    assert args.handler(args) == 2
    assert "no Allure results" in capsys.readouterr().err
    args = report_args("--reports", str(tmp_path))
    assert args.handler(args) == 2
    assert "no run with Allure results" in capsys.readouterr().err


def test_latest_run_is_the_last_written(tmp_path: Path) -> None:
    for name, age in (("20990101-000000-aaaa", 100), ("20980101-000000-bbbb", 10)):
        results = tmp_path / name / "allure-results"
        results.mkdir(parents=True)
        os.utime(results, (1_900_000_000 - age, 1_900_000_000 - age))
    assert latest_run(tmp_path) == tmp_path / "20980101-000000-bbbb"


def test_evidence_without_alluredir_still_writes_files(tmp_path: Path) -> None:
    """This pytest runs without --alluredir: the allure calls do nothing, the files are written."""
    from types import SimpleNamespace

    from harness.report.evidence import attach_scenario_evidence
    from harness.verdicts import judge

    directory = tmp_path / "scenario"
    directory.mkdir()
    (directory / "timeline.jsonl").write_text(json.dumps({"kind": "note", "t": 1.0, "m": 1.0, "text": "hi"}) + "\n")
    day = SimpleNamespace(directory=directory, scenario="Quiet", cut=None, environment=SimpleNamespace(name="x"),
                          timeline=SimpleNamespace(path=directory / "timeline.jsonl"),
                          verdicts=[judge("rto_s", None, 60, "<", "s", check="writes back (RTO)", reason="no fault")])
    manifest = attach_scenario_evidence(day)
    assert {p.name for p in directory.iterdir()} == {"timeline.jsonl", "chart.svg", "verdicts.html", "manifest.json"}
    assert [f["path"] for f in json.loads(manifest.read_text())["files"]] == ["chart.svg", "timeline.jsonl",
                                                                             "verdicts.html"]
    assert "not measured" in (directory / "verdicts.html").read_text()
