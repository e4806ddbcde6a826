"""How much load the load generator itself can make here, beside pgbench on the same endpoint.

    python -m harness.bench.load [--users 8] [--seconds 8] [--rounds 2] [--workers 0] [--json PATH]

The workload is the trivial one (`load/trivial.py`: SELECT 1 through the cluster endpoint, no
think time), so what limits it is the client, the endpoint and the machine, not the engine.
Each round runs Locust, then pgbench with a SELECT 1 script, the same number of clients and the
same endpoint, in the same run, so the shared machine's noise hits both alike. It prints:

- the requests per second Locust sustained (whole seconds of its own history while measuring);
- pgbench's transactions per second;
- the CPU each client used: for Locust, user + system time of all its processes over the
  measured window (1.0 s/s is one core busy; gevent runs a process's users on one core), and
  per thousand requests, which says what a larger load would cost.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.environments import ClusterRequirement, ClusterUnderTest, EmulatorEnvironment
from harness.emulator.engines.postgres import PgBinaries
from harness.load.runner import Distribution, LoadRun, LoadSpec
from harness.load.settings import LoadSettings
from harness.timeline import Timeline, read_timeline

NET = 79  # 127.79.x.y: apart from the other benchmarks and the tests
WARM_UP_S = 2.0


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def locust_round(cut: ClusterUnderTest, directory: Path, users: int, seconds: float, workers: int) -> dict[str, Any]:
    (host, port), (reader_host, reader_port) = cut.endpoint(), cut.reader_endpoint()
    settings = LoadSettings(cut.dialect.engine, host, port, reader_host, reader_port, cut.credentials.user,
                            cut.credentials.database, "naive", "bench")
    timeline = Timeline(directory / "timeline.jsonl")
    run = LoadRun(LoadSpec("trivial", users), settings, cut.credentials.password, directory / "load", timeline,
                  Distribution(workers=workers))
    try:
        run.start()
        time.sleep(WARM_UP_S)
        began, cpu_before = time.time(), sum(cpu_seconds(pid) for pid in run.pids())
        time.sleep(seconds)
        ended, cpu_after = time.time(), sum(cpu_seconds(pid) for pid in run.pids())
        run.wait_reported(ended)
    finally:
        run.stop()
        timeline.close()
    inside = [r for r in read_timeline(timeline.path)
              if r["kind"] == "load" and began <= r["t"] and r["t"] + 1 <= ended]
    rps = sum(r["requests"] for r in inside) / len(inside)
    cpu_per_s = (cpu_after - cpu_before) / (ended - began)
    return {"rps": rps, "failures": sum(r["failures"] for r in inside), "cpu_s_per_s": cpu_per_s,
            "cpu_s_per_1000": 1000 * cpu_per_s / rps, "p50_ms": statistics.median(r["p50_ms"] for r in inside)}


def pgbench_round(cut: ClusterUnderTest, script: Path, users: int, seconds: float) -> dict[str, Any]:
    host, port = cut.endpoint()
    program = PgBinaries.find()("pgbench")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([program, "-n", "-M", "extended", "-f", str(script), "-c", str(users),
                           "-j", str(min(users, os.cpu_count() or 1)), "-T", str(int(seconds)), "-h", host,
                           "-p", str(port), "-U", cut.credentials.user, cut.credentials.database],
                          env={**os.environ, "PGPASSWORD": cut.credentials.password}, capture_output=True, text=True,
                          timeout=seconds + 60, stdin=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{done.stderr[-2000:]}")
    tps = next(float(line.split()[2]) for line in done.stdout.splitlines() if line.startswith("tps = "))
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"tps": tps, "cpu_s_per_s": cpu / seconds, "cpu_s_per_1000": 1000 * cpu / (seconds * tps)}


def render(rounds: list[dict[str, Any]], users: int, seconds: float, workers: int) -> str:
    where = f"a master and {workers} workers" if workers else "one Locust process"
    lines = [f"Load generator on this machine ({os.cpu_count()} cores): SELECT 1 through the cluster endpoint, "
             f"{users} clients, {seconds:g} s per round", "=" * 100,
             f"  Locust: {where}, naive client (psycopg 3, extended protocol); pgbench -M extended, "
             f"-j {min(users, os.cpu_count() or 1)}", "",
             f"  {'round':<7}{'Locust req/s':>14}{'CPU':>12}{'CPU/1k req':>12}{'p50':>9}"
             f"{'pgbench tps':>14}{'CPU':>12}{'CPU/1k':>10}"]
    for index, r in enumerate(rounds, 1):
        locust, pgbench = r["locust"], r["pgbench"]
        lines.append(f"  {index:<7}{locust['rps']:>14,.0f}{locust['cpu_s_per_s']:>9.2f}s/s"
                     f"{locust['cpu_s_per_1000']:>10.2f}s{locust['p50_ms']:>7.1f}ms{pgbench['tps']:>14,.0f}"
                     f"{pgbench['cpu_s_per_s']:>9.2f}s/s{pgbench['cpu_s_per_1000']:>8.2f}s")
    rps = statistics.median(r["locust"]["rps"] for r in rounds)
    tps = statistics.median(r["pgbench"]["tps"] for r in rounds)
    cpu = statistics.median(r["locust"]["cpu_s_per_s"] for r in rounds)
    lines += ["", f"  median: Locust sustained {rps:,.0f} requests/s, {rps / tps:.0%} of pgbench's {tps:,.0f} tps "
                  f"on the same endpoint, keeping {cpu:.2f} of a core busy "
                  f"({statistics.median(r['locust']['cpu_s_per_1000'] for r in rounds):.2f} CPU-s per 1000 requests)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="Locust workers (0: one process, no master)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="gd-bench-load-"))
    state_dir = Path("/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir()) / directory.name
    script = directory / "select1.sql"
    script.write_text("SELECT 1;\n")
    environment = EmulatorEnvironment(state_dir=state_dir, net=NET, dns_ttl=0)
    rounds: list[dict[str, Any]] = []
    try:
        cut = environment.provide(ClusterRequirement(readers=1), "bench load")
        for index in range(1, args.rounds + 1):
            progress(f"round {index}/{args.rounds}: Locust")
            locust = locust_round(cut, directory / f"round-{index}", args.users, args.seconds, args.workers)
            progress(f"round {index}/{args.rounds}: pgbench")
            rounds.append({"locust": locust, "pgbench": pgbench_round(cut, script, args.users, args.seconds)})
        environment.release(cut)
    finally:
        environment.close()
        shutil.rmtree(state_dir, ignore_errors=True)
        shutil.rmtree(directory, ignore_errors=True)
    print(render(rounds, args.users, args.seconds, args.workers))
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
