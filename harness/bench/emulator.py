"""How fast the Aurora emulator is, for aurora-postgresql and aurora-mysql side by side in one run.

    python -m harness.bench.emulator [--json PATH] [--engines ENGINE,...]   (what `make bench` runs)

Four figures for each engine, each printed as a two-column comparison, on whatever machine this
runs on:

1. cluster creation: CreateDBCluster until a writer and 2 readers are available and replicating
   (aurora-postgresql: the writer streams to its 6 storage nodes; aurora-mysql: both readers
   are attached to the writer as semi-synchronous replicas);
2. failover to first write: FailoverDBCluster until an INSERT through the cluster endpoint is
   acknowledged by the new writer (DNS TTL 0, a client that reconnects and retries);
3. commit latency of single-row autocommit INSERTs, cluster endpoint vs the writer's engine;
4. read throughput, cluster endpoint vs the engine directly (aurora-postgresql: pgbench -S, and
   pgbouncer as the yardstick; aurora-mysql: mariadb-slap with SELECT 1).

Why side by side: the box is shared and noisy, so only figures taken in the same run, with the
paths interleaved, say anything about the emulator's overhead (the fabric proxy in particular).
The engines take turns too: creations and failovers alternate between them. What differs between
the engines is described once, in `harness.bench.engines`; the benchmarks here are written once.
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
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.bench.common import DbPath, Summary, progress, rotated, summarize, wait_for
from harness.bench.engines import (
    DATABASE,
    ENGINES,
    LOAD_CLIENTS,
    PASSWORD,
    READERS,
    USER,
    BenchEngine,
    LoadRun,
    ProbeWriter,
    Session,
)
from harness.emulator.emulator import DEFAULT_REGION, Emulator
from harness.emulator.engines.base import EngineCluster

NET = 77  # 127.77.x.y: apart from the daemon (42), the tests (43) and other people's runs
INSTANCE_CLASS = "db.r6g.large"
POLL_S = 0.05  # describe_db_instances polling, as the brief for the creation figure says
RETRY_S = 0.01  # the failover client retries this often
CONNECT_TIMEOUT_S = 1

TARGET_CREATION_S = 3.0
TARGET_FAILOVER_S = 1.0

log = logging.getLogger("harness.bench")


# --------------------------------------------------------------------------- results


@dataclass
class CreationResult:
    cold_s: float  # the warm-up cluster: may include building the engine's template data directory
    warm: Summary
    milestones: list[dict[str, float]]  # per warm repetition: writer, reader-1, reader-2, ready


@dataclass
class FailoverResult:
    first_write: Summary  # FailoverDBCluster call -> first INSERT acknowledged by the new writer
    write_gap: Summary  # last INSERT the old writer acknowledged -> first on the new writer
    settle: Summary  # call -> cluster and every instance available again (old writer rejoined)


@dataclass
class LatencyResult:
    endpoint: Summary  # seconds per commit through the cluster endpoint (fabric proxy)
    direct: Summary  # seconds per commit straight to the writer's engine


@dataclass
class ThroughputResult:
    unit: str  # tps (pgbench transactions) or q/s (mariadb-slap queries)
    rates: dict[str, Summary]  # path -> rate over the rounds
    ratios: dict[str, float]  # median over rounds of (path rate / direct rate in the same round)
    proxy_us_per_op: dict[str, float]  # median CPU microseconds the path's proxy spent per operation
    seconds: int
    rounds: int


@dataclass
class EngineResults:
    """One engine's figures; a figure that failed is None and says why in `errors`, and the
    engine's later figures are skipped (its cluster may be in any state)."""

    engine: str
    creation: CreationResult | None = None
    failover: FailoverResult | None = None
    latency: LatencyResult | None = None
    throughput: ThroughputResult | None = None
    errors: list[str] = field(default_factory=list)


@contextmanager
def recorded(results: EngineResults, figure: str) -> Iterator[None]:
    """A failure of one engine's figure is reported and does not stop the other engine."""
    try:
        yield
    except Exception as exc:
        log.debug("%s %s failed", results.engine, figure, exc_info=True)
        results.errors.append(f"{figure}: {type(exc).__name__}: {exc}")
        progress(f"{results.engine}: {figure} FAILED ({type(exc).__name__}: {exc}); its later figures are skipped")


