"""Benchmark: Global Database on the emulator, per engine, beside the inter-Region link's floor.

- **cross-Region visibility lag** against the link's round trip: a commit on the primary until a
  query on the secondary's instance sees it, many times, p50/p99, beside half the round trip (the
  one-way latency the link adds, the floor);
- **switchover duration** against the lag at the call: the link cut for 0, 1 and 10 s while a
  writer keeps committing, then SwitchoverGlobalCluster and the link restored at once: from the
  call until the new primary is the writer and no FailoverState is left, and the acknowledged
  writes the switchover lost (0: RPO 0).

    python -m harness.bench.global_database [--engines ...] [--rtts 70 200] [--lags 0 1 10] [--samples 50]

Everything goes through the RDS API and SQL (the emulator runs in this process; the link's round
trip and its cut are its controls).
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

from harness.bench.common import progress, summarize, wait_for
from harness.dialects import dialect_for
from harness.dialects.base import Credentials
from harness.emulator.emulator import Emulator

NET = 60  # 127.60.x.y: apart from the daemon, the tests and the other benchmarks
PRIMARY, SECONDARY = "us-east-1", "us-west-2"
USER, PASSWORD, DATABASE = "bench", "bench-password-1", "bench"
CREDENTIALS = Credentials(USER, PASSWORD, DATABASE)


@dataclass
class LagFigures:
    engine: str
    rtt_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class SwitchoverFigures:
    engine: str
    lag_s: float
    duration_s: float
    lost: int


class GlobalBench:
    """One engine's global cluster: a primary (one writer) and a secondary (one instance)."""

    def __init__(self, emulator: Emulator, engine: str):
        self.emulator, self.engine = emulator, engine
        self.dialect = dialect_for(engine)
        self.rds = {r: emulator.client(r) for r in (PRIMARY, SECONDARY)}
        short = "pg" if engine == "aurora-postgresql" else "my"
        self.clusters = {PRIMARY: f"bgp{short}", SECONDARY: f"bgs{short}"}
        self.identifier = f"bench-global-{short}"
        east, west = self.rds[PRIMARY], self.rds[SECONDARY]
        east.create_db_cluster(DBClusterIdentifier=self.clusters[PRIMARY], Engine=engine, MasterUsername=USER,
                               MasterUserPassword=PASSWORD, DatabaseName=DATABASE)
        self._instance(PRIMARY)
        with self.connect(self.cluster(PRIMARY)["Endpoint"]) as conn:
            self.dialect.create_ledger(conn)
        east.create_global_cluster(GlobalClusterIdentifier=self.identifier,
                                   SourceDBClusterIdentifier=self.cluster(PRIMARY)["DBClusterArn"])
        west.create_db_cluster(DBClusterIdentifier=self.clusters[SECONDARY], Engine=engine,
                               GlobalClusterIdentifier=self.identifier)
        self._instance(SECONDARY)

    def _instance(self, region: str) -> None:
        name = f"{self.clusters[region]}-1"
        self.rds[region].create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier=self.clusters[region],
                                            Engine=self.engine, DBInstanceClass="db.r6g.large")
        wait_for(lambda: self.rds[region].describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0][
            "DBInstanceStatus"] == "available", 300, f"{name} available")

    def cluster(self, region: str) -> dict[str, Any]:
        return self.rds[region].describe_db_clusters(DBClusterIdentifier=self.clusters[region])["DBClusters"][0]

    def instance_address(self, region: str) -> str:
        name = f"{self.clusters[region]}-1"
        return self.rds[region].describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["Endpoint"][
            "Address"]

    def connect(self, host: str) -> Any:
        return self.dialect.connect(host, self.cluster(PRIMARY)["Port"], CREDENTIALS, connect_timeout=2,
                                    statement_timeout=10, application_name="bench-global")

    def described(self) -> dict[str, Any]:
        return self.rds[PRIMARY].describe_global_clusters(GlobalClusterIdentifier=self.identifier)["GlobalClusters"][0]

    def writer_region(self) -> str:
        writer = next(m for m in self.described()["GlobalClusterMembers"] if m["IsWriter"])
        return writer["DBClusterArn"].split(":")[3]

    # --- visibility lag ---------------------------------------------------------------------------------
    def visibility_lag(self, rtt_ms: float, samples: int) -> LagFigures:
        control = self.emulator.controls
        control.call("set_region_rtt", {"region_a": PRIMARY, "region_b": SECONDARY, "milliseconds": rtt_ms})
        primary, secondary = self.writer_region(), SECONDARY if self.writer_region() == PRIMARY else PRIMARY
        run = f"lag-{rtt_ms:g}"
        seen = []
        with self.connect(self.cluster(primary)["Endpoint"]) as writer, \
                self.connect(self.instance_address(secondary)) as reader:
            for seq in range(1, samples + 1):
                started = time.monotonic()
                self.dialect.insert(writer, run, seq)
                while self.dialect.max_seq(reader, run) < seq:
                    time.sleep(0.001)
                seen.append((time.monotonic() - started) * 1000.0)
        figures = summarize(seen)
        return LagFigures(self.engine, rtt_ms, figures.median, figures.p99, figures.max)

    # --- switchover ---------------------------------------------------------------------------------------
    def switchover(self, lag_s: float) -> SwitchoverFigures:
        endpoint = self.described()["Endpoint"]
        target = SECONDARY if self.writer_region() == PRIMARY else PRIMARY
        run = f"switchover-{lag_s:g}-{time.monotonic_ns()}"
        acknowledged: list[int] = []
        stop = threading.Event()

        def write() -> None:
            seq, conn = 0, None
            while not stop.is_set():
                seq += 1
                try:
                    conn = conn or self.connect(endpoint)
                    self.dialect.insert(conn, run, seq)  # returned: acknowledged
                    acknowledged.append(seq)
                except Exception:  # noqa: BLE001 - refused while roles change: try again
                    conn = None
                    time.sleep(0.01)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        control = self.emulator.controls
        time.sleep(0.5)
        if lag_s > 0:
            control.call("cut_region_link", {"region_a": PRIMARY, "region_b": SECONDARY})
            time.sleep(lag_s)
        started = time.monotonic()
        self.rds[self.writer_region()].switchover_global_cluster(
            GlobalClusterIdentifier=self.identifier, TargetDbClusterIdentifier=self.cluster(target)["DBClusterArn"])
        if lag_s > 0:
            control.call("restore_region_link", {"region_a": PRIMARY, "region_b": SECONDARY})
        wait_for(lambda: "FailoverState" not in self.described() and self.writer_region() == target, 600,
                 "the switchover", interval=0.02)
        duration = time.monotonic() - started
        time.sleep(0.5)
        stop.set()
        writer.join(30)
        with self.connect(self.cluster(target)["Endpoint"]) as conn:
            counts = self.dialect.ledger_counts(conn, run)
        lost = sum(1 for seq in acknowledged if seq not in counts)
        return SwitchoverFigures(self.engine, lag_s, duration, lost)


