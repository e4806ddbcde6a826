"""Game days end to end on the emulator: `gameday run` as users run it, and its evidence."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from harness.emulator.processes import owned_processes as emulator_processes
from harness.report.inspect import inspect_report
from harness.timeline import read_timeline
from tests.e2e.conftest import (
    GAMEDAY,
    PROJECT,
    assert_met_where_the_machine_allows,
    gameday,
    gameday_environment,
    home_of,
)


def verdicts(run_dir: Path) -> dict[str, dict[str, Any]]:
    return {json.loads(p.read_text())["scenario"]: json.loads(p.read_text())
            for p in run_dir.glob("scenarios/*/*/verdict.json")}


def event_time(records: list[dict[str, Any]], prefix: str) -> float:
    return next(r["date"] for r in records if r["kind"] == "event" and r["message"].startswith(prefix))


@pytest.mark.browser
def test_failover_game_day_passes_with_no_loss_and_an_rto_of_dns_ttl_plus_promotion(tmp_path: Path) -> None:
    done = gameday(["run", "features/writer_failover.feature", "--reports", str(tmp_path), "--run-id", "fo",
                    "--dns-ttl", "2"], tmp_path, net=46)
    results = verdicts(tmp_path / "fo")
    assert set(results) == {f"{name} on {engine}" for engine in ENGINES for name in (
        "Managed failover promotes the reader Aurora chooses", "Failover to a named reader",
        "Promotion follows the promotion tiers")}
    assert_met_where_the_machine_allows(tmp_path / "fo", done)
    for engine, slug in ENGINES.items():
        managed = results[f"Managed failover promotes the reader Aurora chooses on {engine}"]
        assert managed["measurements"]["data_loss"]["lost_count"] == 0
        assert managed["measurements"]["data_loss"]["acknowledged"] > 100
        timeline = read_timeline(next((tmp_path / "fo").glob(f"scenarios/*/managed-failover*{slug}/timeline.jsonl")))
        fault = next(r for r in timeline if r["kind"] == "fault")
        promoted_after = event_time(timeline, "Completed failover") - (fault["t"] - (fault["m"] - fault["start"]))
        rto = managed["measurements"]["rto"]["rto_s"]
        # Stale DNS keeps new connections on the old writer for the TTL after the promotion.
        assert promoted_after + 2.0 - 0.2 <= rto <= promotion_bound(promoted_after) + 2.0, (engine, rto, promoted_after)
    assert "PolicyMet" in (tmp_path / "fo" / "summary.txt").read_text()

    rendered = gameday(["report", str(tmp_path / "fo")], tmp_path, net=46)
    assert rendered.returncode == 0, rendered.stderr
    report = inspect_report(tmp_path / "fo" / "html")
    assert {s.name for s in report.scenarios} == set(results)
    assert all((s.status == "passed") == (results[s.name]["status"] == "PolicyMet") and s.verdicts and s.chart
               for s in report.scenarios)
    assert not report.external_requests


ENGINES = {"Aurora PostgreSQL": "aurora-postgresql", "Aurora MySQL": "aurora-mysql"}  # as named → as slugged


def promotion_bound(promoted_after: float) -> float:
    """Event dates have millisecond precision; allow the write probe's resolution on top."""
    return promoted_after + 0.5


