"""The two engines the emulator runs, as the benchmark sees them.

A `BenchEngine` says everything that differs between aurora-postgresql and aurora-mysql for the
benchmark: how a client connects, what "ready" means past every instance being available, how an
acknowledged write names the instance that took it, and which tool measures read throughput. The
benchmarks themselves (`harness.bench.emulator`) are written once, against this description.
"""

from __future__ import annotations

import os
import re
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import psycopg
import pymysql

from harness.bench import pgbouncer
from harness.bench.common import DbPath, find_program, program_version, progress
from harness.emulator.emulator import Emulator
from harness.emulator.engines.base import EngineCluster
from harness.emulator.engines.mariadb import MariaDbCluster
from harness.emulator.engines.postgres import PgBinaries, PgCluster

USER, PASSWORD, DATABASE = "bench", "bench-password-1", "bench"
READERS = 2
LOAD_CLIENTS = 4  # pgbench -c, mariadb-slap --concurrency


class Session(Protocol):
    """An autocommit session as the master user, as an application would open one."""

    def execute(self, sql: str) -> None: ...
    def query(self, sql: str) -> list[tuple[Any, ...]]: ...
    def close(self) -> None: ...


class PgSession:
    def __init__(self, conn: psycopg.Connection):
        self.conn = conn

    def execute(self, sql: str) -> None:
        self.conn.execute(sql)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql).fetchall()

    def close(self) -> None:
        self.conn.close()


class MySqlSession:
    def __init__(self, conn: pymysql.Connection):
        self.conn = conn
        self.cursor = conn.cursor()

    def execute(self, sql: str) -> None:
        self.cursor.execute(sql)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        self.cursor.execute(sql)
        return list(self.cursor.fetchall())

    def close(self) -> None:
        self.conn.close()


@dataclass
class ProbeWriter:
    """One connection of the failover probe: each `write()` is an acknowledged INSERT and
    returns the instance that acknowledged it."""

    session: Session
    insert: str
    instance: str | None  # fixed for the connection's life (asked once at connect), or None:
    #                       then the INSERT itself returns it

    def write(self) -> str:
        if self.instance is not None:
            self.session.execute(self.insert)
            return self.instance
        return str(self.session.query(self.insert)[0][0])


@dataclass
class LoadRun:
    """One run of a load tool against one path."""

    rate: float  # operations per second, as the tool measured it
    operations: int
    proxy_cpu_s: float | None  # CPU the path's proxy processes used during the run


class BenchEngine(ABC):
    """What the benchmark needs to know about one engine."""

    name: ClassVar[str]  # the RDS Engine parameter
    short: ClassVar[str]  # in cluster identifiers
    port: ClassVar[int]
    ready_means: ClassVar[str]  # what a new cluster needs besides its instances being available
    client: ClassVar[str]  # the client library of the latency and failover figures
    commit_waits_for: ClassVar[str]
    load_tool: ClassVar[str]
    load_unit: ClassVar[str]
    endpoint_proxy: ClassVar[str]  # which process moves an endpoint's bytes
    failover_table: ClassVar[str]
    commit_table: ClassVar[str]
    commit_insert: ClassVar[str]
    latency_notes: ClassVar[tuple[str, ...]] = ()  # printed under the commit latency figure
    throughput_notes: ClassVar[tuple[str, ...]] = ()  # printed under the read throughput figure

    # --- sessions ----------------------------------------------------------------------------------
    @abstractmethod
    def connect(self, host: str, timeout: float = 3) -> Session: ...

    @property
    @abstractmethod
    def errors(self) -> tuple[type[BaseException], ...]:
        """What a client sees when its connection or statement fails (a failover, a refusal)."""

    @abstractmethod
    def probe_writer(self, host: str, timeout: float) -> ProbeWriter: ...

    # --- the cluster -------------------------------------------------------------------------------
    @abstractmethod
    def replicas_ready(self, engine: EngineCluster, writer: str) -> bool:
        """Past every instance being available: is the writer's replication all there?"""

    # --- read throughput ---------------------------------------------------------------------------
    def proxy_pids(self, fabric_ping: dict[str, Any]) -> tuple[int, ...]:
        """The processes that carry this engine's client-endpoint bytes: the fabric and its C pump."""
        pump = fabric_ping.get("pump_pid")
        return (int(fabric_ping["pid"]),) + ((int(pump),) if pump else ())

    def prepare_load(self, direct: DbPath) -> None:
        """Set up what the load tool needs on the writer (nothing by default)."""

    @contextmanager
    def load_paths(self, em: Emulator, engine: EngineCluster, writer: str, endpoint: DbPath,
                   direct: DbPath) -> Iterator[dict[str, DbPath]]:
        """The paths to measure; engines may add a yardstick (a connection pooler)."""
        yield {"endpoint": endpoint, "direct": direct}

    @abstractmethod
    def load_run(self, path: DbPath, seconds: int) -> LoadRun: ...

    @abstractmethod
    def tools(self) -> dict[str, str]:
        """Versions of the programs and client libraries this engine's figures depend on."""