def render(lags: list[LagFigures], switchovers: list[SwitchoverFigures]) -> str:
    lines = ["Global Database on the emulator", "", "Cross-Region visibility lag (commit on the primary until a "
             "query on the secondary sees it)", f"{'engine':<18} {'RTT ms':>7} {'floor ms':>9} {'p50 ms':>8} "
             f"{'p99 ms':>8} {'max ms':>8}"]
    for f in lags:
        lines.append(f"{f.engine:<18} {f.rtt_ms:>7g} {f.rtt_ms / 2:>9g} {f.p50_ms:>8.1f} {f.p99_ms:>8.1f} {f.max_ms:>8.1f}")
    lines += ["", "Switchover duration against the lag at the call (link cut that long, restored at the call)",
              f"{'engine':<18} {'lag s':>6} {'duration s':>11} {'lost writes':>12}"]
    for s in switchovers:
        lines.append(f"{s.engine:<18} {s.lag_s:>6g} {s.duration_s:>11.2f} {s.lost:>12}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.global_database",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["aurora-postgresql", "aurora-mysql"])
    parser.add_argument("--rtts", type=float, nargs="+", default=[70.0, 200.0], help="link round trips, ms (70 200)")
    parser.add_argument("--lags", type=float, nargs="+", default=[0.0, 1.0, 10.0], help="lag at the call, s (0 1 10)")
    parser.add_argument("--samples", type=int, default=50, help="commits timed per round trip (50)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    state_dir = Path(tempfile.mkdtemp(prefix="gd-bench-global-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    lags: list[LagFigures] = []
    switchovers: list[SwitchoverFigures] = []
    try:
        with Emulator(state_dir, net=NET, dns_ttl=0) as emulator:
            for engine in args.engines:
                progress(f"{engine}: a primary in {PRIMARY}, a secondary in {SECONDARY}")
                bench = GlobalBench(emulator, engine)
                for rtt in args.rtts:
                    progress(f"{engine}: visibility lag at {rtt:g} ms round trip")
                    lags.append(bench.visibility_lag(rtt, args.samples))
                emulator.controls.call("set_region_rtt", {"region_a": PRIMARY, "region_b": SECONDARY,
                                                          "milliseconds": 70.0})
                for lag in args.lags:
                    progress(f"{engine}: switchover with {lag:g} s of lag")
                    switchovers.append(bench.switchover(lag))
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        if lags or switchovers:
            print(render(lags, switchovers), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
