"""Benchmark: Blue/Green switchover downtime on the emulator, per engine, against the write rate on
blue, beside a plain FailoverDBCluster of the same cluster.

For each write rate (idle: the probe alone; moderate: the probe and background writers), a green
environment is created from the production cluster and switched over while a probe writes through
the cluster endpoint: the downtime is the longest gap between two acknowledged probe writes around
the switchover, the duration runs from SwitchoverBlueGreenDeployment until SWITCHOVER_COMPLETED, and
the writes lost are acknowledged ones missing afterwards (must be 0). The same probe then times a
FailoverDBCluster of the production cluster under the same load. The documented figure: a
switchover "typically takes under a minute" (aurora-facts T22).

    python -m harness.bench.blue_green [--engines ...] [--rates idle moderate] [--writers 4]

Everything goes through the RDS API and SQL (the emulator runs in this process).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.bench.common import progress, wait_for
from harness.dialects import dialect_for
from harness.dialects.base import Credentials
from harness.emulator.emulator import Emulator

NET = 62  # 127.62.x.y: apart from the daemon, the tests and the other benchmarks
USER, PASSWORD, DATABASE = "bench", "bench-password-1", "bench"
CREDENTIALS = Credentials(USER, PASSWORD, DATABASE)
PARAMETER = {"aurora-postgresql": ("aurora-postgresql15", "rds.logical_replication", "1"),
             "aurora-mysql": ("aurora-mysql8.0", "binlog_format", "ROW")}
PROBE_INTERVAL_S = 0.01


@dataclass
class Figures:
    engine: str
    rate: str  # idle | moderate
    operation: str  # switchover | failover
    writes_per_s: float  # acknowledged writes per second on blue before the operation (probe + load)
    duration_s: float  # from the API call until the operation is complete
    downtime_s: float  # the longest gap between two acknowledged probe writes
    lost: int
    completed: bool = True  # SWITCHOVER_COMPLETED / the writer changed (else the figures time a failure)


class Writer:
    """Autocommit INSERTs through one endpoint, in a thread; the acknowledged ones, with their time."""

    def __init__(self, bench: BlueGreenBench, run: str, pause_s: float):
        self.bench, self.run, self.pause_s = bench, run, pause_s
        self.acknowledged: list[tuple[int, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._write, daemon=True)

    def _write(self) -> None:
        seq, conn = 0, None
        while not self.stop.is_set():
            seq += 1
            try:
                conn = conn or self.bench.connect(self.bench.endpoint)
                self.bench.dialect.insert(conn, self.run, seq)  # returned: acknowledged
                self.acknowledged.append((seq, time.monotonic()))
            except Exception:  # noqa: BLE001 - refused while the environments change: try again
                conn = None
                time.sleep(0.01)
            if self.pause_s:
                time.sleep(self.pause_s)

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)

    def rate(self, seconds: float = 1.0) -> float:
        before = len(self.acknowledged)
        time.sleep(seconds)
        return (len(self.acknowledged) - before) / seconds

    def longest_gap(self, since: float) -> float:
        times = [at for _, at in self.acknowledged if at >= since - 1.0]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)


class BlueGreenBench:
    """One engine's production cluster (a writer and a reader) on a group that allows Blue/Green."""

    def __init__(self, emulator: Emulator, engine: str):
        self.emulator, self.engine = emulator, engine
        self.dialect = dialect_for(engine)
        self.rds = emulator.client()
        short = "pg" if engine == "aurora-postgresql" else "my"
        self.name, group = f"bbg{short}", f"bench-bg-{short}"
        family, parameter, value = PARAMETER[engine]
        self.rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group, DBParameterGroupFamily=family,
                                                   Description="bench")
        self.rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
            {"ParameterName": parameter, "ParameterValue": value, "ApplyMethod": "pending-reboot"}])
        self.rds.create_db_cluster(DBClusterIdentifier=self.name, Engine=engine, MasterUsername=USER,
                                   MasterUserPassword=PASSWORD, DatabaseName=DATABASE,
                                   DBClusterParameterGroupName=group)
        for index in (1, 2):
            self.rds.create_db_instance(DBInstanceIdentifier=f"{self.name}-{index}", DBClusterIdentifier=self.name,
                                        Engine=engine, DBInstanceClass="db.r6g.large")
        wait_for(self._settled, 300, f"{self.name} available")
        self.endpoint = self.cluster()["Endpoint"]
        with self.connect(self.endpoint) as conn:
            self.dialect.create_ledger(conn)

    def cluster(self, name: str | None = None) -> dict[str, Any]:
        return self.rds.describe_db_clusters(DBClusterIdentifier=name or self.name)["DBClusters"][0]

    def _settled(self) -> bool:
        described = self.cluster()
        return described["Status"] == "available" and all(
            self.rds.describe_db_instances(DBInstanceIdentifier=m["DBInstanceIdentifier"])["DBInstances"][0][
                "DBInstanceStatus"] == "available" for m in described["DBClusterMembers"]) and len(
            described["DBClusterMembers"]) == 2

    def connect(self, host: str) -> Any:
        return self.dialect.connect(host, self.cluster()["Port"], CREDENTIALS, connect_timeout=2,
                                    statement_timeout=10, application_name="bench-blue-green")

    def writer(self) -> str:
        return next(m["DBInstanceIdentifier"] for m in self.cluster()["DBClusterMembers"] if m["IsClusterWriter"])

    def deployment(self, identifier: str) -> dict[str, Any]:
        return self.rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=identifier)[
            "BlueGreenDeployments"][0]

    def measure(self, rate: str, writers: int, operation: str) -> Figures:
        run = f"{operation}-{rate}-{time.monotonic_ns()}"
        identifier = None
        if operation == "switchover":
            identifier = self.rds.create_blue_green_deployment(
                BlueGreenDeploymentName=f"bench-{run}"[:60], Source=self.cluster()["DBClusterArn"])[
                "BlueGreenDeployment"]["BlueGreenDeploymentIdentifier"]
            wait_for(lambda: self.deployment(identifier)["Status"] == "AVAILABLE", 300, "green available")
        load = [Writer(self, f"{run}-load{i}", 0.0) for i in range(writers if rate == "moderate" else 0)]
        with Writer(self, run, PROBE_INTERVAL_S) as probe:
            for writer in load:
                writer.__enter__()
            try:
                time.sleep(1.0)
                before = sum(len(w.acknowledged) for w in load)
                writes_per_s = probe.rate(1.0) + sum(len(w.acknowledged) for w in load) - before
                writer = self.writer()
                started = time.monotonic()
                if identifier is not None:
                    self.rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=identifier)
                    wait_for(lambda: self.deployment(identifier)["Status"] in ("SWITCHOVER_COMPLETED",
                                                                               "SWITCHOVER_FAILED"),
                             600, "the switchover", interval=0.02)
                else:
                    self.rds.failover_db_cluster(DBClusterIdentifier=self.name)
                    wait_for(lambda: self.cluster()["Status"] == "available", 600, "the failover", interval=0.02)
                duration = time.monotonic() - started
                completed = (self.deployment(identifier)["Status"] == "SWITCHOVER_COMPLETED" if identifier
                             else self.writer() != writer)
                acknowledged = len(probe.acknowledged)
                wait_for(lambda: len(probe.acknowledged) > acknowledged + 20, 120, "writes again")
            finally:
                for writer in load:
                    writer.__exit__()
        with self.connect(self.endpoint) as conn:
            counts = self.dialect.ledger_counts(conn, run)
        lost = sum(1 for seq, _ in probe.acknowledged if seq not in counts)
        figures = Figures(self.engine, rate, operation, writes_per_s, duration, probe.longest_gap(started), lost,
                          completed)
        if identifier is not None:
            self._retire(identifier)
        wait_for(self._settled, 300, f"{self.name} settled")
        return figures

    def _retire(self, identifier: str) -> None:
        """Delete the deployment and the old blue cluster, so the next round starts from one cluster."""
        old = self.deployment(identifier)["Source"].split(":")[-1]
        self.rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=identifier)
        wait_for(lambda: not self.rds.describe_blue_green_deployments(Filters=[
            {"Name": "blue-green-deployment-identifier", "Values": [identifier]}])["BlueGreenDeployments"],
            120, "deployment deleted")
        if old == self.name:  # the switchover failed: blue is still production
            return
        for member in self.cluster(old)["DBClusterMembers"]:
            self.rds.delete_db_instance(DBInstanceIdentifier=member["DBInstanceIdentifier"], SkipFinalSnapshot=True)
        wait_for(lambda: not self.cluster(old)["DBClusterMembers"], 300, f"{old} empty")
        self.rds.delete_db_cluster(DBClusterIdentifier=old, SkipFinalSnapshot=True)