# --------------------------------------------------------------------------- aurora-postgresql


class Postgres(BenchEngine):
    name = "aurora-postgresql"
    short = "pg"
    port = 5432
    ready_means = "6 storage nodes streaming"
    client = f"psycopg {psycopg.__version__} (libpq)"
    commit_waits_for = "4-of-6 storage quorum"
    load_tool = "pgbench -S -M simple"
    load_unit = "tps"
    endpoint_proxy = "fabric + C pump"
    failover_table = ("CREATE TABLE IF NOT EXISTS bench_failover (id bigserial PRIMARY KEY, "
                      "at timestamptz DEFAULT clock_timestamp())")
    commit_table = "CREATE TABLE IF NOT EXISTS bench_commit (id bigserial PRIMARY KEY, payload int)"
    commit_insert = "INSERT INTO bench_commit (payload) VALUES (1)"
    STORAGE_NODES = 6
    PGBENCH_THREADS = 2

    def __init__(self) -> None:
        self.pgbench = find_program("pgbench", PgBinaries.find().bindir) or "pgbench"
        self.pgbouncer = pgbouncer.ensure_pgbouncer()

    def connect(self, host: str, timeout: float = 3) -> Session:
        # libpq treats a connect timeout under 2 s as 2 s.
        return PgSession(psycopg.connect(host=host, port=self.port, user=USER, password=PASSWORD, dbname=DATABASE,
                                         autocommit=True, connect_timeout=max(1, round(timeout))))

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        return (psycopg.Error,)

    def probe_writer(self, host: str, timeout: float) -> ProbeWriter:
        # The engine is named after its instance, so the INSERT itself says who took it.
        return ProbeWriter(self.connect(host, timeout), "INSERT INTO bench_failover DEFAULT VALUES "
                           "RETURNING current_setting('cluster_name')", instance=None)

    def replicas_ready(self, engine: EngineCluster, writer: str) -> bool:
        """The writer streams to every storage node (RDS shows none, so the engine is asked)."""
        assert isinstance(engine, PgCluster)
        try:
            with engine.admin(engine.instances[writer], timeout=2) as conn:
                row = conn.execute("SELECT count(*) FROM pg_stat_replication "
                                   "WHERE application_name LIKE 'sn\\_%' AND state = 'streaming'").fetchone()
        except psycopg.Error:
            return False
        return row is not None and int(row[0]) >= self.STORAGE_NODES

    def _pgbench(self, path: DbPath, args: list[str], timeout: float) -> str:
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        done = subprocess.run([self.pgbench, "-h", path.host, "-p", str(path.port), "-U", USER, *args, DATABASE],
                              env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"pgbench {' '.join(args)} against {path.host}:{path.port} failed:\n"
                               f"{done.stderr[-2000:]}")
        return done.stdout

    def prepare_load(self, direct: DbPath) -> None:
        progress("pgbench: initialising scale 1 through the writer")
        self._pgbench(direct, ["-i", "-s", "1", "-q"], timeout=300)

    @contextmanager
    def load_paths(self, em: Emulator, engine: EngineCluster, writer: str, endpoint: DbPath,
                   direct: DbPath) -> Iterator[dict[str, DbPath]]:
        """The endpoint and the engine, and pgbouncer in front of the engine as the yardstick."""
        paths = {"endpoint": endpoint, "direct": direct}
        if self.pgbouncer is None:
            yield paths
            return
        assert isinstance(engine, PgCluster)
        secret = pgbouncer.scram_secret(engine, writer, USER)
        with pgbouncer.pgbouncer(em, self.pgbouncer, direct.host, direct.port, DATABASE, USER, secret) as bouncer:
            yield {**paths, "pgbouncer": bouncer}

    def load_run(self, path: DbPath, seconds: int) -> LoadRun:
        """Read-only point selects: the workload where a proxy's per-message cost shows most."""
        cpu_before = path.proxy_cpu_seconds()
        out = self._pgbench(path, ["-S", "-n", "-M", "simple", "-T", str(seconds), "-c", str(LOAD_CLIENTS),
                                   "-j", str(self.PGBENCH_THREADS)], timeout=seconds + 60)
        cpu = path.proxy_cpu_seconds() - cpu_before if path.proxy_pids else None
        return LoadRun(*parse_pgbench(out), proxy_cpu_s=cpu)

    def tools(self) -> dict[str, str]:
        return {"pgbench": program_version(self.pgbench), "pgbouncer": program_version(self.pgbouncer),
                "postgres client": self.client}


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


# --------------------------------------------------------------------------- aurora-mysql


