"""How fast the Aurora emulator is, measured side by side in one run.

    python -m harness.bench.emulator [--json PATH]       (what `make bench` runs)

Four figures, each against a target, on whatever machine this runs on:

1. cluster creation: CreateDBCluster until a writer, 2 readers and the 6 storage nodes are up;
2. failover to first write: FailoverDBCluster until an INSERT through the cluster endpoint is
   acknowledged by the new writer (DNS TTL 0, a client that reconnects and retries);
3. commit latency of single-row autocommit INSERTs, cluster endpoint vs the writer's engine;
4. pgbench select-only throughput: cluster endpoint vs the engine directly vs pgbouncer.

Why side by side: the box is shared and noisy, so only figures taken in the same run, with the
paths interleaved, say anything about the emulator's overhead (the fabric proxy in particular).
Everything started here stops at the end, Ctrl-C and SIGTERM included: the emulator's own
`stop()` takes down its processes, and pgbouncer is started through its process registry too.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from harness.emulator.emulator import DEFAULT_REGION, Emulator
from harness.emulator.engines.base import EngineInstance
from harness.emulator.engines.postgres import PgBinaries, PgCluster
from harness.emulator.processes import Child

NET = 77  # 127.77.x.y: apart from the daemon (42), the tests (43) and other people's runs
ENGINE = "aurora-postgresql"
INSTANCE_CLASS = "db.r6g.large"
USER, PASSWORD, DATABASE = "bench", "bench-password-1", "bench"
PORT = 5432
READERS = 2
STORAGE_NODES = 6
POLL_S = 0.05  # describe_db_instances polling, as the brief for the creation figure says
RETRY_S = 0.01  # the failover client retries this often
CONNECT_TIMEOUT_S = 1  # libpq and psycopg treat anything under 2 s as 2 s
PGBOUNCER_HOST, PGBOUNCER_PORT = "127.77.250.1", 6432  # outside every cluster's /24 in practice
PGBENCH_CLIENTS, PGBENCH_THREADS = 4, 2

TARGET_CREATION_S = 3.0
TARGET_FAILOVER_S = 1.0

log = logging.getLogger("harness.bench")


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout holds the report alone."""
    print(f"... {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- statistics


@dataclass
class Summary:
    """Order statistics of one series (seconds or TPS, as the caller says)."""

    n: int
    min: float
    median: float
    max: float
    mean: float
    p95: float
    p99: float
    values: list[float] = field(default_factory=list, repr=False)


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list: no interpolation between samples."""
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarize(values: list[float], keep_values: bool = True) -> Summary:
    ordered = sorted(values)
    return Summary(n=len(ordered), min=ordered[0], median=statistics.median(ordered), max=ordered[-1],
                   mean=statistics.fmean(ordered), p95=percentile(ordered, 95), p99=percentile(ordered, 99),
                   values=values if keep_values else [])


# --------------------------------------------------------------------------- clusters


@dataclass
class BenchCluster:
    """A cluster this benchmark made: its name and its instances' names."""

    identifier: str
    instances: list[str]


def connect(host: str, port: int = PORT, timeout: int = 3) -> psycopg.Connection:
    """An autocommit session as the master user, as an application would open one."""
    return psycopg.connect(host=host, port=port, user=USER, password=PASSWORD, dbname=DATABASE,
                           autocommit=True, connect_timeout=timeout)


def request_cluster(rds: Any, identifier: str) -> BenchCluster:
    """CreateDBCluster and three CreateDBInstance calls; the first to start becomes the writer."""
    rds.create_db_cluster(DBClusterIdentifier=identifier, Engine=ENGINE, MasterUsername=USER,
                          MasterUserPassword=PASSWORD, DatabaseName=DATABASE)
    names = [f"{identifier}-{index}" for index in range(1, READERS + 2)]
    for name in names:
        rds.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier=identifier, Engine=ENGINE,
                               DBInstanceClass=INSTANCE_CLASS)
    return BenchCluster(identifier, names)


