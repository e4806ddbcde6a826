"""Soak: many failovers (mixed with reboots and crashes) under concurrent writers, and what was lost.

    python -m harness.bench.soak [--failovers 100] [--engines aurora-postgresql aurora-mysql]
                                 [--dns-ttl 0 5] [--seed 1] [--net 79]

Per engine and DNS TTL: a cluster with a writer and two readers, four threads writing small
autocommit INSERTs through the cluster endpoint as fast as they can (each its own ledger run),
a Locust load of 8 users, and a schedule of faults at random intervals: FailoverDBCluster (most
of them, the next one requested as soon as the API accepts it, so a demoted writer may still
be rejoining), RebootDBInstance of the writer, and Aurora's crash fault-injection query. It
prints the acknowledged and lost writes (the ledger read back at the end), failover-to-first-
write p50/p99/max, every failover slower than the documented 35 s, instances left unavailable,
and processes left behind; it exits 1 on any loss, stuck failover or leak.

The same machinery with 10 back-to-back failovers is a regression test in `make test`
(tests/emulator/test_failover_back_to_back.py).
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.bench.common import percentile, progress, wait_for
from harness.dialects import dialect_for
from harness.dialects.base import Credentials

USER, PASSWORD, DATABASE = "soak", "soak-password-1", "soak"
DOCUMENTED_FAILOVER_S = 35.0  # FailoverDBCluster: "typically less than 35 seconds"
WRITERS = 4


@dataclass
class Writers:
    """Threads writing through the cluster endpoint, each its own ledger run; what was acknowledged."""

    engine: str
    host: str
    port: int
    threads: int = WRITERS
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    acknowledged: dict[str, set[int]] = field(default_factory=dict)
    last_ack: float = 0.0  # monotonic: the latest acknowledgement of any writer
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.dialect = dialect_for(self.engine)
        self.credentials = Credentials(USER, PASSWORD, DATABASE)
        conn = self.dialect.connect(self.host, self.port, self.credentials, connect_timeout=5, statement_timeout=30)
        try:
            self.dialect.create_ledger(conn)
        finally:
            conn.close()
        self.workers = [threading.Thread(target=self._write, args=(f"{self.run}-{n}",), daemon=True)
                        for n in range(self.threads)]

    def __enter__(self) -> Writers:
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for worker in self.workers:
            worker.join(30)

    def _write(self, run_id: str) -> None:
        acked = self.acknowledged.setdefault(run_id, set())
        conn, seq = None, 0
        while not self.stop.is_set():
            seq += 1
            try:
                if conn is None:
                    conn = self.dialect.connect(self.host, self.port, self.credentials, connect_timeout=1,
                                                statement_timeout=5)
                self.dialect.insert(conn, run_id, seq)
                acked.add(seq)
                self.last_ack = time.monotonic()
            except Exception:
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
                conn = None
                time.sleep(0.005)
        if conn is not None:
            conn.close()

    def count(self) -> int:
        return sum(len(seqs) for seqs in self.acknowledged.values())

    def lost(self) -> dict[str, list[int]]:
        """Acknowledged seqs the cluster no longer holds, per writer (read back through the endpoint)."""
        conn = self.dialect.connect(self.host, self.port, self.credentials, connect_timeout=5, statement_timeout=120)
        try:
            missing = {}
            for run_id, seqs in self.acknowledged.items():
                stored = self.dialect.ledger_counts(conn, run_id)
                gone = sorted(seq for seq in seqs if seq not in stored)
                if gone:
                    missing[run_id] = gone
            return missing
        finally:
            conn.close()


@dataclass
class FailoverTimes:
    to_first_write_s: list[float] = field(default_factory=list)
    slow: list[tuple[int, float]] = field(default_factory=list)  # (round, seconds) over the documented time
    stuck: list[str] = field(default_factory=list)  # what a failover, reboot or crash never got to


def writer_of(rds: Any, cluster: str) -> str | None:
    members = rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["DBClusterMembers"]
    return next((m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"]), None)


def cluster_status(rds: Any, cluster: str) -> str:
    return str(rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["Status"])


def fail_over(rds: Any, cluster: str, writers: Writers, times: FailoverTimes, round_: int,
              timeout: float = 120.0) -> None:
    """FailoverDBCluster as soon as the API takes it; returns once another instance is the writer
    and a write was acknowledged after that (the failover-to-first-write time)."""
    wait_for(lambda: cluster_status(rds, cluster) == "available", timeout, f"{cluster} available", interval=0.05)
    before = writer_of(rds, cluster)
    started = time.monotonic()
    rds.failover_db_cluster(DBClusterIdentifier=cluster)
    wait_for(lambda: writer_of(rds, cluster) not in (None, before) and cluster_status(rds, cluster) == "available",
             timeout, f"failover {round_} of {cluster} away from {before}", interval=0.05)
    switched = time.monotonic()  # the old writer is fenced by now: an acknowledgement after this is the new one's
    wait_for(lambda: writers.last_ack > switched, timeout, f"a write after failover {round_}", interval=0.005)
    took = writers.last_ack - started
    times.to_first_write_s.append(took)
    if took > DOCUMENTED_FAILOVER_S:
        times.slow.append((round_, took))


def unavailable_instances(rds: Any, cluster: str) -> dict[str, str]:
    instances = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [cluster]}])["DBInstances"]
    return {i["DBInstanceIdentifier"]: i["DBInstanceStatus"] for i in instances if i["DBInstanceStatus"] != "available"}


# --------------------------------------------------------------------------- the long soak


@dataclass
class SoakResult:
    engine: str
    dns_ttl: float
    failovers: int
    reboots: int
    crashes: int
    acknowledged: int
    lost: int
    times: FailoverTimes
    left_unavailable: dict[str, str]
    leftover_processes: int

    @property
    def ok(self) -> bool:
        return not (self.lost or self.times.slow or self.times.stuck or self.left_unavailable
                    or self.leftover_processes)


def soak(em: Any, engine: str, dns_ttl: float, failovers: int, rng: random.Random) -> SoakResult:
    from harness.load.runner import Distribution, LoadRun, LoadSpec
    from harness.load.settings import LoadSettings
    from harness.timeline import Timeline

    rds = em.client()
    name = f"soak-{'pg' if engine == 'aurora-postgresql' else 'my'}-{int(dns_ttl)}"
    rds.create_db_cluster(DBClusterIdentifier=name, Engine=engine, MasterUsername=USER, MasterUserPassword=PASSWORD,
                          DatabaseName=DATABASE)
    for n in range(3):
        rds.create_db_instance(DBInstanceIdentifier=f"{name}-{n + 1}", DBClusterIdentifier=name, Engine=engine,
                               DBInstanceClass="db.r6g.large", PromotionTier=n)
    wait_for(lambda: not unavailable_instances(rds, name) and cluster_status(rds, name) == "available"
             and len(rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [name]}])["DBInstances"])
             == 3, 600, f"{name} settled", interval=0.2)
    em.controls.set_dns_ttl(cluster=name, seconds=dns_ttl)
    described = rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]
    scratch = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    timeline = Timeline(scratch / "timeline.jsonl")
    settings = LoadSettings(engine, described["Endpoint"], described["Port"], described["ReaderEndpoint"],
                            described["Port"], USER, DATABASE, "resilient", uuid.uuid4().hex[:10])
    load = LoadRun(LoadSpec("oltp", 8, "resilient"), settings, PASSWORD, scratch / "load", timeline, Distribution())
    times, reboots, crashes = FailoverTimes(), 0, 0
    try:
        load.start()
        with Writers(engine, described["Endpoint"], described["Port"]) as writers:
            done = 0
            try:  # a failover, reboot or crash that never completes ends this run, as a failure
                while done < failovers:
                    time.sleep(rng.uniform(0.0, 3.0))
                    roll = rng.random()
                    if roll < 0.85:
                        done += 1
                        fail_over(rds, name, writers, times, done)
                        if done % 10 == 0:
                            progress(f"{name}: {done} failovers, {writers.count()} writes acknowledged")
                    elif roll < 0.93:
                        reboots += 1
                        wait_for(lambda: cluster_status(rds, name) == "available"
                                 and not unavailable_instances(rds, name),
                                 300, f"{name} settled before a reboot", interval=0.05)
                        rds.reboot_db_instance(DBInstanceIdentifier=writer_of(rds, name))
                    else:
                        crashes += 1
                        crash_writer(em, engine, name, rds)
            except TimeoutError as exc:
                times.stuck.append(str(exc))
                progress(f"{name}: {exc}")
                failovers = done
            wait_for(lambda: cluster_status(rds, name) == "available" and not unavailable_instances(rds, name), 300,
                     f"{name} settled at the end", interval=0.2)
        lost = writers.lost()
        left = unavailable_instances(rds, name)
    finally:
        load.stop()
        timeline.close()
        shutil.rmtree(scratch, ignore_errors=True)
    if not times.stuck:  # a stuck cluster's logs are kept (main) before the emulator removes it
        delete_cluster(rds, name)
    return SoakResult(engine, dns_ttl, failovers, reboots, crashes, writers.count(),
                      sum(len(v) for v in lost.values()), times, left, 0)


def delete_cluster(rds: Any, name: str) -> None:
    """The cluster and its instances deleted, so the next run's WAL does not pile on top of its own."""
    for instance in rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [name]}])["DBInstances"]:
        rds.delete_db_instance(DBInstanceIdentifier=instance["DBInstanceIdentifier"], SkipFinalSnapshot=True)
    wait_for(lambda: not rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [name]}])[
        "DBInstances"], 300, f"{name}'s instances deleted", interval=0.2)
    rds.delete_db_cluster(DBClusterIdentifier=name, SkipFinalSnapshot=True)
    wait_for(lambda: name not in {c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]}, 300,
             f"{name} deleted", interval=0.2)