class MySql(BenchEngine):
    name = "aurora-mysql"
    short = "my"
    port = 3306
    ready_means = "2 readers attached semi-sync"
    client = f"PyMySQL {pymysql.__version__} (pure Python, TLS off)"
    commit_waits_for = "semi-sync ack of a reader"
    load_tool = "mariadb-slap 'SELECT 1'"
    load_unit = "q/s"
    endpoint_proxy = "fabric + C pump (Aurora statements: Python)"
    failover_table = ("CREATE TABLE IF NOT EXISTS bench_failover (id bigint AUTO_INCREMENT PRIMARY KEY, "
                      "who varchar(64), at timestamp(6) DEFAULT current_timestamp(6))")
    commit_table = "CREATE TABLE IF NOT EXISTS bench_commit (id bigint AUTO_INCREMENT PRIMARY KEY, payload int)"
    commit_insert = "INSERT INTO bench_commit (payload) VALUES (1)"
    latency_notes = ("(aurora-mysql: PyMySQL is pure Python; its own per-statement cost is in both paths alike)",)
    throughput_notes = (
        "aurora-mysql client endpoints are on the C pump, which hands a connection to Python at its first",
        "query that mentions Aurora's variables, views or fault-injection grammar (mariadb-slap's SELECT 1 never does).",
    )
    SLAP_QUERY = "SELECT 1"
    CALIBRATION_QUERIES = 4000

    def __init__(self) -> None:
        self.slap = find_program("mariadb-slap") or find_program("mysqlslap")
        self.queries_per_run: dict[DbPath, int] = {}  # from each path's calibration run

    def connect(self, host: str, timeout: float = 3) -> Session:
        # TLS off: the emulator offers none, and PyMySQL's default ("preferred") builds an
        # SSLContext on every connect, loading the system's CA bundle: ~40 ms of CPU (and of the
        # GIL the in-process emulator needs) per reconnect, which the failover figure would count.
        return MySqlSession(pymysql.connect(host=host, port=self.port, user=USER, password=PASSWORD,
                                            database=DATABASE, autocommit=True, connect_timeout=timeout,
                                            ssl_disabled=True))

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        return (pymysql.MySQLError, OSError)

    def probe_writer(self, host: str, timeout: float) -> ProbeWriter:
        """A connection stays on one instance, so asking once which (the fabric answers
        @@aurora_server_id for the instance it reached) names every write it acknowledges."""
        session = self.connect(host, timeout)
        try:
            instance = str(session.query("SELECT @@aurora_server_id")[0][0])
        except BaseException:
            session.close()
            raise
        return ProbeWriter(session, "INSERT INTO bench_failover (who) VALUES (@@aurora_server_id)", instance)

    def replicas_ready(self, engine: EngineCluster, writer: str) -> bool:
        """Every reader is attached to the writer as a semi-synchronous replica: a commit then
        waits for one of them, as it will for the rest of the benchmark. Asked as the master user
        on the writer's engine address (status variables need no privilege): the engine's admin
        connection pays PyMySQL's per-connect TLS set-up, tens of ms on every poll."""
        assert isinstance(engine, MariaDbCluster)
        try:
            session = self.connect(engine.instances[writer].host, timeout=2)
        except self.errors:
            return False
        try:
            rows = session.query("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'")
        except self.errors:
            return False
        finally:
            session.close()
        return bool(rows) and int(rows[0][1]) >= READERS

    def _slap(self, path: DbPath, queries: int) -> float:
        """Seconds mariadb-slap took for `queries` trivial selects over LOAD_CLIENTS connections."""
        if self.slap is None:
            raise FileNotFoundError("mariadb-slap not found (Debian package mariadb-client)")
        env = {**os.environ, "MYSQL_PWD": PASSWORD}  # never a password on a command line
        argv = [self.slap, "--no-defaults", f"--host={path.host}", f"--port={path.port}", "--protocol=tcp",
                f"--user={USER}", f"--create-schema={DATABASE}", "--no-drop", f"--query={self.SLAP_QUERY}",
                f"--concurrency={LOAD_CLIENTS}", "--iterations=1", f"--number-of-queries={queries}"]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        found = re.search(r"Average number of seconds to run all queries: ([\d.]+) seconds", done.stdout)
        if done.returncode != 0 or found is None:
            raise RuntimeError(f"mariadb-slap against {path.host}:{path.port} failed:\n"
                               f"{(done.stderr or done.stdout)[-2000:]}")
        return float(found.group(1))

    def load_run(self, path: DbPath, seconds: int) -> LoadRun:
        """mariadb-slap runs a number of queries, not a duration: a first, short run on each path
        (also its warm-up) sets how many take about `seconds` there."""
        if path not in self.queries_per_run:
            rate = self.CALIBRATION_QUERIES / max(self._slap(path, self.CALIBRATION_QUERIES), 1e-3)
            self.queries_per_run[path] = max(self.CALIBRATION_QUERIES, int(round(rate * seconds, -3)))
        queries = self.queries_per_run[path]
        cpu_before = path.proxy_cpu_seconds()
        elapsed = self._slap(path, queries)
        cpu = path.proxy_cpu_seconds() - cpu_before if path.proxy_pids else None
        return LoadRun(rate=queries / max(elapsed, 1e-3), operations=queries, proxy_cpu_s=cpu)

    def tools(self) -> dict[str, str]:
        return {"mariadb-slap": program_version(self.slap), "mysql client": self.client}


ENGINES: dict[str, type[BenchEngine]] = {kind.name: kind for kind in (Postgres, MySql)}