def instance_statuses(rds: Any, cluster: BenchCluster) -> dict[str, str]:
    answer = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [cluster.identifier]}])
    return {i["DBInstanceIdentifier"]: i["DBInstanceStatus"] for i in answer["DBInstances"]}


def describe_cluster(rds: Any, cluster: BenchCluster) -> dict[str, Any]:
    return rds.describe_db_clusters(DBClusterIdentifier=cluster.identifier)["DBClusters"][0]


def writer_of(rds: Any, cluster: BenchCluster) -> str:
    members = describe_cluster(rds, cluster)["DBClusterMembers"]
    return next(m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"])


def engine_of(em: Emulator, cluster: BenchCluster) -> PgCluster:
    """The engine side of a cluster, for what RDS has no API for (storage nodes, engine hosts)."""
    return em.backend.region(DEFAULT_REGION).runtimes[cluster.identifier].engine


def engine_instance(em: Emulator, cluster: BenchCluster, identifier: str) -> EngineInstance:
    return engine_of(em, cluster).instances[identifier]


def streaming_storage_nodes(em: Emulator, cluster: BenchCluster, writer: str) -> int:
    """Storage nodes the writer streams to: RDS shows no storage nodes, so ask the engine."""
    engine = engine_of(em, cluster)
    try:
        with engine.admin(engine.instances[writer], timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_replication "
                               "WHERE application_name LIKE 'sn\\_%' AND state = 'streaming'").fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


def wait_until_ready(em: Emulator, rds: Any, cluster: BenchCluster, started: float,
                     timeout: float = 120.0) -> dict[str, float]:
    """Poll until every instance is available and all storage nodes stream; return milestones.

    The milestones (seconds since `started`) show where creation time goes: the writer, each
    reader (base backups run one after another) and the storage nodes.
    """
    milestones: dict[str, float] = {}
    deadline = started + timeout
    while time.monotonic() < deadline:
        statuses = instance_statuses(rds, cluster)
        for name, status in statuses.items():
            if status == "available" and name not in milestones:
                milestones[name] = time.monotonic() - started
            if status == "failed":
                raise RuntimeError(f"{name} failed to start; see the emulator's engine logs")
        if len(milestones) == len(cluster.instances):
            writer = writer_of(rds, cluster)
            if streaming_storage_nodes(em, cluster, writer) >= STORAGE_NODES:
                milestones["storage"] = time.monotonic() - started
                return milestones
        time.sleep(POLL_S)
    raise TimeoutError(f"{cluster.identifier} was not ready within {timeout:.0f} s: {statuses}")


def settled(rds: Any, cluster: BenchCluster) -> bool:
    """Cluster and every instance available: no operation in flight."""
    if describe_cluster(rds, cluster)["Status"] != "available":
        return False
    statuses = instance_statuses(rds, cluster)
    return len(statuses) == len(cluster.instances) and all(s == "available" for s in statuses.values())


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = POLL_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def delete_cluster(em: Emulator, rds: Any, cluster: BenchCluster) -> None:
    """Readers first (deleting a writer that has readers would fail over), then the writer,
    then the cluster; waits for the emulator's delete job so that the next cluster, which
    reuses the address slot, cannot have its listeners removed by this one's teardown."""
    wait_for(lambda: settled(rds, cluster), 120, f"{cluster.identifier} to settle before deletion")
    writer = writer_of(rds, cluster)
    for group in ([n for n in cluster.instances if n != writer], [writer]):
        for name in group:
            rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
        wait_for(lambda: not set(group) & set(instance_statuses(rds, cluster)), 120,
                 f"{', '.join(group)} to be deleted")
    rds.delete_db_cluster(DBClusterIdentifier=cluster.identifier, SkipFinalSnapshot=True)
    wait_for(lambda: f"delete {cluster.identifier}" not in em.jobs.running(), 60,
             f"{cluster.identifier}'s teardown")


# --------------------------------------------------------------------------- 1. creation


@dataclass
class CreationResult:
    cold_s: float  # the warm-up cluster: may include building the template data directory
    warm: Summary
    milestones: list[dict[str, float]]  # per warm repetition: writer, reader-1, reader-2, storage


def create_and_time(em: Emulator, rds: Any, identifier: str) -> tuple[BenchCluster, dict[str, float]]:
    """One timed creation; the figure is milestones['storage'] (everything up)."""
    started = time.monotonic()
    cluster = request_cluster(rds, identifier)
    milestones = wait_until_ready(em, rds, cluster, started)
    writer = writer_of(rds, cluster)
    readers = sorted((milestones[n] for n in cluster.instances if n != writer))
    ordered = {"writer": milestones[writer], **{f"reader-{i + 1}": t for i, t in enumerate(readers)},
               "storage": milestones["storage"], "total": max(milestones.values())}
    return cluster, ordered


def bench_creation(em: Emulator, rds: Any, repetitions: int) -> tuple[CreationResult, BenchCluster]:
    """Warm-up, then `repetitions` timed creations; the last cluster is kept for the rest."""
    progress("cluster creation: warm-up cluster (the emulator builds its template once)")
    cluster, cold = create_and_time(em, rds, "bench-warmup")
    delete_cluster(em, rds, cluster)
    runs: list[dict[str, float]] = []
    for rep in range(1, repetitions + 1):
        cluster, milestones = create_and_time(em, rds, f"bench-{rep}")
        progress(f"cluster creation {rep}/{repetitions}: {milestones['total']:.2f} s")
        runs.append(milestones)
        if rep < repetitions:
            delete_cluster(em, rds, cluster)
    result = CreationResult(cold_s=cold["total"], warm=summarize([r["total"] for r in runs]), milestones=runs)
    return result, cluster


# --------------------------------------------------------------------------- 2. failover


class WriteProbe:
    """An application writing through the cluster endpoint: INSERT, and on any error reconnect
    (1 s connect timeout) and retry every RETRY_S. Each acknowledgement records which instance
    took it, so a write the old writer acknowledged before it was fenced is not mistaken for
    the first write after the failover."""

    def __init__(self, host: str):
        self.host = host
        self.acks: list[tuple[float, str]] = []  # (monotonic time, instance that acknowledged)
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-write-probe", daemon=True)

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = connect(self.host, timeout=CONNECT_TIMEOUT_S)
                row = conn.execute("INSERT INTO bench_failover DEFAULT VALUES "
                                   "RETURNING current_setting('cluster_name')").fetchone()
                self.acks.append((time.monotonic(), row[0]))
            except psycopg.Error:
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(RETRY_S)
        if conn is not None:
            conn.close()

    def first_ack_not_from(self, instance: str, after: float) -> float | None:
        return next((t for t, who in list(self.acks) if t >= after and who != instance), None)

    def last_ack_from(self, instance: str) -> float | None:
        return max((t for t, who in list(self.acks) if who == instance), default=None)

    def __enter__(self) -> WriteProbe:
        self._thread.start()
        wait_for(lambda: bool(self.acks), 30, "the write probe's first INSERT", interval=0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@dataclass
class FailoverResult:
    first_write: Summary  # FailoverDBCluster call -> first INSERT acknowledged by the new writer
    write_gap: Summary  # last INSERT the old writer acknowledged -> first on the new writer
    settle: Summary  # call -> cluster and every instance available again (old writer rejoined)


def fail_over_once(rds: Any, cluster: BenchCluster, host: str) -> tuple[float, float, float]:
    """One measured failover: (first write, write gap, settle), in seconds."""
    old_writer = writer_of(rds, cluster)
    with WriteProbe(host) as probe:
        started = time.monotonic()
        rds.failover_db_cluster(DBClusterIdentifier=cluster.identifier)
        wait_for(lambda: probe.first_ack_not_from(old_writer, started) is not None, 60,
                 "the first write on the new writer", interval=0.002)
    first = probe.first_ack_not_from(old_writer, started)
    last_old = probe.last_ack_from(old_writer)
    assert first is not None and last_old is not None
    wait_for(lambda: settled(rds, cluster), 120, f"{cluster.identifier} to settle after failover")
    return first - started, first - last_old, time.monotonic() - started


def bench_failover(rds: Any, cluster: BenchCluster, repetitions: int) -> FailoverResult:
    host = describe_cluster(rds, cluster)["Endpoint"]
    with connect(host) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_failover (id bigserial PRIMARY KEY, "
                     "at timestamptz DEFAULT clock_timestamp())")
    runs = []
    for rep in range(1, repetitions + 1):
        wait_for(lambda: settled(rds, cluster), 120, f"{cluster.identifier} to settle")
        runs.append(fail_over_once(rds, cluster, host))
        progress(f"failover {rep}/{repetitions}: first write after {runs[-1][0]:.3f} s, "
                 f"settled after {runs[-1][2]:.1f} s")
    return FailoverResult(*(summarize([run[i] for run in runs]) for i in range(3)))


# --------------------------------------------------------------------------- 3. commit latency


@dataclass
class LatencyResult:
    endpoint: Summary  # seconds per commit through the cluster endpoint (fabric proxy)
    direct: Summary  # seconds per commit straight to the writer's engine


def timed_inserts(conn: psycopg.Connection, count: int) -> list[float]:
    """Seconds per single-row autocommit INSERT; each one waits for the 4-of-6 storage quorum."""
    latencies = []
    for _ in range(count):
        begin = time.perf_counter()
        conn.execute("INSERT INTO bench_commit (payload) VALUES (1)")
        latencies.append(time.perf_counter() - begin)
    return latencies


def bench_commit_latency(endpoint_host: str, engine_host: str, blocks: int, block_size: int) -> LatencyResult:
    """Alternate blocks on the two paths (and which goes first) so both see the same machine."""
    samples: dict[str, list[float]] = {"endpoint": [], "direct": []}
    with connect(endpoint_host) as via_endpoint, connect(engine_host) as direct:
        via_endpoint.execute("CREATE TABLE IF NOT EXISTS bench_commit (id bigserial PRIMARY KEY, payload int)")
        paths = {"endpoint": via_endpoint, "direct": direct}
        for conn in paths.values():
            timed_inserts(conn, 20)  # warm: prepared statement, caches
        for block in range(blocks):
            order = ["endpoint", "direct"] if block % 2 == 0 else ["direct", "endpoint"]
            for path in order:
                samples[path] += timed_inserts(paths[path], block_size)
    return LatencyResult(endpoint=summarize(samples["endpoint"], keep_values=False),
                         direct=summarize(samples["direct"], keep_values=False))


# --------------------------------------------------------------------------- 4. pgbench and pgbouncer


@dataclass(frozen=True)
class DbPath:
    """Where pgbench connects, and which process (if any) proxies that path, for its CPU cost."""

    host: str
    port: int
    proxy_pids: tuple[int, ...] = ()  # the fabric and its C pump, or pgbouncer


def find_program(name: str, *extra_dirs: Path) -> str | None:
    for directory in extra_dirs:
        if (directory / name).exists():
            return str(directory / name)
    return shutil.which(name) or next((f"{d}/{name}" for d in ("/usr/sbin", "/usr/local/sbin")
                                       if os.path.exists(f"{d}/{name}")), None)


def apt_get(*args: str) -> bool:
    """Run apt-get as root (sudo -n when we are not root); True when it succeeded."""
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    command = [*sudo, "apt-get", *args]
    progress(f"running: {' '.join(command)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL).returncode == 0


def ensure_pgbouncer() -> str | None:
    """pgbouncer is the yardstick for the proxy; install it (Debian package) when missing."""
    found = find_program("pgbouncer")
    if found:
        return found
    progress("pgbouncer is not installed: installing the Debian package")
    if not apt_get("install", "-y", "-qq", "--no-install-recommends", "pgbouncer"):
        apt_get("update", "-qq")
        apt_get("install", "-y", "-qq", "--no-install-recommends", "pgbouncer")
    found = find_program("pgbouncer")
    if found is None:
        progress("pgbouncer could not be installed; its figure is left out")
    elif started := processes_mentioning("/etc/pgbouncer/pgbouncer.ini"):
        # Where no policy-rc.d blocks it, the package starts the system's own pgbouncer service.
        progress(f"note: installing pgbouncer started its system service (pids {started}); "
                 f"`service pgbouncer stop` stops it")
    return found


def program_version(program: str) -> str:
    out = subprocess.run([program, "--version"], capture_output=True, text=True).stdout.strip()
    return out.splitlines()[0] if out else "?"


def scram_secret(em: Emulator, cluster: BenchCluster, writer: str) -> str:
    """The master user's SCRAM verifier: with it in its auth_file pgbouncer can log in to the
    engine on the client's behalf (SCRAM pass-through) without knowing the password."""
    engine = engine_of(em, cluster)
    with engine.admin(engine.instances[writer]) as conn:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (USER,)).fetchone()
    if not row or not str(row[0]).startswith("SCRAM-SHA-256$"):
        raise RuntimeError(f"no SCRAM verifier for {USER}")
    return str(row[0])


def pgbouncer_config(directory: Path, engine_host: str) -> Path:
    """Session pooling in front of one engine; no Unix socket (it would collide with others')."""
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"{DATABASE} = host={engine_host} port={PORT} dbname={DATABASE}\n"
        "[pgbouncer]\n"
        f"listen_addr = {PGBOUNCER_HOST}\n"
        f"listen_port = {PGBOUNCER_PORT}\n"
        "unix_socket_dir =\n"
        "auth_type = scram-sha-256\n"
        f"auth_file = {directory / 'userlist.txt'}\n"
        "pool_mode = session\n"
        "max_client_conn = 100\n"
        "default_pool_size = 20\n"
        f"logfile = {directory / 'pgbouncer.log'}\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    return ini


def wait_listening(host: str, port: int, child: Child, timeout: float = 10.0) -> None:
    def up() -> bool:
        if not child.alive():
            raise RuntimeError(f"pgbouncer exited at start:\n{child.log_tail()}")
        with socket.socket() as sock:
            return sock.connect_ex((host, port)) == 0
    wait_for(up, timeout, f"pgbouncer on {host}:{port}", interval=0.02)


@contextmanager
def pgbouncer(em: Emulator, program: str, engine_host: str, secret: str) -> Iterator[DbPath]:
    """Run pgbouncer as the engine account (it refuses root) through the emulator's process
    registry, so even a SIGKILLed benchmark leaves none behind; stop it and check on exit."""
    directory = em.state_dir / "pgbouncer"
    directory.mkdir(mode=0o700, exist_ok=True)
    (directory / "userlist.txt").write_text(f'"{USER}" "{secret}"\n')
    os.chmod(directory / "userlist.txt", 0o600)
    ini = pgbouncer_config(directory, engine_host)
    em.registry.give_to_engine_user(directory)
    child = em.registry.spawn("pgbouncer", [program, str(ini)], log_path=directory / "stdout.log")
    try:
        wait_listening(PGBOUNCER_HOST, PGBOUNCER_PORT, child)
        yield DbPath(PGBOUNCER_HOST, PGBOUNCER_PORT, proxy_pids=(child.pid,))
    finally:
        child.stop(signal.SIGTERM, timeout=5)
        em.registry.forget(child)
        leftovers = processes_mentioning(str(ini))
        progress("pgbouncer stopped" + (f"; LEFT RUNNING: pids {leftovers}" if leftovers else ", none left"))


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text`: the leftover check."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def pgbench(program: str, host: str, port: int, args: list[str], timeout: float) -> str:
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    done = subprocess.run([program, "-h", host, "-p", str(port), "-U", USER, *args, DATABASE],
                          env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench {' '.join(args)} against {host}:{port} failed:\n{done.stderr[-2000:]}")
    return done.stdout


@dataclass
class PgbenchRun:
    tps: float
    transactions: int
    proxy_cpu_s: float | None  # CPU the proxy process used during the run


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_pgbench(out: str) -> tuple[float, int]:
    """(tps, transactions processed) from pgbench's summary."""
    tps = transactions = None
    for line in out.splitlines():
        if line.startswith("tps = "):
            tps = float(line.split()[2])
        elif line.startswith("number of transactions actually processed:"):
            transactions = int(line.split(":")[1].split("/")[0])
    if tps is None or transactions is None:
        raise RuntimeError(f"no tps or transaction count in pgbench's output:\n{out}")
    return tps, transactions


def select_only_run(program: str, path: DbPath, seconds: int) -> PgbenchRun:
    """Read-only point selects: the workload where a proxy's per-message cost shows most."""
    def proxy_cpu() -> float:
        return sum(process_cpu_seconds(pid) for pid in path.proxy_pids)

    cpu_before = proxy_cpu()
    out = pgbench(program, path.host, path.port, ["-S", "-n", "-M", "simple", "-T", str(seconds),
                                                  "-c", str(PGBENCH_CLIENTS), "-j", str(PGBENCH_THREADS)],
                  timeout=seconds + 60)
    return PgbenchRun(*parse_pgbench(out), proxy_cpu_s=proxy_cpu() - cpu_before if path.proxy_pids else None)


@dataclass
class ThroughputResult:
    tps: dict[str, Summary]  # path -> TPS over the rounds
    ratios: dict[str, float]  # median over rounds of (path TPS / direct TPS in the same round)
    proxy_us_per_txn: dict[str, float]  # median CPU microseconds the proxy spent per transaction
    seconds: int
    rounds: int


def rotated(names: list[str], by: int) -> list[str]:
    by %= len(names)
    return names[by:] + names[:by]


def bench_pgbench(program: str, paths: dict[str, DbPath], seconds: int, rounds: int) -> ThroughputResult:
    """The paths take turns, the order rotating each round, so they share the machine's noise;
    ratios are taken within a round for the same reason."""
    runs: dict[str, list[PgbenchRun]] = {name: [] for name in paths}
    for round_ in range(rounds):
        for name in rotated(list(paths), round_):
            runs[name].append(select_only_run(program, paths[name], seconds))
            progress(f"pgbench round {round_ + 1}/{rounds} {name}: {runs[name][-1].tps:.0f} tps")
    ratios = {name: statistics.median(r.tps / d.tps for r, d in zip(runs[name], runs["direct"]))
              for name in paths if name != "direct"}
    cpu = {name: statistics.median(r.proxy_cpu_s / r.transactions * 1e6 for r in rs)
           for name, rs in runs.items() if rs[0].proxy_cpu_s is not None}
    return ThroughputResult({name: summarize([r.tps for r in rs]) for name, rs in runs.items()},
                            ratios, cpu, seconds, rounds)


# --------------------------------------------------------------------------- report


def engine_version() -> str:
    return f"PostgreSQL {PgBinaries.find().version()}"


def machine_context(pgbench_program: str, pgbouncer_program: str | None) -> dict[str, Any]:
    """What the figures depend on, and how busy the shared box was when we started."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return {
        "cores": os.cpu_count(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "engine": engine_version(),
        "pgbench": program_version(pgbench_program),
        "pgbouncer": program_version(pgbouncer_program) if pgbouncer_program else "not available",
        "python": platform.python_version(),
        "fabric_event_loop": loop,
        "platform": platform.platform(),
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def render(results: dict[str, Any]) -> str:
    """The human-readable report: one block per figure, then the verdicts."""
    lines = ["", "Aurora emulator benchmark", "=" * 72]
    for key, value in results["machine"].items():
        lines.append(f"  {key:<24} {value}")
    creation: CreationResult | None = results.get("creation")
    if creation:
        lines += ["", "1. Cluster creation (writer + 2 readers + 6 storage nodes available)",
                  f"  warm-up (cold) cluster   {creation.cold_s:.2f} s",
                  f"  warm, {creation.warm.n} runs            min {creation.warm.min:.2f} s   "
                  f"median {creation.warm.median:.2f} s   max {creation.warm.max:.2f} s"]
        for i, run in enumerate(creation.milestones, 1):
            steps = "  ".join(f"{k} {v:.2f}" for k, v in run.items() if k != "total")
            lines.append(f"    run {i}: {steps}  (s since CreateDBCluster)")
    failover: FailoverResult | None = results.get("failover")
    if failover:
        lines += ["", f"2. Failover to first write (DNS TTL 0, {failover.first_write.n} runs)",
                  f"  {'':<34}{'min':>8}{'median':>9}{'max':>8}"]
        for label, s in (("FailoverDBCluster -> first write", failover.first_write),
                         ("last old-writer ack -> first new", failover.write_gap),
                         ("call -> all instances available", failover.settle)):
            lines.append(f"  {label:<34}{s.min:>7.3f}s{s.median:>8.3f}s{s.max:>7.3f}s")
    latency: LatencyResult | None = results.get("latency")
    if latency:
        lines += ["", f"3. Commit latency, single-row autocommit INSERT (ms, {latency.direct.n} each, interleaved)",
                  f"  {'path':<22}{'p50':>8}{'p95':>8}{'p99':>8}{'mean':>8}{'max':>8}"]
        for label, s in (("cluster endpoint", latency.endpoint), ("writer engine direct", latency.direct)):
            lines.append(f"  {label:<22}{ms(s.median):>8}{ms(s.p95):>8}{ms(s.p99):>8}{ms(s.mean):>8}{ms(s.max):>8}")
        p50 = (latency.endpoint.median - latency.direct.median) * 1000
        mean = (latency.endpoint.mean - latency.direct.mean) * 1000
        lines.append(f"  proxy overhead        p50 {p50:+.3f} ms, mean {mean:+.3f} ms (both paths pay the 4-of-6 quorum)")
    throughput: ThroughputResult | None = results.get("throughput")
    if throughput:
        lines += ["", f"4. pgbench -S (select-only), -c {PGBENCH_CLIENTS} -j {PGBENCH_THREADS} -M simple, "
                      f"{throughput.seconds} s x {throughput.rounds} rounds, writer",
                  f"  {'path':<22}{'median tps':>12}{'min':>10}{'max':>10}{'vs direct':>11}{'proxy CPU/txn':>15}"]
        for path, s in throughput.tps.items():
            ratio = throughput.ratios.get(path, 1.0)
            cpu = throughput.proxy_us_per_txn.get(path)
            cpu_text = f"{cpu:.1f} us" if cpu is not None else "-"
            lines.append(f"  {path:<22}{s.median:>12.0f}{s.min:>10.0f}{s.max:>10.0f}{ratio:>10.2f}x{cpu_text:>15}")
        lines.append("  (vs direct: median of same-round ratios; proxy CPU: the fabric or pgbouncer process)")
    lines += ["", "Verdicts (figures from this run, not assertions)"]
    lines += [f"  {v}" for v in verdicts(results)]
    return "\n".join(lines)


def verdicts(results: dict[str, Any]) -> list[str]:
    out = []
    creation: CreationResult | None = results.get("creation")
    if creation:
        met = creation.warm.median <= TARGET_CREATION_S
        out.append(f"cluster creation <= {TARGET_CREATION_S:g} s (warm median): {'met' if met else 'NOT met'} "
                   f"({creation.warm.median:.2f} s)")
    failover: FailoverResult | None = results.get("failover")
    if failover:
        met = failover.first_write.median <= TARGET_FAILOVER_S
        out.append(f"failover to first write <= {TARGET_FAILOVER_S:g} s (median): {'met' if met else 'NOT met'} "
                   f"({failover.first_write.median:.3f} s; max {failover.first_write.max:.3f} s)")
    throughput: ThroughputResult | None = results.get("throughput")
    if throughput and "pgbouncer" in throughput.ratios:
        endpoint, bouncer = throughput.ratios["endpoint"], throughput.ratios["pgbouncer"]
        out.append(f"endpoint proxy throughput >= pgbouncer's (vs direct): {'met' if endpoint >= bouncer else 'NOT met'} "
                   f"({endpoint:.2f}x vs {bouncer:.2f}x)")
    elif throughput:
        out.append("endpoint proxy throughput >= pgbouncer's: not measured (no pgbouncer)")
    return out


def to_json(results: dict[str, Any]) -> dict[str, Any]:
    return {key: asdict(value) if hasattr(value, "__dataclass_fields__") else value
            for key, value in results.items()}


# --------------------------------------------------------------------------- main


def raise_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the finally blocks stop everything we started."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    parser.add_argument("--creation-runs", type=int, default=3, help="timed creations after the warm-up")
    parser.add_argument("--failovers", type=int, default=5)
    parser.add_argument("--commits", type=int, default=2000, help="INSERTs per path")
    parser.add_argument("--pgbench-seconds", type=int, default=5)
    parser.add_argument("--pgbench-rounds", type=int, default=4)
    return parser.parse_args(argv)


def run(em: Emulator, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """The four benchmarks in order, filling `results` as they finish (a partial report survives
    a failure in a later one)."""
    rds = em.client()
    pgbench_program = find_program("pgbench", PgBinaries.find().bindir) or "pgbench"
    pgbouncer_program = ensure_pgbouncer()
    results["machine"] = machine_context(pgbench_program, pgbouncer_program)
    results["creation"], cluster = bench_creation(em, rds, args.creation_runs)
    results["failover"] = bench_failover(rds, cluster, args.failovers)
    wait_for(lambda: settled(rds, cluster), 120, f"{cluster.identifier} to settle")
    writer = writer_of(rds, cluster)
    endpoint_host = describe_cluster(rds, cluster)["Endpoint"]
    engine_host = engine_instance(em, cluster, writer).host
    progress(f"commit latency: {args.commits} INSERTs per path, interleaved")
    blocks = max(2, args.commits // 100)
    results["latency"] = bench_commit_latency(endpoint_host, engine_host, blocks, args.commits // blocks)
    progress("pgbench: initialising scale 1 through the writer")
    pgbench(pgbench_program, engine_host, PORT, ["-i", "-s", "1", "-q"], timeout=300)
    # The fabric (and its C pump, for client endpoints) proxies every endpoint and replication link;
    # select-only traffic is nearly all of it.
    fabric = em.fabric.request("ping")
    proxies = (fabric["pid"],) + ((fabric["pump_pid"],) if fabric.get("pump_pid") else ())
    paths = {"endpoint": DbPath(endpoint_host, PORT, proxy_pids=proxies),
             "direct": DbPath(engine_host, PORT)}
    if pgbouncer_program is None:
        results["throughput"] = bench_pgbench(pgbench_program, paths, args.pgbench_seconds, args.pgbench_rounds)
        return
    with pgbouncer(em, pgbouncer_program, engine_host, scram_secret(em, cluster, writer)) as bouncer:
        results["throughput"] = bench_pgbench(pgbench_program, {**paths, "pgbouncer": bouncer},
                                              args.pgbench_seconds, args.pgbench_rounds)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    raise_on_sigterm()
    state_dir = Path(tempfile.mkdtemp(prefix="gd-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    results: dict[str, Any] = {}
    began = time.monotonic()
    status = 0
    try:
        with Emulator(state_dir, net=NET, dns_ttl=0) as em:
            run(em, args, results)
    except KeyboardInterrupt:
        status = 130
        progress("interrupted; the emulator and pgbouncer have been stopped")
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        if "machine" in results:
            results["machine"]["benchmark_seconds"] = round(time.monotonic() - began, 1)
            print(render(results), flush=True)
            if args.json:
                args.json.write_text(json.dumps(to_json(results), indent=2))
                print(f"\nJSON written to {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())