def crash_writer(em: Any, engine: str, cluster: str, rds: Any) -> None:
    """Aurora's crash fault-injection query on the writer (a restart in place, no failover)."""
    wait_for(lambda: cluster_status(rds, cluster) == "available" and not unavailable_instances(rds, cluster), 300,
             f"{cluster} settled before a crash", interval=0.05)
    writer = writer_of(rds, cluster)
    address = rds.describe_db_instances(DBInstanceIdentifier=writer)["DBInstances"][0]["Endpoint"]
    dialect = dialect_for(engine)
    statement = "SELECT aurora_inject_crash('instance')" if engine == "aurora-postgresql" else "ALTER SYSTEM CRASH INSTANCE"
    try:
        conn = dialect.connect(address["Address"], address["Port"], Credentials(USER, PASSWORD, DATABASE),
                               connect_timeout=5, statement_timeout=10)
        cursor = conn.cursor()
        cursor.execute(statement)
    except Exception:
        pass  # the crash takes the session with it


def render(results: list[SoakResult]) -> str:
    lines = ["Soak: failovers (with reboots and crashes) under four writers and a Locust load", "",
             f"{'engine':<18} {'TTL':>4} {'failovers':>9} {'reboots':>7} {'crashes':>7} {'acked':>9} {'lost':>5} "
             f"{'p50 s':>6} {'p99 s':>6} {'max s':>6} {'> 35 s':>6} {'unavailable':>11}"]
    for r in results:
        ordered = sorted(r.times.to_first_write_s) or [0.0]
        lines.append(f"{r.engine:<18} {r.dns_ttl:>4g} {r.failovers:>9} {r.reboots:>7} {r.crashes:>7} "
                     f"{r.acknowledged:>9} {r.lost:>5} {percentile(ordered, 50):>6.2f} {percentile(ordered, 99):>6.2f} "
                     f"{ordered[-1]:>6.2f} {len(r.times.slow):>6} {len(r.left_unavailable):>11}")
    return "\n".join(lines)