# --------------------------------------------------------------------------- clusters


@dataclass
class BenchCluster:
    """A cluster this benchmark made: its engine, name and instances' names."""

    kind: BenchEngine
    identifier: str
    instances: list[str]


def request_cluster(rds: Any, kind: BenchEngine, identifier: str) -> BenchCluster:
    """CreateDBCluster and three CreateDBInstance calls; the first to start becomes the writer."""
    rds.create_db_cluster(DBClusterIdentifier=identifier, Engine=kind.name, MasterUsername=USER,
                          MasterUserPassword=PASSWORD, DatabaseName=DATABASE)
    names = [f"{identifier}-{index}" for index in range(1, READERS + 2)]
    for name in names:
        rds.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier=identifier, Engine=kind.name,
                               DBInstanceClass=INSTANCE_CLASS)
    return BenchCluster(kind, identifier, names)


def instance_statuses(rds: Any, cluster: BenchCluster) -> dict[str, str]:
    answer = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [cluster.identifier]}])
    return {i["DBInstanceIdentifier"]: i["DBInstanceStatus"] for i in answer["DBInstances"]}


def describe_cluster(rds: Any, cluster: BenchCluster) -> dict[str, Any]:
    described: dict[str, Any] = rds.describe_db_clusters(DBClusterIdentifier=cluster.identifier)["DBClusters"][0]
    return described