def test_reboot_and_storage_quorum_game_days_measure_what_happened(tmp_path: Path) -> None:
    done = gameday(["run", "features/writer_reboot.feature", "features/storage_quorum.feature",
                    "--reports", str(tmp_path), "--run-id", "rs"], tmp_path, net=46)
    assert done.returncode == 0, done.stdout[-3000:]
    results = verdicts(tmp_path / "rs")
    assert len(results) == 6 and all(r["status"] == "PolicyMet" for r in results.values())

    for engine in ENGINES:
        reboot = results[f"Rebooting the writer restarts it without a failover on {engine}"]["measurements"]["rto"]
        assert reboot["disrupted"] and 0 < reboot["rto_s"] < 30, f"a writer reboot really interrupts writes ({engine})"
    halted = results["Losing a third storage node halts writes until it returns on Aurora PostgreSQL"]
    checks = {v["check"]: v for v in halted["verdicts"]}
    assert checks["writes halted"]["measured"] == 0
    assert 0 < checks["writes back (RTO)"]["measured"] < 15, "timed from the nodes' return to the next commit"
    assert checks["read availability"]["measured"] == 1.0
    assert halted["measurements"]["data_loss"]["lost_count"] == 0
    # One RTO per fault, and the verdict's is the one of the fault it judged (the nodes' return).
    faults = halted["measurements"]["faults"]
    assert [f["name"] for f in faults] == ["storage-nodes-down", "storage-nodes-down", "storage-nodes-up"]
    assert [f["until"] for f in faults] == [faults[1]["start"], faults[2]["start"], None], "each up to the next"
    assert faults[2]["rto"]["rto_s"] == halted["measurements"]["rto"]["rto_s"] == checks["writes back (RTO)"]["measured"]


def test_negative_control_run_breaches_the_rpo_target_and_exits_non_zero(tmp_path: Path) -> None:
    done = gameday(["run", "features/negative_control.feature", "--reports", str(tmp_path), "--run-id", "neg"],
                   tmp_path, net=47)
    assert done.returncode == 1, done.stdout[-3000:]
    results = verdicts(tmp_path / "neg")
    assert len(results) == 2, "one negative control per engine"
    for result in results.values():
        assert result["status"] == "PolicyBreached"
        loss = result["measurements"]["data_loss"]
        assert loss["lost_count"] > 0
        verdict = next(v for v in result["verdicts"] if v["check"] == "data loss (RPO)")
        assert verdict["status"] == "PolicyBreached" and verdict["target_id"] == "in-region-acknowledged-writes"
    assert "BREACHED" in done.stdout and "data loss" in done.stdout


