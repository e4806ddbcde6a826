"""The driver dimension end to end: one failover seen through the plain driver and the AWS Advanced
Python Wrapper at once (`features/drivers.feature`), each judged on its own writes and its own
Locust load."""

from __future__ import annotations

import json
from pathlib import Path

from harness.emulator.processes import owned_processes as emulator_processes
from harness.timeline import read_timeline
from tests.e2e.conftest import gameday, home_of

ENGINES = {"Aurora PostgreSQL": "aurora-postgresql", "Aurora MySQL": "aurora-mysql"}
SCENARIO = "The plain driver and the AWS Advanced Python Wrapper through a failover on {engine}"


def test_both_drivers_rto_and_load_measured_and_no_acknowledged_write_lost(tmp_path: Path) -> None:
    done = gameday(["run", "features/drivers.feature", "--reports", str(tmp_path), "--run-id", "drv"], tmp_path,
                   net=58, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = {json.loads(p.read_text())["scenario"]: (p.parent, json.loads(p.read_text()))
               for p in (tmp_path / "drv").glob("scenarios/*/*/verdict.json")}
    assert set(results) == {SCENARIO.format(engine=engine) for engine in ENGINES}
    for engine in ENGINES:
        directory, result = results[SCENARIO.format(engine=engine)]
        assert result["status"] == "PolicyMet", result["verdicts"]
        drivers = result["measurements"]["by_driver"]["drivers"]
        assert list(drivers) == ["plain", "aws-wrapper"]
        plain, wrapper = drivers["plain"], drivers["aws-wrapper"]
        assert plain["rto"]["rto_s"] == result["measurements"]["rto"]["rto_s"]
        # Both saw the failover and recovered; the wrapper within its failover timeout, not
        # instantly (it must at least notice the failover) and not after the observation.
        for seen in (plain, wrapper):
            assert seen["rto"]["measured"] and seen["rto"]["recovered"], (engine, seen["rto"])
            assert seen["data_loss"]["measured"], (engine, seen["data_loss"])
            assert seen["data_loss"]["lost_count"] == 0, (engine, seen["data_loss"])
            assert seen["data_loss"]["acknowledged"] > 100, (engine, seen["data_loss"])
        assert 0.0 < wrapper["rto"]["rto_s"] <= 60.0, (engine, wrapper["rto"])
        assert wrapper["rto"]["outage_s"] <= wrapper["rto"]["rto_s"] + 2.0, (engine, wrapper["rto"])
        # Each driver's load ran through the failover; the wrapper's users were taken to the new
        # writer by the wrapper itself, and the report puts each load beside its driver.
        assert set(plain["loads"]) == {"oltp/naive"} and set(wrapper["loads"]) == {"oltp/aws-wrapper"}
        for seen in (plain, wrapper):
            (load,) = seen["loads"].values()
            assert load["requests"] > 50 and load["failed_requests"] is not None, (engine, load)
        loads = result["measurements"]["load"]["loads"]
        assert loads["oltp/aws-wrapper"]["driver"] == "aws-wrapper" and loads["oltp/naive"]["driver"] == "plain"
        late = loads["oltp/aws-wrapper"]["last_error_after_fault_s"]
        assert late is None or late <= 60.0, (engine, loads["oltp/aws-wrapper"])
        checks = {v["check"]: v for v in result["verdicts"]}
        assert checks["writes back (RTO), AWS Advanced Python Wrapper"]["measured"] == wrapper["rto"]["rto_s"]
        assert checks["data loss (RPO), AWS Advanced Python Wrapper"]["status"] == "PolicyMet"
        assert checks["RTO by driver"]["status"] == "PolicyMet"
        assert "load oltp/aws-wrapper" in checks["RTO by driver"]["explanation"], checks["RTO by driver"]

        # Each probe wrote its own run id; the wrapper's attempts carry their driver.
        timeline = read_timeline(directory / "timeline.jsonl")
        writes = [r for r in timeline if r["kind"] == "write"]
        assert {r["driver"] for r in writes} == {"plain", "aws-wrapper"}
        ledgers = {r["driver"]: r for r in timeline if r["kind"] == "ledger"}
        assert ledgers["aws-wrapper"]["run_id"] == ledgers["plain"]["run_id"] + "-wrapper"
    # Every process is reaped: no wrapper child, no emulator process left.
    assert not emulator_processes(home_of(tmp_path))
    assert not wrapper_children(home_of(tmp_path))
    assert not locust_processes(home_of(tmp_path))


def wrapper_children(home: Path) -> list[int]:
    """Live wrapper probes started by the game day of `home` (they inherit its environment)."""
    return children(home, b"harness.drivers.aws_wrapper")


def locust_processes(home: Path) -> list[int]:
    """Live Locust processes started by the game day of `home`."""
    return children(home, b"locust")


def children(home: Path, command: bytes) -> list[int]:
    """Live processes whose command line holds `command` and whose environment is the game day's of `home`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or command not in (entry / "cmdline").read_bytes():
                continue
            if f"GAMEDAY_EMULATOR_HOME={home}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found
