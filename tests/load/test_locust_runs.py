"""Locust as the harness runs it: its own processes, real psycopg and PyMySQL users, one timeline."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness.environments import ClusterUnderTest
from harness.load.runner import Distribution, LoadRun, LoadSpec
from harness.load.settings import PASSWORD, LoadSettings
from harness.timeline import Record, Timeline, read_timeline

LOCUSTFILES = Path(__file__).parent / "locustfiles"
PROJECT = Path(__file__).resolve().parents[2]


def run_for(seconds: float, spec: LoadSpec, settings: LoadSettings, password: str, directory: Path,
            distribution: Distribution = Distribution()) -> tuple[LoadRun, list[Record]]:
    timeline = Timeline(directory / "timeline.jsonl")
    run = LoadRun(spec, settings, password, directory / "load", timeline, distribution)
    try:
        run.start()
        time.sleep(seconds)
    finally:
        run.stop()
        timeline.close()
    return run, read_timeline(timeline.path)


def locust_totals(directory: Path) -> tuple[int, int]:
    """(requests, failures) as Locust's own stats CSV counts them."""
    with open(directory / "locust_stats.csv", newline="") as stats:
        aggregated = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    return int(aggregated["Request Count"]), int(aggregated["Failure Count"])


def named(second: Record, name: str) -> int:
    return sum(entry["requests"] for entry in second["names"] if entry["name"] == name)


def test_psycopg_users_run_concurrently_under_locust(cluster: ClusterUnderTest, settings: LoadSettings,
                                                      tmp_path: Path) -> None:
    """One user spends 2 s of every 2.2 s in pg_sleep; the four others must not notice."""
    spec = LoadSpec(str(LOCUSTFILES / "slow_and_fast.py"), users=5)
    run, records = run_for(5, spec, settings, cluster.credentials.password, tmp_path)
    seconds = sorted((r for r in records if r["kind"] == "load"), key=lambda r: r["start"])
    inner = seconds[1:-1]  # the first and last seconds are partial
    assert sum(named(s, "pg_sleep(2)") for s in seconds) >= 2, "the sleeper slept, more than once"
    quick = [named(s, "select 1") for s in inner]
    # Were psycopg's waits blocking, the quick users would stand still 90 % of the time.
    assert len(quick) >= 3 and min(quick) >= 50, quick
    assert sum(s["failures"] for s in seconds) == 0 and run.exit_codes == {"locust": 0}


def test_master_and_two_workers_make_one_merged_result_and_keep_the_password_to_themselves(
        cluster: ClusterUnderTest, settings: LoadSettings, tmp_path: Path) -> None:
    password = cluster.credentials.password
    timeline = Timeline(tmp_path / "timeline.jsonl")
    run = LoadRun(LoadSpec("oltp", 6), settings, password, tmp_path / "load", timeline, Distribution(workers=2))
    try:
        run.start()
        for process in run.processes:  # what `ps` shows everyone, and who was given the password
            argv = Path(f"/proc/{process.popen.pid}/cmdline").read_bytes().decode()
            environ = Path(f"/proc/{process.popen.pid}/environ").read_bytes().decode()
            assert password not in argv
            assert (f"{PASSWORD}=" in environ) == process.role.startswith("worker"), process.role
        time.sleep(4)
    finally:
        run.stop()
        timeline.close()
    assert run.exit_codes == {"master": 0, "worker-1": 0, "worker-2": 0}
    seconds = [r for r in read_timeline(timeline.path) if r["kind"] == "load"]
    assert max(s["workers"] for s in seconds) == 2
    assert max(s["users"] for s in seconds) == 6, "the users of both workers, added up"
    requests, failures = locust_totals(tmp_path / "load")
    assert requests > 200 and requests == sum(s["requests"] for s in seconds), "one merged result, nothing lost"
    assert failures == sum(s["failures"] for s in seconds) == 0
    written = sorted(p.name for p in (tmp_path / "load").iterdir())
    assert written.count("locust.html") == 1 and "locust_stats.csv" in written
    for path in (tmp_path / "load").iterdir():
        assert password not in path.read_text(errors="replace"), f"the password leaked into {path.name}"


