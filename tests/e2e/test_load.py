"""Game days under load, end to end on the emulator: `gameday run` as users run it, and its evidence."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from harness.measure import measure_rto
from harness.measure.faults import the_fault
from harness.timeline import Record, read_timeline
from tests.e2e.conftest import assert_met_where_the_machine_allows, gameday

ENGINES = {"Aurora PostgreSQL": "aurora-postgresql", "Aurora MySQL": "aurora-mysql"}  # as named → as slugged


def scenario(run_dir: Path, slug: str, engine: str = "aurora-postgresql") -> tuple[dict[str, Any], list[Record], Path]:
    directory = next(run_dir.glob(f"scenarios/*/{slug}*{engine}"))
    return (json.loads((directory / "verdict.json").read_text()), read_timeline(directory / "timeline.jsonl"),
            directory)


def locust_csv(directory: Path, name: str) -> list[dict[str, str]]:
    with open(directory / name, newline="") as file:
        return list(csv.DictReader(file))


def allure_results(run_dir: Path) -> dict[str, dict[str, Any]]:
    results = [json.loads(p.read_text()) for p in (run_dir / "allure-results").glob("*-result.json")]
    return {r["name"]: r for r in results}


def test_a_failover_under_load_shows_what_naive_and_resilient_clients_saw(tmp_path: Path) -> None:
    done = gameday(["run", "features/client_behaviour.feature", "--reports", str(tmp_path), "--run-id", "fo"],
                   tmp_path, net=54)
    assert_met_where_the_machine_allows(tmp_path / "fo", done)
    for engine, slug in ENGINES.items():
        check_client_behaviour(tmp_path / "fo", engine, slug)


def check_client_behaviour(run_dir: Path, engine: str, slug: str) -> None:
    """What the two clients saw in one engine's example, checked against the probes' own record."""
    verdict, records, directory = scenario(run_dir, "a-resilient-client", slug)
    loads = verdict["measurements"]["load"]["loads"]
    naive, resilient = loads["oltp/naive"], loads["oltp/resilient"]
    fault = min(r["start"] for r in records if r["kind"] == "fault")

    # The outage window the probes measured: the first failed write to the first acknowledged one after the last.
    recovery = measure_rto(records, the_fault(records))
    outage = (fault + recovery.rto_s - recovery.outage_s, fault + recovery.rto_s)
    failures = [r for r in records if r["kind"] == "load-failure" and r["load"] == "oltp/naive"]
    assert failures and naive["failed_requests"] > 20
    early, late = min(f["first"] for f in failures), max(f["last"] for f in failures)
    # Errors only inside the outage (a naive user meets its dead connection at its next request: 0.5 s slack).
    assert outage[0] - 0.05 <= early and late <= outage[1] + 0.5, (early - fault, late - fault, outage)
    assert naive["error_window_s"] <= recovery.outage_s + 0.5

    # Explained difference: the naive client turned the outage into errors; the resilient one into latency.
    assert resilient["failed_requests"] == 0
    # Its requests caught by the failover took about the outage. Locust counts a request in the second
    # it completed, so the slowest may complete just after the recovery mark (in "after"); the steady
    # state's latency is milliseconds, so seconds of latency there are the failover's too.
    slowest = max(resilient["phases"]["during"]["max_ms"], resilient["phases"]["after"]["max_ms"])
    assert resilient["phases"]["before"]["max_ms"] < 1000 and slowest >= 1000 * (recovery.outage_s - 1.5)
    assert resilient["latency_recovery_s"] is not None, "and its latency came back once the writer was reachable"
    for result in (naive, resilient):  # throughput recovers (on a busy 2-core box, not always to the last request)
        assert result["phases"]["after"]["rps"] >= 0.5 * result["phases"]["before"]["rps"], result["phases"]

    # The load's own count of failures is the timeline's, request for request, over the whole run and the window.
    seconds = [r for r in records if r["kind"] == "load" and r["load"] == "oltp/naive"]
    locust_failures = sum(int(row["Occurrences"]) for row in locust_csv(directory / "load" / "oltp-naive",
                                                                        "locust_failures.csv"))
    assert locust_failures == sum(s["failures"] for s in seconds) == sum(f["occurrences"] for f in failures)
    aggregated = next(row for row in locust_csv(directory / "load" / "oltp-naive", "locust_stats.csv")
                      if row["Name"] == "Aggregated")
    assert int(aggregated["Request Count"]) == sum(s["requests"] for s in seconds) == naive["requests"]
    in_window = [s for s in seconds if s["end"] > fault and s["start"] < outage[1] + 1]
    assert sum(s["failures"] for s in in_window) == naive["failed_requests"] == naive["failures"]

    # Evidence: the load summary, both Locust reports, the load lanes on the chart.
    result = allure_results(run_dir)[f"A resilient client rides out a failover that a naive client turns into errors "
                                      f"on {engine}"]
    attachments = {a["name"]: a for a in result["attachments"]}
    assert {"Load summary", "Locust report (oltp-naive)", "Locust report (oltp-resilient)"} <= set(attachments)
    summary = (directory / "load-summary.html").read_text()
    assert "Load oltp/naive" in summary and any(error in summary for error in ("25006: cannot", "OperationalError", "1290: ", "2013: "))
    chart = (directory / "chart.svg").read_text()
    assert "load oltp/naive" in chart and "load oltp/resilient" in chart


STRAY_ABORT = """Feature: A guarded failover
  @aurora-postgresql-only
  Scenario: A failover that the stop condition holds back without the scenario expecting it
    Given an Aurora cluster with a writer and 1 reader
    And the probes are watching the cluster
    And a load of 4 users running the "misrouted" workload
    And the game day stops before the fault if the load's error rate exceeds 5 percent
    And a steady state of 1 seconds
    When the cluster fails over
    Then writes are back within 30 seconds