def test_killing_gameday_run_keeps_the_timeline_and_leaves_no_process(tmp_path: Path) -> None:
    home = home_of(tmp_path)
    environment = gameday_environment(tmp_path, 48)
    process = subprocess.Popen(GAMEDAY + ["run", "features/writer_reboot.feature", "--reports", str(tmp_path),
                                          "--run-id", "killed"], cwd=PROJECT, env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        timeline = None
        while time.monotonic() < deadline:
            found = list((tmp_path / "killed").glob("scenarios/*/*/timeline.jsonl"))
            if found and sum(r["kind"] == "write" for r in read_timeline(found[0])) > 100:
                timeline = found[0]
                break
            time.sleep(0.2)
        assert timeline is not None, "the game day never got to writing"
        assert emulator_processes(home), "engines were running before the kill"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    records = read_timeline(timeline)
    assert sum(r["kind"] == "write" for r in records) > 100, "what was recorded before the kill is still there"
    deadline = time.monotonic() + 30
    while emulator_processes(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not emulator_processes(home), "no engine, storage node or proxy survives the killed run"


def test_an_unknown_step_is_named_in_the_summary(tmp_path: Path) -> None:
    feature = tmp_path / "odd.feature"
    feature.write_text("Feature: Odd\n  Scenario: A step nobody wrote\n"
                       "    Given an Aurora cluster with a writer and 1 reader\n"
                       "    When the moon turns blue\n")
    done = gameday(["run", str(feature), "--engine", "aurora-postgresql", "--reports", str(tmp_path),
                    "--run-id", "odd"], tmp_path, net=49)
    assert done.returncode == 1
    assert 'Step definition is not found: When "the moon turns blue"' in done.stdout


def test_a_malformed_feature_is_rejected_before_anything_runs(tmp_path: Path) -> None:
    feature = tmp_path / "broken.feature"
    feature.write_text("Feature: Broken\n  Scenario: oops\n    Given a step\n   Whenn misspelled\n")
    done = gameday(["run", str(feature), "--reports", str(tmp_path)], tmp_path, net=49)
    assert done.returncode == 2
    assert f"{feature}: malformed feature" in done.stderr and "(4:4)" in done.stderr
    assert not list(tmp_path.glob("*/scenarios"))


def test_an_engine_the_emulator_does_not_run_is_a_clear_error(tmp_path: Path) -> None:
    done = gameday(["run", "features/writer_reboot.feature", "--engine", "aurora-oracle", "--reports", str(tmp_path)],
                   tmp_path, net=49)
    assert done.returncode == 2
    assert "invalid choice: 'aurora-oracle' (choose from 'aurora-postgresql', 'aurora-mysql')" in done.stderr
    assert not list(tmp_path.glob("*/scenarios"))


def test_engine_selects_the_half_of_the_run_on_that_engine(tmp_path: Path) -> None:
    """`--engine aurora-mysql` runs only the MySQL half: with the MySQL runs deselected nothing of
    writer_reboot is left, and the PostgreSQL-only storage quorum is skipped, saying why."""
    done = gameday(["run", "features/writer_reboot.feature", "features/storage_quorum.feature", "--engine",
                    "aurora-mysql", "--tags", "not @aurora-mysql", "--reports", str(tmp_path), "--run-id", "eng"],
                   tmp_path, net=49)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "2 skipped, 2 deselected" in done.stdout
    assert done.stdout.count("@aurora-postgresql-only: this run's engines are aurora-mysql") == 2
    assert not list((tmp_path / "eng").glob("scenarios/*/*/verdict.json")), "nothing ran"


def test_an_unreachable_aws_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    profile = tmp_path / "profile.toml"
    profile.write_text('[[clusters]]\nidentifier = "orders"\nregion = "us-east-1"\npassword_env = "ORDERS_PW"\n')
    done = gameday(["run", "features/writer_reboot.feature", "--target", "aws", "--profile", str(profile),
                    "--reports", str(tmp_path), "--run-id", "aws"], tmp_path, net=49,
                   GAMEDAY_AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y",
                   AWS_MAX_ATTEMPTS="1")
    assert done.returncode == 3, "the target could not be reached: not bad input, nothing could run"
    assert ("cannot read the engines of the profile's clusters: Could not connect to the endpoint URL: "
            '"http://127.0.0.1:9/"') in done.stderr


def test_fault_injection_game_day_shows_each_query_real_effect_on_both_engines(tmp_path: Path) -> None:
    done = gameday(["run", "features/fault_injection.feature", "--reports", str(tmp_path), "--run-id", "fi"],
                   tmp_path, net=57)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = verdicts(tmp_path / "fi")
    assert len(results) == 14 and all(r["status"] == "PolicyMet" for r in results.values())
    for engine in ENGINES:
        def checks(name: str) -> dict[str, Any]:
            return {v["check"]: v for v in results[f"{name} on {engine}"]["verdicts"]}

        crash = results[f"An instance crash restarts the writer in place on {engine}"]["measurements"]["rto"]
        assert crash["disrupted"] and crash["rto_s"] > 0, "a crash really interrupts writes"
        lag = checks("A replica failure holds one reader back until the interval ends")
        assert next(v for c, v in lag.items() if c.startswith("lag of"))["measured"] >= 3
        stall = checks("Disk failures on three storage nodes stall writes until the interval ends")
        assert stall["writes stalled"]["measured"] >= 3.2
        congestion = checks("Disk congestion on three storage nodes puts commit latency in its band")
        assert congestion["commit latency during the fault"]["status"] == "PolicyMet"
        assert congestion["commit latency after the fault"]["measured"] < 15
        # Aurora's own SQL view of the topology was read throughout, beside the API's.
        views = results[f"An instance crash restarts the writer in place on {engine}"]["measurements"]["topology_views"]
        assert views["measured"] and views["sql_samples"] > 3 and views["sql_writer"] == views["api_writer"]
