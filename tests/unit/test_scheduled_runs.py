"""What a scheduler sees of a run: the exit status, the JUnit XML, the webhook's JSON summary."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.certify.notify import NotifyError, check_url, notify, run_summary, where
from harness.report.junit import write_junit
from harness.run import (EXIT_BREACHED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, Outcome, OutcomeCollector, RunResult,
                         exit_status)

BREACHED_VERDICT = {"check": "writes back (RTO)", "status": "PolicyBreached",
                    "explanation": "RTO 8.3 s > 7 s, breaching ≤ 7 s (limit set in the scenario)"}


def collector(*statuses: str) -> OutcomeCollector:
    found = OutcomeCollector()
    for index, status in enumerate(statuses):
        found.outcomes[f"n{index}"] = Outcome(f"test_{index}", status)
    return found


@pytest.mark.parametrize(("statuses", "breached", "pytest_status", "expected"), [
    (("passed", "skipped"), 0, 0, EXIT_OK),
    (("passed", "failed"), 1, 1, EXIT_BREACHED),
    (("failed",), 0, 1, EXIT_BREACHED),  # a step that failed: a finding, not an infrastructure problem
    (("passed", "error"), 0, 1, EXIT_UNAVAILABLE),  # a fixture (the emulator, a rollback) failed
    (("error", "failed"), 1, 1, EXIT_BREACHED),  # a breach outranks what could not run
    ((), 0, 5, EXIT_USAGE),  # no scenario matched
    (("passed",), 0, 4, EXIT_USAGE),  # a usage error
])
def test_exit_status_tells_a_breach_from_a_run_that_could_not_happen(statuses: tuple[str, ...], breached: int,
                                                                    pytest_status: int, expected: int) -> None:
    assert exit_status(pytest_status, collector(*statuses), breached) == expected


def test_outcomes_carry_the_title_feature_and_time_the_plugin_gives_them() -> None:
    found = OutcomeCollector()

    class Report:
        def __init__(self, when: str, outcome: str, duration: float) -> None:
            self.when, self.outcome, self.duration = when, outcome, duration
            self.nodeid = "t.py::test_failover[aurora-postgresql]"
            self.failed, self.longrepr, self.longreprtext = outcome == "failed", None, ""
            self.user_properties = [("scenario", "Failover on Aurora PostgreSQL"), ("feature", "Writer failover")]

    for when, duration in (("setup", 1.0), ("call", 7.5), ("teardown", 0.5)):
        found.pytest_runtest_logreport(Report(when, "passed", duration))  # type: ignore[arg-type]
    (outcome,) = found.outcomes.values()
    assert (outcome.title, outcome.feature, outcome.duration, outcome.status) == (
        "Failover on Aurora PostgreSQL", "Writer failover", 9.0, "passed")


def test_junit_xml_names_scenarios_as_the_reports_do(tmp_path: Path) -> None:
    outcomes = [Outcome("test_a[pg]", "passed", title="Failover on Aurora PostgreSQL", feature="Writer failover",
                        duration=9.0),
                Outcome("test_b[pg]", "failed", "AssertionError: PolicyBreached (1):",
                        title="Tight on Aurora PostgreSQL", feature="Writer failover", duration=8.0),
                Outcome("test_c[pg]", "error", "TargetUnavailable: the emulator did not start", title="Crash",
                        feature="Faults", duration=1.0),
                Outcome("test_d[no-engine]", "skipped", "@aurora-mysql-only")]
    verdicts = {"Tight on Aurora PostgreSQL": {"verdicts": [BREACHED_VERDICT]}}
    path = write_junit(tmp_path / "junit.xml", outcomes, verdicts, suite="aurora-gameday: r1",
                       started=datetime(2026, 1, 1, tzinfo=timezone.utc), properties={"target": "emulator"})
    root = ET.parse(path).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("4", "1", "1", "1")
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert set(cases) == {"Failover on Aurora PostgreSQL", "Tight on Aurora PostgreSQL", "Crash", "test_d[no-engine]"}
    failure = cases["Tight on Aurora PostgreSQL"].find("failure")
    assert failure.get("type") == "PolicyBreached" and "writes back (RTO): RTO 8.3 s > 7 s" in failure.text
    assert cases["Crash"].find("error").get("message") == "TargetUnavailable: the emulator did not start"
    assert cases["Failover on Aurora PostgreSQL"].get("classname") == "Writer failover"
    assert root.find("testsuite/properties/property").get("value") == "emulator"


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append({"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)})
        self.send_response(Hook.status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    """A local HTTP server standing in for the chat or incident tool."""
    Hook.received, Hook.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/B000/s3cr3t-token"
    server.shutdown()
    server.server_close()


def result(status: int = EXIT_BREACHED) -> RunResult:
    when = datetime(2026, 1, 1, 3, 0, tzinfo=timezone.utc)
    scenarios = [{"scenario": "Tight on Aurora PostgreSQL", "verdicts": [BREACHED_VERDICT]}]
    return RunResult(status, "r1", Path("/reports/r1"), "emulator", ["aurora-postgresql"],
                     [Outcome("a", "passed"), Outcome("b", "failed")], {"scenarios": scenarios}, when, when)


def test_the_webhook_gets_a_short_json_summary(webhook: str) -> None:
    summary = run_summary(result(), command="certify", regressions=["Failover: RTO 8 s is above 2.3 s"],
                          extra={"certified": False})
    assert notify(webhook, summary) == 200
    (received,) = Hook.received
    assert received["type"] == "application/json" and received["path"] == "/hooks/T000/B000/s3cr3t-token"
    body = received["body"]
    assert {k: body[k] for k in ("tool", "command", "run_id", "outcome", "exit_code", "certified")} == {
        "tool": "aurora-gameday", "command": "certify", "run_id": "r1", "outcome": "breached", "exit_code": 1,
        "certified": False}
    assert body["scenarios"] == {"total": 2, "passed": 1, "failed": 1, "error": 0, "skipped": 0}
    assert body["breached"] == ["Tight on Aurora PostgreSQL: writes back (RTO): " + BREACHED_VERDICT["explanation"]]
    assert body["regressions"] == ["Failover: RTO 8 s is above 2.3 s"]
    assert run_summary(result(EXIT_UNAVAILABLE), command="run")["outcome"] == "could not run"


def test_a_webhook_that_fails_is_named_by_its_host_never_its_token(webhook: str) -> None:
    Hook.status = 500
    with pytest.raises(NotifyError) as raised:
        notify(webhook, {"x": 1})
    assert "HTTP 500" in str(raised.value) and "s3cr3t" not in str(raised.value)
    with pytest.raises(NotifyError) as raised:
        notify("http://127.0.0.1:9/hooks/s3cr3t", {"x": 1})
    assert "could not be reached" in str(raised.value) and "s3cr3t" not in str(raised.value)
    assert where(webhook).startswith("http://127.0.0.1:") and "hooks" not in where(webhook)
    for bad in ("ftp://example.com/x", "example.com/hook", "file:///etc/passwd"):
        with pytest.raises(ValueError, match="http:// or https://"):
            check_url(bad)