def test_the_load_stops_in_order_when_the_harness_is_killed(cluster: ClusterUnderTest, settings: LoadSettings,
                                                             tmp_path: Path) -> None:
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=PROJECT,
        env={**os.environ, "TEST_SETTINGS": json.dumps(dataclasses.asdict(settings)),
             "TEST_PASSWORD": cluster.credentials.password})
    try:
        pids = json.loads(harness.stdout.readline())
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
    finally:
        harness.send_signal(signal.SIGKILL)
        harness.wait()
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in pids), "Locust outlived the process that started it"
    last = json.loads((tmp_path / "load" / "history.jsonl").read_text().splitlines()[-1])
    assert last.get("final"), "the master stopped in order: it wrote its last second before exiting"


HARNESS = """
import json, os, sys, time
from pathlib import Path
from harness.load.runner import Distribution, LoadRun, LoadSpec
from harness.load.settings import LoadSettings
from harness.timeline import Timeline
directory = Path(sys.argv[1])
run = LoadRun(LoadSpec("oltp", 2), LoadSettings(**json.loads(os.environ["TEST_SETTINGS"])),
              os.environ["TEST_PASSWORD"], directory / "load", Timeline(directory / "timeline.jsonl"),
              Distribution(workers=1))
run.start()
print(json.dumps(run.pids()), flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_mysql_users_report_every_failed_request_to_locust(tmp_path: Path) -> None:
    """No MySQL endpoint yet: PyMySQL users against a closed port fail, each failure reported."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = LoadSettings("aurora-mysql", "127.0.0.1", port, "127.0.0.1", port, "app", "app")
    run, records = run_for(1.5, LoadSpec(str(LOCUSTFILES / "mysql_orders.py"), users=3), settings, "s3cret-pw",
                           tmp_path)
    seconds = [r for r in records if r["kind"] == "load"]
    groups = [r for r in records if r["kind"] == "load-failure"]
    failed = sum(s["failures"] for s in seconds)
    assert failed > 10 and failed == sum(s["requests"] for s in seconds) == sum(g["occurrences"] for g in groups)
    assert {g["error"].split(" (")[0] for g in groups} == {"2003: Can't connect to MySQL server on '127.0.0.1'"}
    assert locust_totals(tmp_path / "load") == (failed, failed)


def test_a_load_whose_process_cannot_exit_still_ends_with_its_results_and_locust_s_exit_status(
        tmp_path: Path) -> None:
    """A thread that never ends (a library's monitor in a pool) holds the interpreter's exit for ever."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = LoadSettings("aurora-mysql", "127.0.0.1", port, "127.0.0.1", port, "app", "app")
    run, records = run_for(1.5, LoadSpec(str(LOCUSTFILES / "exit_hangs.py"), users=2), settings, "s3cret-pw",
                           tmp_path)
    log = (tmp_path / "load" / "locust.log").read_text()
    assert run.exit_codes == {"locust": 0}, log[-3000:]
    assert "did not exit within" in log and "monitor" in log, log[-3000:]
    failed = sum(r["failures"] for r in records if r["kind"] == "load")
    assert failed > 5 and locust_totals(tmp_path / "load") == (failed, failed)


def test_importing_psycopg_before_locust_is_refused() -> None:
    """Outside Locust's own CLI (which imports itself first) the wrong order would serialize every query."""
    done = subprocess.run([sys.executable, "-c", "import psycopg; import harness.load.users"], capture_output=True,
                          text=True, cwd=PROJECT, timeout=60)
    assert done.returncode != 0
    assert "psycopg was imported before locust patched the process" in done.stderr


def test_the_harness_process_itself_is_never_gevent_patched() -> None:
    """Every load above ran in Locust's own processes: this one never imported Locust or gevent."""
    assert "locust" not in sys.modules and "gevent.monkey" not in sys.modules
