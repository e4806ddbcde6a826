"""aurora-gameday as a team installs it: the built wheel in a fresh virtualenv, run from a directory
that holds only the team's own feature file and locustfile, with no checkout anywhere near.

It must find its own steps (the `harness.steps` plugin) and workloads (`harness.workloads`),
take the team's `features/` and `load/`, and write `reports/` where it was run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import PROJECT, home_of

FEATURE = """\
Feature: Our own game day
  Our service's writes survive a reader reboot, under our own load.

  Scenario: A reader reboot under our load
    Given an Aurora cluster with a writer and 1 reader
    And the probes are watching the cluster
    And a load of 2 users running the "checkout" workload
    And a steady state of 1 seconds
    When the first reader is rebooted
    Then the writer does not change
    And no acknowledged write is lost
"""

LOCUSTFILE = '''\
"""Our checkout traffic: orders placed through the cluster endpoint."""

from locust import between, task

from harness.load.users import ClusterUser


class CheckoutUser(ClusterUser):
    wait_time = between(0.05, 0.1)

    @task
    def place_order(self) -> None:
        self.write("place order", self.orders.place)
'''


def run(command: list[str], cwd: Path, timeout: float = 900, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(command, cwd=cwd, env={**environ, **env}, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_the_built_wheel_runs_a_teams_own_game_day_from_an_empty_directory(tmp_path: Path) -> None:
    source = tmp_path / "source"  # what a clean clone holds: no build/ left over from another build
    shutil.copytree(PROJECT, source, ignore=shutil.ignore_patterns(".git", ".venv", "node_modules", "build", "reports",
                                                                   "*.egg-info", "__pycache__"))
    wheels = tmp_path / "wheels"
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(source)],
                cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("aurora_gameday-*.whl")

    venv = tmp_path / "venv"
    assert run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path).returncode == 0
    installed = run([str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]
    where = run([str(venv / "bin" / "python"), "-c", "import harness.steps.plugin, harness.workloads, harness.emulator.daemon; "
                 "print(harness.steps.__file__, harness.workloads.__file__, harness.emulator.daemon.__file__)"],
                cwd=tmp_path)
    assert where.stdout.count(str(venv)) == 3 and str(PROJECT) not in where.stdout, where.stdout + where.stderr

    team = tmp_path / "our-game-days"
    (team / "features").mkdir(parents=True)
    (team / "load").mkdir()
    (team / "features" / "reader_reboot.feature").write_text(FEATURE)
    (team / "load" / "checkout.py").write_text(LOCUSTFILE)
    done = run([str(venv / "bin" / "gameday"), "run", "--engine", "aurora-postgresql", "--run-id", "ours"], cwd=team,
               GAMEDAY_EMULATOR_NET="59", GAMEDAY_EMULATOR_HOME=str(home_of(tmp_path)))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    (verdict_file,) = (team / "reports" / "ours").glob("scenarios/*/*/verdict.json")
    verdict = json.loads(verdict_file.read_text())
    assert verdict["scenario"] == "A reader reboot under our load on Aurora PostgreSQL"
    assert verdict["status"] == "PolicyMet" and len(verdict["verdicts"]) == 2
    assert verdict["measurements"]["load"]["loads"]["checkout/naive"]["requests"] > 0, "our own locustfile ran"
    assert list((team / "reports" / "ours" / "allure-results").glob("*-result.json"))