def keep_logs(state_dir: Path) -> Path:
    """A copy of every log under the emulator's state directory, to diagnose a failed soak."""
    kept = Path(tempfile.mkdtemp(prefix="gd-soak-logs-"))
    for log_file in state_dir.rglob("*.log"):
        target = kept / log_file.relative_to(state_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(log_file, target)
    return kept


def main(argv: list[str] | None = None) -> int:
    from harness.emulator.emulator import Emulator
    from harness.emulator.processes import owned_processes

    parser = argparse.ArgumentParser(prog="python -m harness.bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--failovers", type=int, default=100)
    parser.add_argument("--engines", nargs="+", default=["aurora-postgresql", "aurora-mysql"])
    parser.add_argument("--dns-ttl", type=float, nargs="+", default=[0.0, 5.0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--net", type=int, default=79, help="loopback net 127.<net>.x.y (79)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rng = random.Random(args.seed)
    # On disk, not tmpfs: a hundred failovers at full write speed leave gigabytes of WAL per cluster.
    state_dir = Path(tempfile.mkdtemp(prefix="gd-soak-"))
    results: list[SoakResult] = []
    leftovers = 0
    kept: Path | None = None
    try:
        with Emulator(state_dir, net=args.net, dns_ttl=0) as em:
            try:
                for engine in args.engines:
                    for ttl in args.dns_ttl:
                        results.append(soak(em, engine, ttl, args.failovers, rng))
            finally:  # before the emulator removes its clusters: their engines' and storage nodes' logs
                if not (results and all(r.ok for r in results)):
                    kept = keep_logs(state_dir)
        # Stopped processes take a moment to exit (the watchdog last): what is left after that leaked.
        deadline = time.monotonic() + 15
        while owned_processes(state_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = owned_processes(state_dir)
        for pid in left:
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            print(f"  left behind: {pid} {command}", flush=True)
        leftovers = len(left)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        if kept is not None:
            print(f"logs kept in {kept}", flush=True)
        if results:
            print(render(results), flush=True)
            for r in results:
                for round_, seconds in r.times.slow:
                    print(f"  slow: {r.engine} TTL {r.dns_ttl:g}: failover {round_} took {seconds:.1f} s")
                for what in r.times.stuck:
                    print(f"  stuck: {r.engine} TTL {r.dns_ttl:g}: {what}")
                for instance, status in r.left_unavailable.items():
                    print(f"  left {status}: {r.engine} TTL {r.dns_ttl:g}: {instance}")
            print(f"processes left behind: {leftovers}")
    return 0 if results and all(r.ok for r in results) and not leftovers else 1


if __name__ == "__main__":
    sys.exit(main())