"""


def test_the_stop_condition_holds_the_fault_back_with_a_master_and_two_workers(tmp_path: Path) -> None:
    stray = tmp_path / "stray.feature"
    stray.write_text(STRAY_ABORT)
    done = gameday(["run", "features/stop_condition.feature", str(stray), "--load-workers", "2",
                    "--reports", str(tmp_path), "--run-id", "stop"], tmp_path, net=55)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # the unexpected abort fails the run
    run_dir = tmp_path / "stop"

    verdict, records, directory = scenario(run_dir, "a-load-that-fails")
    assert verdict["status"] == "PolicyMet" and "erred on" in verdict["aborted"]
    assert not [r for r in records if r["kind"] == "fault"], "the fault was never injected"
    (abort,) = [r for r in records if r["kind"] == "abort"]
    assert abort["error_rate"] > 0.2 and abort["ceiling"] == 0.01
    seconds = [r for r in records if r["kind"] == "load"]
    assert max(s["workers"] for s in seconds) == 2, "a master and two workers ran the load"
    assert sorted(p.name for p in (directory / "load" / "misrouted-naive").glob("*.log")) == [
        "master.log", "worker-1.log", "worker-2.log"]

    verdict, records, _ = scenario(run_dir, "a-failover-that-the-stop-condition", "")
    assert verdict["aborted"] and verdict["verdicts"] == [] and not [r for r in records if r["kind"] == "fault"]
    assert "GameDayAborted: the stop condition held back FailoverDBCluster" in done.stdout
    stray_result = allure_results(run_dir)["A failover that the stop condition holds back without the scenario "
                                           "expecting it on Aurora PostgreSQL"]
    assert stray_result["status"] == "broken" and "GameDayAborted" in stray_result["statusDetails"]["message"]
    categories = {c["name"] for c in json.loads((run_dir / "allure-results" / "categories.json").read_text())}
    assert "Aborted by a stop condition" in categories