def writer_of(rds: Any, cluster: BenchCluster) -> str:
    members = describe_cluster(rds, cluster)["DBClusterMembers"]
    return str(next(m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"]))


def engine_of(em: Emulator, cluster: BenchCluster) -> EngineCluster:
    """The engine side of a cluster, for what RDS has no API for (replication, engine hosts)."""
    engine = em.backend.region(DEFAULT_REGION).runtimes[cluster.identifier].engine
    assert isinstance(engine, EngineCluster)  # the runtime types it as `object`
    return engine


def wait_until_ready(em: Emulator, rds: Any, cluster: BenchCluster, started: float,
                     timeout: float = 120.0) -> dict[str, float]:
    """Poll until every instance is available and the writer's replication is all there; return
    milestones (seconds since `started`) that show where creation time goes: the writer, each
    reader (they are cloned one after another) and the replication ("ready")."""
    milestones: dict[str, float] = {}
    statuses: dict[str, str] = {}
    deadline = started + timeout
    while time.monotonic() < deadline:
        statuses = instance_statuses(rds, cluster)
        for name, status in statuses.items():
            if status == "available" and name not in milestones:
                milestones[name] = time.monotonic() - started
            if status == "failed":
                raise RuntimeError(f"{name} failed to start; see the emulator's engine logs")
        if len(milestones) == len(cluster.instances):
            if cluster.kind.replicas_ready(engine_of(em, cluster), writer_of(rds, cluster)):
                milestones["ready"] = time.monotonic() - started
                return milestones
        time.sleep(POLL_S)
    raise TimeoutError(f"{cluster.identifier} was not ready within {timeout:.0f} s: {statuses}")


def settled(rds: Any, cluster: BenchCluster) -> bool:
    """Cluster and every instance available: no operation in flight. An instance that failed
    will not come back by itself, so that raises rather than waiting out a timeout."""
    if describe_cluster(rds, cluster)["Status"] != "available":
        return False
    statuses = instance_statuses(rds, cluster)
    failed = [name for name, status in statuses.items() if status == "failed"]
    if failed:
        raise RuntimeError(f"{', '.join(failed)} of {cluster.identifier} failed; see the emulator's log above")
    return len(statuses) == len(cluster.instances) and all(s == "available" for s in statuses.values())


def wait_settled(rds: Any, cluster: BenchCluster, why: str = "") -> None:
    wait_for(lambda: settled(rds, cluster), 120, f"{cluster.identifier} to settle{why}")


def delete_cluster(em: Emulator, rds: Any, cluster: BenchCluster) -> None:
    """Readers first (deleting a writer that has readers would fail over), then the writer,
    then the cluster; waits for the emulator's delete job so that the next cluster, which
    reuses the address slot, cannot have its listeners removed by this one's teardown."""
    wait_settled(rds, cluster, " before deletion")
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


def create_and_time(em: Emulator, rds: Any, kind: BenchEngine, identifier: str) -> tuple[BenchCluster,
                                                                                          dict[str, float]]:
    """One timed creation; the figure is milestones['total'] (everything up)."""
    started = time.monotonic()
    cluster = request_cluster(rds, kind, identifier)
    milestones = wait_until_ready(em, rds, cluster, started)
    writer = writer_of(rds, cluster)
    readers = sorted(milestones[n] for n in cluster.instances if n != writer)
    ordered = {"writer": milestones[writer], **{f"reader-{i + 1}": t for i, t in enumerate(readers)},
               "ready": milestones["ready"], "total": max(milestones.values())}
    return cluster, ordered


def bench_creation(em: Emulator, rds: Any, kinds: list[BenchEngine], results: dict[str, EngineResults],
                   repetitions: int) -> dict[str, BenchCluster]:
    """A cold warm-up cluster per engine, then `repetitions` timed creations, the engines taking
    turns; each engine's last cluster is kept for the other figures."""
    cold: dict[str, float] = {}
    runs: dict[str, list[dict[str, float]]] = {kind.name: [] for kind in kinds}
    kept: dict[str, BenchCluster] = {}
    for rep in range(0, repetitions + 1):
        for kind in kinds:
            if results[kind.name].errors:
                continue
            with recorded(results[kind.name], "cluster creation"):
                if rep == 0:
                    progress(f"{kind.name}: warm-up cluster (may build the engine's template data directory)")
                cluster, milestones = create_and_time(em, rds, kind, f"bench-{kind.short}-{rep or 'warmup'}")
                if rep == 0:
                    cold[kind.name] = milestones["total"]
                else:
                    runs[kind.name].append(milestones)
                    progress(f"{kind.name}: cluster creation {rep}/{repetitions}: {milestones['total']:.2f} s")
                if rep < repetitions:
                    delete_cluster(em, rds, cluster)
                else:
                    kept[kind.name] = cluster
    for kind in kinds:
        if kind.name in kept:
            results[kind.name].creation = CreationResult(
                cold_s=cold[kind.name], warm=summarize([r["total"] for r in runs[kind.name]]),
                milestones=runs[kind.name])
    return kept


# --------------------------------------------------------------------------- 2. failover


class WriteProbe:
    """An application writing through the cluster endpoint: INSERT, and on any error reconnect
    (1 s connect timeout) and retry every RETRY_S. Each acknowledgement records which instance
    took it, so a write the old writer acknowledged before it was fenced is not mistaken for
    the first write after the failover."""

    def __init__(self, kind: BenchEngine, host: str):
        self.kind, self.host = kind, host
        self.acks: list[tuple[float, str]] = []  # (monotonic time, instance that acknowledged)
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"bench-write-probe-{kind.short}", daemon=True)

    def _run(self) -> None:
        writer: ProbeWriter | None = None
        while not self._stop.is_set():
            try:
                if writer is None:
                    writer = self.kind.probe_writer(self.host, CONNECT_TIMEOUT_S)
                instance = writer.write()
                self.acks.append((time.monotonic(), instance))
            except self.kind.errors:
                self.errors += 1
                if writer is not None:
                    close_quietly(writer.session, self.kind)
                writer = None
                time.sleep(RETRY_S)
        if writer is not None:
            close_quietly(writer.session, self.kind)

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


def close_quietly(session: Session, kind: BenchEngine) -> None:
    try:
        session.close()
    except kind.errors:
        pass


def fail_over_once(rds: Any, cluster: BenchCluster) -> tuple[float, float, float]:
    """One measured failover: (first write, write gap, settle), in seconds."""
    wait_settled(rds, cluster)
    old_writer = writer_of(rds, cluster)
    with WriteProbe(cluster.kind, describe_cluster(rds, cluster)["Endpoint"]) as probe:
        started = time.monotonic()
        rds.failover_db_cluster(DBClusterIdentifier=cluster.identifier)
        wait_for(lambda: probe.first_ack_not_from(old_writer, started) is not None, 60,
                 "the first write on the new writer", interval=0.002)
    first = probe.first_ack_not_from(old_writer, started)
    last_old = probe.last_ack_from(old_writer)
    assert first is not None and last_old is not None
    wait_settled(rds, cluster, " after failover")
    return first - started, first - last_old, time.monotonic() - started


def bench_failover(rds: Any, clusters: dict[str, BenchCluster], results: dict[str, EngineResults],
                   repetitions: int) -> None:
    """`repetitions` failovers per engine, the engines taking turns."""
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in clusters}
    for name, cluster in clusters.items():
        with recorded(results[name], "failover"):
            session = cluster.kind.connect(describe_cluster(rds, cluster)["Endpoint"])
            try:
                session.execute(cluster.kind.failover_table)
            finally:
                session.close()
    for rep in range(1, repetitions + 1):
        for name, cluster in clusters.items():
            if results[name].errors:
                continue
            with recorded(results[name], "failover"):
                runs[name].append(fail_over_once(rds, cluster))
                first, _, settle = runs[name][-1]
                progress(f"{name}: failover {rep}/{repetitions}: first write after {first:.3f} s, "
                         f"settled after {settle:.1f} s")
    for name, series in runs.items():
        if series and not results[name].errors:
            results[name].failover = FailoverResult(*(summarize([run[i] for run in series]) for i in range(3)))