def render(figures: list[Figures]) -> str:
    lines = ["Blue/Green switchover on the emulator, beside FailoverDBCluster of the same cluster",
             "(documented: a switchover typically takes under a minute)", "",
             f"{'engine':<18} {'rate':<9} {'operation':<11} {'writes/s':>9} {'duration s':>11} "
             f"{'downtime s':>11} {'lost':>5}  completed"]
    for f in figures:
        lines.append(f"{f.engine:<18} {f.rate:<9} {f.operation:<11} {f.writes_per_s:>9.0f} {f.duration_s:>11.2f} "
                     f"{f.downtime_s:>11.2f} {f.lost:>5}  {'yes' if f.completed else 'NO'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.blue_green", description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["aurora-postgresql", "aurora-mysql"])
    parser.add_argument("--rates", nargs="+", default=["idle", "moderate"], choices=["idle", "moderate"])
    parser.add_argument("--writers", type=int, default=4, help="background writers at the moderate rate (4)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    state_dir = Path(tempfile.mkdtemp(prefix="gd-bench-bg-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    figures: list[Figures] = []
    try:
        with Emulator(state_dir, net=NET, dns_ttl=0) as emulator:
            for engine in args.engines:
                progress(f"{engine}: a production cluster with a writer and a reader")
                bench = BlueGreenBench(emulator, engine)
                for rate in args.rates:
                    for operation in ("switchover", "failover"):
                        progress(f"{engine}: {operation} at the {rate} write rate")
                        figures.append(bench.measure(rate, args.writers, operation))
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        if figures:
            print(render(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
