"""End-to-end helpers: `gameday` as users run it, each test's emulator state on tmpfs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from harness.timeline import read_timeline

PROJECT = Path(__file__).resolve().parents[2]
GAMEDAY = [sys.executable, "-m", "harness.cli"]


def home_of(tmp_path: Path) -> Path:
    """Where the game-day emulator of the test owning `tmp_path` keeps its state."""
    return Path("/dev/shm") / f"gd-test-run-{tmp_path.name}"


def gameday_environment(tmp_path: Path, net: int, **env: str) -> dict[str, str]:
    return {**os.environ, "GAMEDAY_EMULATOR_NET": str(net), "GAMEDAY_EMULATOR_HOME": str(home_of(tmp_path)), **env}


def gameday(args: list[str], tmp_path: Path, net: int, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """Run `gameday ARGS` to its end on loopback network 127.`net`.x.y."""
    return subprocess.run(GAMEDAY + args, cwd=PROJECT, env=gameday_environment(tmp_path, net, **env),
                          capture_output=True, text=True, timeout=timeout)


ENGINES = {"aurora-postgresql": "Aurora PostgreSQL", "aurora-mysql": "Aurora MySQL"}
# AWS's figures for replica lag (in a Region and across Regions) and latency assume a cluster with machines of
# its own. Here the emulator shares two cores with the rest of the suite, so these are checked as judged (a
# figure against the documented target, or the reason there is none) and may breach; every other verdict
# must be met. `make gameday` on a quiet machine is where they are shown met.
MACHINE_BOUND = {"replica lag", "latency back to baseline", "cross-Region visibility lag p99"}


@contextmanager
def one_run_per_engine(tmp_path_factory: pytest.TempPathFactory, feature: str, run_id: str, nets: dict[str, int],
                       breach: str) -> Iterator[dict[str, tuple[Path, str]]]:
    """One `gameday run` of `feature` per engine (DNS TTL 2 s), the two at once, each on its own emulator
    and network: a game day mostly waits, on the API and on its probes, so two share the machine well.
    The negative control breaches (its name holds `breach`), and nothing else but what the machine
    bounds (`MACHINE_BOUND`). Yields engine -> (its run directory, its output)."""
    homes = {engine: tmp_path_factory.mktemp(f"{run_id}-{engine}") for engine in ENGINES}
    started: dict[str, subprocess.Popen[str]] = {}
    outputs: dict[str, tuple[Path, str]] = {}
    try:
        for engine, home in homes.items():
            started[engine] = subprocess.Popen(
                [*GAMEDAY, "run", feature, "--engine", engine, "--reports", str(home), "--run-id", run_id,
                 "--dns-ttl", "2"], cwd=PROJECT, env=gameday_environment(home, nets[engine]),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for engine, process in started.items():
            out, _ = process.communicate(timeout=1200)
            assert process.returncode == 1, f"the negative control breaches on {engine}: {out[-4000:]}"
            breached = breached_checks(homes[engine] / run_id)
            assert any(breach in name for name, _ in breached), out[-4000:]
            assert all(check in MACHINE_BOUND for name, check in breached if breach not in name), out[-4000:]
            outputs[engine] = (homes[engine] / run_id, out)
        yield outputs
    finally:
        for process in started.values():  # only after a failed assertion: each is ours, by its handle
            if process.poll() is None:
                process.kill()
                process.wait(60)
        for home in homes.values():
            shutil.rmtree(home_of(home), ignore_errors=True)


@pytest.fixture(autouse=True)
def emulator_home(tmp_path: Path) -> Iterator[Path]:
    """Each test's game-day emulator keeps its state on tmpfs; removed afterwards."""
    home = home_of(tmp_path)
    yield home
    shutil.rmtree(home, ignore_errors=True)


def scenario(run: Path, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The verdict and the timeline of the scenario called `name` in the run directory `run`."""
    for path in run.glob("scenarios/*/*/verdict.json"):
        document = json.loads(path.read_text())
        if document["scenario"] == name:
            return document, read_timeline(path.with_name("timeline.jsonl"))
    raise AssertionError(f"no scenario {name!r} in {run}")


def assert_names_the_writes_missed(verdict: dict[str, Any], records: list[dict[str, Any]], early_s: float) -> None:
    """A restore or backtrack that landed `early_s` early: what the probe itself was told was committed
    in the gap before the point is what the verdict names (an edge write may differ)."""
    assert verdict["status"] == "PolicyBreached"
    rewind = verdict["measurements"]["restore"]
    point = rewind["boundary_low"]
    clock = next(r for r in records if r["kind"] == "clock")["offset_s"]
    acked_in_the_gap = {w["seq"] for w in records if w["kind"] == "write" and w["outcome"] == "acknowledged"
                        and point - early_s < w["t"] - (w["m"] - w["end"]) + clock <= point}
    named = set(rewind["lost"])  # the report names the first 1,000 and counts them all
    assert len(acked_in_the_gap) > 50
    assert abs(rewind["restore_lost_count"] - len(acked_in_the_gap)) <= 2, "only an edge write may differ"
    assert len(named - acked_in_the_gap) <= 2, sorted(named - acked_in_the_gap)


def breached_checks(run_dir: Path) -> list[tuple[str, str]]:
    """(scenario, check) of every breached verdict of the run in `run_dir`."""
    results = [json.loads(p.read_text()) for p in run_dir.glob("scenarios/*/*/verdict.json")]
    assert results, f"no verdicts in {run_dir}"
    return [(r["scenario"], v["check"]) for r in results for v in r["verdicts"] if v["status"] != "PolicyMet"]


def assert_met_where_the_machine_allows(run_dir: Path, done: subprocess.CompletedProcess) -> None:
    """Every verdict of the run met but the machine-bound ones, which must at least be judged; the exit
    status says whether anything breached."""
    results = [json.loads(p.read_text()) for p in run_dir.glob("scenarios/*/*/verdict.json")]
    breached = breached_checks(run_dir)
    assert all(check in MACHINE_BOUND for _, check in breached), breached
    assert done.returncode == (1 if breached else 0), done.stdout[-3000:] + done.stderr[-3000:]
    for result in results:  # a figure, or the reason there is none (the judge writes it into the explanation)
        assert all(v["measured"] is not None or "has no measured value: " in v["explanation"]
                   for v in result["verdicts"]), result["verdicts"]
