"""Blue/Green end to end: `features/blue_green.feature` as `gameday run` runs it, on both engines
(one `gameday run` per engine, the two at once), shared by every assertion. The figures are
checked against what the probes themselves saw, independently of the checkers: the ledger read
from production holds every acknowledged write, the deployment's records say which cluster was
which, and the negative control names exactly the writes missing from the ledger.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.timeline import read_timeline
from tests.e2e.conftest import ENGINES, one_run_per_engine

NETS = {"aurora-postgresql": 75, "aurora-mysql": 76}
NEGATIVE_CONTROL = "A switchover that does not wait for green loses the writes that had not crossed"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Path, str]]]:
    """The feature on each engine, the two at once; engine -> (its run directory, its output)."""
    with one_run_per_engine(tmp_path_factory, "features/blue_green.feature", "bg", NETS,
                            breach="does not wait for green") as runs:
        yield runs


def scenario(run: dict[str, tuple[Path, str]], engine: str, name: str
             ) -> tuple[dict[str, Any], list[dict[str, Any]], Path]:
    directory, _ = run[engine]
    for path in directory.glob("scenarios/*/*/verdict.json"):
        document = json.loads(path.read_text())
        if document["scenario"] == f"{name} on {ENGINES[engine]}":
            return document, _timeline(path.with_name("timeline.jsonl")), path.parent
    raise AssertionError(f"no scenario {name!r} on {engine} in {directory}")


@functools.cache
def _timeline(path: Path) -> list[dict[str, Any]]:
    """Read once: the load's records make a timeline long, and several tests look at each."""
    return read_timeline(path)


def checks(verdict: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["check"]: v for v in verdict["verdicts"]}


def one(records: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return [r for r in records if r["kind"] == kind][-1]


def lost_seqs(records: list[dict[str, Any]]) -> set[int]:
    """Acknowledged plain-driver writes the final ledger (read from production) does not hold."""
    acked = {w["seq"] for w in records if w["kind"] == "write" and w["outcome"] == "acknowledged"
             and w.get("driver", "plain") == "plain"}
    (ledger,) = [r for r in records if r["kind"] == "ledger" and r.get("driver", "plain") == "plain"]
    return acked - {s for a, b in ledger["ranges"] for s in range(a, b + 1)}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_switchover_loses_nothing_keeps_the_endpoints_and_is_down_under_a_minute_per_client(
        run: dict[str, tuple[Path, str]], engine: str) -> None:
    verdict, records, _ = scenario(run, engine, "Switchover to the green environment")
    assert verdict["status"] == "PolicyMet", verdict["verdicts"]
    assert not lost_seqs(records), "the ledger read from production holds every acknowledged write"
    found = checks(verdict)
    downtime = {check: v["measured"] for check, v in found.items() if check.startswith("switchover downtime")}
    assert set(downtime) == {"switchover downtime, write probe (plain driver)", "switchover downtime, load oltp/naive",
                             "switchover downtime, load oltp/resilient"}
    assert 0 < downtime["switchover downtime, write probe (plain driver)"] < 60, downtime
    before, after = one(records, "blue-green"), one(records, "blue-green-after")
    assert after["production"]["cluster"] == before["source"]["cluster"]
    assert after["production"]["instances"] == before["source"]["instances"], "green took blue's instance names"
    assert after["source"]["cluster"] == f"{before['source']['cluster']}-old1"
    assert after["production"]["engine_version"] == before["target"]["engine_version"] != \
        before["source"]["engine_version"], "green was created on the next engine version"
    assert one(records, "old-blue-write")["outcome"] == "refused"
    servers = {w["server"] for w in records if w["kind"] == "write" and w["outcome"] == "acknowledged"
               and w["start"] > one(records, "blue-green-after")["m"]}
    assert servers <= set(before["source"]["instances"]), "writes land on production (green, renamed)"
    phases = [r["status"] for r in records if r["kind"] == "blue-green-status"]
    assert phases[0] == "SWITCHOVER_IN_PROGRESS" and phases[-1] == "SWITCHOVER_COMPLETED"
    rollbacks = [r["done"] for r in records if r["kind"] == "rollback" and r["name"] == "blue-green-create"]
    assert rollbacks and "the old blue" in rollbacks[0], "the deployment and the old blue were deleted"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_long_running_write_on_blue_refuses_the_switchover_and_nothing_changes(
        run: dict[str, tuple[Path, str]], engine: str) -> None:
    verdict, records, _ = scenario(run, engine, "A long-running write transaction on blue refuses the switchover")
    assert verdict["status"] == "PolicyMet", verdict["verdicts"]
    refused = [r for r in records if r["kind"] == "fault" and r["name"] == "blue-green-switchover"][-1]["detail"]
    assert refused["outcome"] == "refused" and "Long-running" in refused["message"]
    assert one(records, "blue-green-after")["status"] == "AVAILABLE"
    assert not lost_seqs(records)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_switchover_past_its_timeout_is_rolled_back_and_the_refused_time_measured(
        run: dict[str, tuple[Path, str]], engine: str) -> None:
    verdict, records, _ = scenario(run, engine, "A switchover past its timeout is rolled back")
    assert verdict["status"] == "PolicyMet", verdict["verdicts"]
    assert "catch up" in one(records, "blue-green-after")["details"]
    refused = checks(verdict)["writes refused, write probe (plain driver)"]["measured"]
    assert 25 < refused < 60, "writes stop for the 30 s timeout, then come back on blue"
    assert not lost_seqs(records)
    assert any(r["kind"] == "rollback" and r["name"] == "green-link-stalled" for r in records)


def test_ddl_on_blue_is_reported_on_aurora_postgresql_only(run: dict[str, tuple[Path, str]]) -> None:
    verdict, _, _ = scenario(run, "aurora-postgresql", "DDL on blue makes the deployment not switchable")
    assert verdict["status"] == "PolicyMet", verdict["verdicts"]
    assert "DDL" in checks(verdict)["deployment reported not switchable"]["explanation"]
    with pytest.raises(AssertionError):
        scenario(run, "aurora-mysql", "DDL on blue makes the deployment not switchable")


@pytest.mark.parametrize("engine", ENGINES)
def test_the_negative_control_names_exactly_the_writes_lost(run: dict[str, tuple[Path, str]], engine: str) -> None:
    verdict, records, _ = scenario(run, engine, NEGATIVE_CONTROL)
    assert verdict["status"] == "PolicyBreached"
    (breach,) = [v for v in verdict["verdicts"] if v["status"] == "PolicyBreached"]
    lost = lost_seqs(records)
    assert lost and breach["measured"] == len(lost)
    assert f"seq {min(lost)}" in breach["explanation"], "the verdict names the writes lost"
    assert one(records, "blue-green-after")["status"] == "SWITCHOVER_COMPLETED"