# --------------------------------------------------------------------------- 3. commit latency


def timed_inserts(session: Session, insert: str, count: int) -> list[float]:
    """Seconds per single-row autocommit INSERT; each one waits for the engine's replication
    acknowledgement (PostgreSQL: the storage quorum; MariaDB: a semi-sync reader)."""
    latencies = []
    for _ in range(count):
        begin = time.perf_counter()
        session.execute(insert)
        latencies.append(time.perf_counter() - begin)
    return latencies


def bench_commit_latency(kind: BenchEngine, endpoint_host: str, engine_host: str, commits: int) -> LatencyResult:
    """Alternate blocks of 100 on the two paths (and which goes first) so both see the same machine."""
    blocks = max(2, commits // 100)
    samples: dict[str, list[float]] = {"endpoint": [], "direct": []}
    sessions = {"endpoint": kind.connect(endpoint_host), "direct": kind.connect(engine_host)}
    try:
        sessions["endpoint"].execute(kind.commit_table)
        for session in sessions.values():
            timed_inserts(session, kind.commit_insert, 20)  # warm: caches, the table's first pages
        for block in range(blocks):
            for path in rotated(list(sessions), block):
                samples[path] += timed_inserts(sessions[path], kind.commit_insert, commits // blocks)
    finally:
        for session in sessions.values():
            close_quietly(session, kind)
    return LatencyResult(endpoint=summarize(samples["endpoint"], keep_values=False),
                         direct=summarize(samples["direct"], keep_values=False))


# --------------------------------------------------------------------------- 4. read throughput


def bench_throughput(kind: BenchEngine, paths: dict[str, DbPath], seconds: int, rounds: int) -> ThroughputResult:
    """The paths take turns, the order rotating each round, so they share the machine's noise;
    ratios are taken within a round for the same reason."""
    runs: dict[str, list[LoadRun]] = {name: [] for name in paths}
    for round_ in range(rounds):
        for name in rotated(list(paths), round_):
            runs[name].append(kind.load_run(paths[name], seconds))
            progress(f"{kind.name}: {kind.load_tool} round {round_ + 1}/{rounds} {name}: "
                     f"{runs[name][-1].rate:.0f} {kind.load_unit}")
    ratios = {name: statistics.median(r.rate / d.rate for r, d in zip(runs[name], runs["direct"]))
              for name in paths if name != "direct"}
    cpu = {name: statistics.median(r.proxy_cpu_s / r.operations * 1e6 for r in rs if r.proxy_cpu_s is not None)
           for name, rs in runs.items() if rs[0].proxy_cpu_s is not None}
    return ThroughputResult(kind.load_unit, {name: summarize([r.rate for r in rs]) for name, rs in runs.items()},
                            ratios, cpu, seconds, rounds)


# --------------------------------------------------------------------------- one engine's data-plane figures


def bench_data_plane(em: Emulator, rds: Any, cluster: BenchCluster, results: EngineResults,
                     args: argparse.Namespace) -> None:
    """Commit latency, then read throughput, on the engine's current writer."""
    kind = cluster.kind
    wait_settled(rds, cluster)
    writer = writer_of(rds, cluster)
    endpoint_host = describe_cluster(rds, cluster)["Endpoint"]
    engine = engine_of(em, cluster)
    engine_host = engine.instances[writer].host
    with recorded(results, "commit latency"):
        progress(f"{kind.name}: commit latency, {args.commits} INSERTs per path, interleaved")
        results.latency = bench_commit_latency(kind, endpoint_host, engine_host, args.commits)
    if results.errors:
        return
    with recorded(results, "read throughput"):
        direct = DbPath(engine_host, kind.port)
        kind.prepare_load(direct)
        # The fabric proxies every endpoint and replication link; read-only traffic is nearly all of it.
        endpoint = DbPath(endpoint_host, kind.port, proxy_pids=kind.proxy_pids(em.fabric.request("ping")))
        with kind.load_paths(em, engine, writer, endpoint, direct) as paths:
            results.throughput = bench_throughput(kind, paths, args.load_seconds, args.load_rounds)


# --------------------------------------------------------------------------- report


def machine_context(em: Emulator, kinds: list[BenchEngine]) -> dict[str, Any]:
    """What the figures depend on, and how busy the shared box was when we started."""
    versions = em.engine_versions()
    context: dict[str, Any] = {
        "cores": os.cpu_count(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        **{f"engine {kind.name}": versions[kind.name] for kind in kinds},
    }
    for kind in kinds:
        context.update(kind.tools())
    context.update({
        "python": platform.python_version(),
        "fabric_event_loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "platform": platform.platform(),
    })
    return context


LABEL_WIDTH, COLUMN_WIDTH = 36, 30
NOT_MEASURED = "-"


def row(label: str, cells: list[str]) -> str:
    return (f"  {label:<{LABEL_WIDTH}}" + "".join(f"{cell:<{COLUMN_WIDTH}}" for cell in cells)).rstrip()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def spread(s: Summary, digits: int) -> str:
    """median [min - max] in seconds."""
    return f"{s.median:.{digits}f} s [{s.min:.{digits}f} - {s.max:.{digits}f}]"


def figure_rows(engines: list[EngineResults], attribute: str,
                rows: list[tuple[str, Callable[[Any], str]]]) -> list[str]:
    """One line per row: the label, then each engine's cell (or '-' where the figure is missing)."""
    figures = [getattr(e, attribute) for e in engines]
    return [row(label, [cell(f) if f is not None else NOT_MEASURED for f in figures]) for label, cell in rows]


def render(machine: dict[str, Any], engines: list[EngineResults], kinds: dict[str, BenchEngine],
           args: argparse.Namespace) -> str:
    """The human-readable report: one two-column block per figure, then the verdicts per engine."""
    lines = ["", "Aurora emulator benchmark", "=" * (4 + LABEL_WIDTH + COLUMN_WIDTH * len(engines))]
    lines += [f"  {key:<{LABEL_WIDTH - 2}}  {value}" for key, value in machine.items()]
    column = [kinds[e.engine] for e in engines]
    header = row("", [e.engine for e in engines])
    for block in (render_creation, render_failover, render_latency, render_throughput):
        lines += ["", *block(engines, column, header, args)]
    lines += ["", "Verdicts (figures from this run, not assertions)"]
    for engine in engines:
        lines.append(f"  {engine.engine}")
        lines += [f"    {v}" for v in verdicts(engine)]
    return "\n".join(lines)


def notes(column: list[BenchEngine], attribute: str) -> list[str]:
    """An engine's remarks on a figure, as indented lines under it."""
    return [f"  {line}" for kind in column for line in getattr(kind, attribute)]


def render_creation(engines: list[EngineResults], column: list[BenchEngine], header: str,
                    args: argparse.Namespace) -> list[str]:
    milestones = (("writer", "writer available"), ("reader-1", "1st reader available"),
                  ("reader-2", "2nd reader available"), ("ready", "ready"))
    return [f"1. Cluster creation: writer + {READERS} readers available and replicating "
            f"(warm: {args.creation_runs} runs after a cold warm-up)", header,
            row("ready: instances available, and", [k.ready_means for k in column]),
            *figure_rows(engines, "creation", [
                ("warm-up (cold) cluster", lambda c: f"{c.cold_s:.2f} s"),
                ("warm median [min - max]", lambda c: spread(c.warm, 2)),
                ("milestones, median of warm runs:", lambda c: ""),
                *[(f"  {label}", milestone_cell(key)) for key, label in milestones],
                ("warm runs", lambda c: "  ".join(f"{r['total']:.2f}" for r in c.milestones) + " s"),
            ])]


def render_failover(engines: list[EngineResults], column: list[BenchEngine], header: str,
                    args: argparse.Namespace) -> list[str]:
    return [f"2. Failover to first write (DNS TTL 0; median [min - max] of {args.failovers} per engine)", header,
            row("probe client", [k.client for k in column]),
            *figure_rows(engines, "failover", [
                ("FailoverDBCluster -> first write", lambda f: spread(f.first_write, 3)),
                ("last old-writer ack -> first new", lambda f: spread(f.write_gap, 3)),
                ("call -> all instances available", lambda f: spread(f.settle, 2)),
            ])]


def render_latency(engines: list[EngineResults], column: list[BenchEngine], header: str,
                   args: argparse.Namespace) -> list[str]:
    def overhead(lat: LatencyResult) -> str:
        return (f"{(lat.endpoint.median - lat.direct.median) * 1000:+.3f} / "
                f"{(lat.endpoint.mean - lat.direct.mean) * 1000:+.3f} ms")

    return [f"3. Commit latency, single-row autocommit INSERT (ms p50 / p95 / p99; {args.commits} per path, "
            f"interleaved)", header,
            row("client", [k.client for k in column]),
            row("a commit waits for (both paths)", [k.commit_waits_for for k in column]),
            *figure_rows(engines, "latency", [
                ("cluster endpoint", lambda lat: latency_cell(lat.endpoint)),
                ("writer engine direct", lambda lat: latency_cell(lat.direct)),
                ("endpoint overhead p50 / mean", overhead),
            ]),
            *notes(column, "latency_notes")]


def render_throughput(engines: list[EngineResults], column: list[BenchEngine], header: str,
                      args: argparse.Namespace) -> list[str]:
    paths = list(dict.fromkeys(p for e in engines if e.throughput for p in e.throughput.rates))
    return [f"4. Read throughput on the writer, {LOAD_CLIENTS} clients, {args.load_seconds} s x "
            f"{args.load_rounds} rounds, paths alternating", header,
            row("tool", [k.load_tool for k in column]),
            *figure_rows(engines, "throughput", [(path, rate_cell(path)) for path in paths] + [
                (f"proxy CPU per op, {path}", cpu_cell(path)) for path in paths if path != "direct"]),
            row("endpoint proxy", [k.endpoint_proxy for k in column]),
            "  (rate: median over rounds, x: median of same-round ratios to direct;",
            "   proxy CPU: the processes carrying that path's bytes, per query or transaction)",
            *notes(column, "throughput_notes")]


def milestone_cell(key: str) -> Callable[[CreationResult], str]:
    return lambda c: f"{statistics.median(r[key] for r in c.milestones):.2f} s"


def latency_cell(s: Summary) -> str:
    return f"{ms(s.median)} / {ms(s.p95)} / {ms(s.p99)}"


def rate_cell(path: str) -> Callable[[ThroughputResult], str]:
    def cell(t: ThroughputResult) -> str:
        if path not in t.rates:
            return NOT_MEASURED
        ratio = f"  {t.ratios[path]:.2f}x" if path in t.ratios else ""
        return f"{t.rates[path].median:.0f} {t.unit}{ratio}"
    return cell


def cpu_cell(path: str) -> Callable[[ThroughputResult], str]:
    return lambda t: f"{t.proxy_us_per_op[path]:.1f} us" if path in t.proxy_us_per_op else NOT_MEASURED


def verdicts(results: EngineResults) -> list[str]:
    out = []
    if results.creation:
        median = results.creation.warm.median
        out.append(f"cluster creation <= {TARGET_CREATION_S:g} s (warm median): "
                   f"{'met' if median <= TARGET_CREATION_S else 'NOT met'} ({median:.2f} s)")
    if results.failover:
        first = results.failover.first_write
        out.append(f"failover to first write <= {TARGET_FAILOVER_S:g} s (median): "
                   f"{'met' if first.median <= TARGET_FAILOVER_S else 'NOT met'} "
                   f"({first.median:.3f} s; max {first.max:.3f} s)")
    throughput = results.throughput
    if throughput and "pgbouncer" in throughput.ratios:
        endpoint, bouncer = throughput.ratios["endpoint"], throughput.ratios["pgbouncer"]
        out.append(f"endpoint proxy throughput >= pgbouncer's (vs direct): "
                   f"{'met' if endpoint >= bouncer else 'NOT met'} ({endpoint:.2f}x vs {bouncer:.2f}x)")
    elif throughput and results.engine == "aurora-postgresql":
        out.append("endpoint proxy throughput >= pgbouncer's: not measured (no pgbouncer)")
    elif throughput:
        out.append(f"endpoint proxy throughput: {throughput.ratios['endpoint']:.2f}x direct "
                   f"(no target: no pooler to compare with)")
    out += [f"FAILED {error.splitlines()[0]}" for error in results.errors]
    return out or ["nothing measured"]


def to_json(machine: dict[str, Any], engines: list[EngineResults]) -> dict[str, Any]:
    return {"machine": machine, "engines": {e.engine: asdict(e) for e in engines}}


# --------------------------------------------------------------------------- main


def raise_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the finally blocks stop everything we started."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help=f"comma-separated, of {', '.join(ENGINES)} (default: both)")
    parser.add_argument("--creation-runs", type=int, default=3, help="timed creations after the warm-up")
    parser.add_argument("--failovers", type=int, default=5)
    parser.add_argument("--commits", type=int, default=2000, help="INSERTs per path")
    parser.add_argument("--load-seconds", "--pgbench-seconds", dest="load_seconds", type=int, default=5)
    parser.add_argument("--load-rounds", "--pgbench-rounds", dest="load_rounds", type=int, default=4)
    args = parser.parse_args(argv)
    args.engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    unknown = [name for name in args.engines if name not in ENGINES]
    if unknown or not args.engines:
        parser.error(f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    return args


def run(em: Emulator, args: argparse.Namespace, kinds: list[BenchEngine], engines: dict[str, EngineResults],
        machine: dict[str, Any]) -> None:
    """The four benchmarks in order, filling `engines` as they finish (a partial report survives
    a failure in a later one, or in the other engine)."""
    rds = em.client()
    machine.update(machine_context(em, kinds))
    clusters = bench_creation(em, rds, kinds, engines, args.creation_runs)
    bench_failover(rds, {name: c for name, c in clusters.items() if not engines[name].errors}, engines,
                   args.failovers)
    for name, cluster in clusters.items():
        if not engines[name].errors:
            bench_data_plane(em, rds, cluster, engines[name], args)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    raise_on_sigterm()
    state_dir = Path(tempfile.mkdtemp(prefix="gd-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    kinds = [ENGINES[name]() for name in args.engines]
    engines = {kind.name: EngineResults(kind.name) for kind in kinds}
    machine: dict[str, Any] = {}
    began = time.monotonic()
    status = 0
    try:
        with Emulator(state_dir, net=NET, dns_ttl=0) as em:
            run(em, args, kinds, engines, machine)
    except KeyboardInterrupt:
        status = 130
        progress("interrupted; the emulator and pgbouncer have been stopped")
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        if machine:
            machine["benchmark_seconds"] = round(time.monotonic() - began, 1)
            print(render(machine, list(engines.values()), {k.name: k for k in kinds}, args), flush=True)
            if args.json:
                args.json.write_text(json.dumps(to_json(machine, list(engines.values())), indent=2))
                print(f"\nJSON written to {args.json}")
    if any(e.errors for e in engines.values()) and status == 0:
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
