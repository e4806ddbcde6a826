"""Benchmark: point-in-time restore time against data size, beside the physical floor.

Per engine and data size (about 100 MB and 1 GB of table data): load the data, take a base
backup, write for a while (the change stream a restore must replay), then, side by side in one
run on one machine:

- the **copy floor**: `cp -a` of the writer's data directory (what copying the data costs here);
- a restore to just after the base backup (a copy and almost nothing to replay);
- a restore to the latest restorable time (the same copy, plus every change since the backup);
- the **replay rate**: the change stream replayed by the second, over the time it added;
- the **ratio** restore ÷ (copy floor + replay): the goal is at most 2.

    python -m harness.bench.restore [--sizes 100 1000] [--change-seconds 180] [--change-rate 500]

Restores go through the RDS API (RestoreDBClusterToPointInTime until `available`), timed as a
client sees them; what was replayed is read from the emulator, which runs in this process.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.bench.common import progress, wait_for
from harness.dialects import dialect_for
from harness.dialects.base import Credentials
from harness.emulator.emulator import DEFAULT_REGION, Emulator

NET = 78  # 127.78.x.y: apart from the daemon, the tests and the other benchmarks
USER, PASSWORD, DATABASE = "bench", "bench-password-1", "bench"
ROW_BYTES = 1000
LOAD_SQL = {
    "aurora-postgresql": ("CREATE TABLE bench_data (id bigint PRIMARY KEY, pad text NOT NULL)",
                          "INSERT INTO bench_data SELECT g, repeat(md5(g::text), 32) FROM generate_series({a}, {b}) g"),
    "aurora-mysql": ("CREATE TABLE bench_data (id BIGINT PRIMARY KEY, pad TEXT NOT NULL)",
                     "INSERT INTO bench_data SELECT seq, REPEAT(MD5(seq), 32) FROM seq_{a}_to_{b}"),
}
CHANGE_SQL = "UPDATE bench_data SET pad = {pad} WHERE id BETWEEN {a} AND {b}"
CHANGE_PAD = {"aurora-postgresql": "repeat(md5(random()::text), 32)", "aurora-mysql": "REPEAT(MD5(RAND()), 32)"}
BATCH_ROWS = 50_000


@dataclass
class RestoreFigures:
    engine: str
    table_mb: int  # what was loaded
    data_dir_mb: float  # the writer's data directory, with its logs: what a copy moves
    copy_s: float
    restore_no_replay_s: float
    restore_s: float
    replayed_mb: float

    @property
    def replay_rate_mb_s(self) -> float | None:
        added = self.restore_s - self.restore_no_replay_s
        return self.replayed_mb / added if added > 0 and self.replayed_mb else None

    @property
    def ratio(self) -> float:
        """Restore ÷ (copy floor + the time replay added): at most 2 is the goal."""
        return self.restore_s / (self.copy_s + max(0.0, self.restore_s - self.restore_no_replay_s))


def directory_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def session(em: Emulator, cluster: str, engine: str) -> Any:
    described = em.client().describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
    return dialect_for(engine).connect(described["Endpoint"], described["Port"], Credentials(USER, PASSWORD, DATABASE),
                                       connect_timeout=5, statement_timeout=0)


def execute(conn: Any, sql: str) -> None:
    cursor = conn.cursor()
    cursor.execute(sql)
    cursor.close()


def available(rds: Any, cluster: str) -> bool:
    return rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["Status"] == "available"


def make_cluster(em: Emulator, engine: str, name: str) -> None:
    rds = em.client()
    rds.create_db_cluster(DBClusterIdentifier=name, Engine=engine, MasterUsername=USER, MasterUserPassword=PASSWORD,
                          DatabaseName=DATABASE)
    rds.create_db_instance(DBInstanceIdentifier=f"{name}-1", DBClusterIdentifier=name, Engine=engine,
                           DBInstanceClass="db.r6g.large")
    wait_for(lambda: rds.describe_db_instances(DBInstanceIdentifier=f"{name}-1")["DBInstances"][0]["DBInstanceStatus"]
             == "available", 600, f"{name} available", interval=0.2)


def load(em: Emulator, engine: str, name: str, megabytes: int) -> int:
    rows = megabytes * 2**20 // ROW_BYTES
    create, insert = LOAD_SQL[engine]
    conn = session(em, name, engine)
    try:
        execute(conn, create)
        for first in range(1, rows + 1, BATCH_ROWS):
            execute(conn, insert.format(a=first, b=min(rows, first + BATCH_ROWS - 1)))
    finally:
        conn.close()
    return rows


def change(em: Emulator, engine: str, name: str, rows: int, seconds: float, rate: int) -> None:
    """Update `rate` rows a second (100 at a time) for `seconds`: the change stream to replay."""
    conn = session(em, name, engine)
    started, first, done = time.monotonic(), 1, 0
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            if done >= rate * elapsed:
                time.sleep(0.01)
                continue
            execute(conn, CHANGE_SQL.format(pad=CHANGE_PAD[engine], a=first, b=first + 99))
            first, done = (first + 100 if first + 100 < rows else 1), done + 100
    finally:
        conn.close()


def restore(em: Emulator, source: str, target: str, point: datetime | None) -> tuple[float, float]:
    """Seconds until the restored cluster is `available`, and MB of change stream it replayed."""
    rds = em.client()
    started = time.monotonic()
    params: dict[str, Any] = {"DBClusterIdentifier": target, "SourceDBClusterIdentifier": source}
    params.update({"RestoreToTime": point} if point else {"UseLatestRestorableTime": True})
    rds.restore_db_cluster_to_point_in_time(**params)
    wait_for(lambda: available(rds, target), 3600, f"{target} restored", interval=0.05)
    took = time.monotonic() - started
    restored = em.store.runtime(DEFAULT_REGION, target).restored
    replayed = restored.replayed_bytes / 2**20 if restored else 0.0
    rds.delete_db_cluster(DBClusterIdentifier=target, SkipFinalSnapshot=True)
    wait_for(lambda: target not in {c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]},
             600, f"{target} deleted", interval=0.2)
    return took, replayed


def copy_floor(data_dir: Path) -> float:
    with tempfile.TemporaryDirectory(dir=data_dir.parents[3]) as scratch:
        started = time.monotonic()
        subprocess.run(["cp", "-a", str(data_dir), str(Path(scratch) / "copy")], check=True)
        return time.monotonic() - started


def bench(em: Emulator, engine: str, megabytes: int, change_seconds: float, rate: int) -> RestoreFigures:
    name = f"r{'pg' if engine == 'aurora-postgresql' else 'my'}{megabytes}"
    progress(f"{engine}, {megabytes} MB: a cluster")
    make_cluster(em, engine, name)
    progress(f"{engine}, {megabytes} MB: loading")
    rows = load(em, engine, name, megabytes)
    runtime = em.store.runtime(DEFAULT_REGION, name)
    data_dir = runtime.engine.writer().data_dir
    progress(f"{engine}, {megabytes} MB: base backup")
    em.controls.take_backup(cluster=name)
    time.sleep(0.01)  # the point must be after the backup's end on the clock
    after_backup = datetime.now(UTC)
    progress(f"{engine}, {megabytes} MB: {change_seconds:g} s of changes")
    writer = threading.Thread(target=change, args=(em, engine, name, rows, change_seconds, rate))
    writer.start()
    writer.join()
    progress(f"{engine}, {megabytes} MB: restores and the copy floor")
    no_replay_s, _ = restore(em, name, f"{name}-a", after_backup)
    restore_s, replayed = restore(em, name, f"{name}-b", None)
    copy_s = copy_floor(data_dir)
    figures = RestoreFigures(engine, megabytes, directory_mb(data_dir), copy_s, no_replay_s, restore_s, replayed)
    rds = em.client()
    rds.delete_db_instance(DBInstanceIdentifier=f"{name}-1", SkipFinalSnapshot=True)
    wait_for(lambda: not rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]["DBClusterMembers"], 600,
             f"{name}-1 deleted", interval=0.2)
    rds.delete_db_cluster(DBClusterIdentifier=name, SkipFinalSnapshot=True)
    return figures


def render(results: list[RestoreFigures], change_seconds: float, rate: int) -> str:
    lines = [f"Point-in-time restore against data size ({change_seconds:g} s of changes, {rate} rows/s, after the "
             f"base backup)", "",
             f"{'engine':<18} {'table MB':>8} {'dir MB':>7} {'copy s':>7} {'no-replay s':>11} {'restore s':>9} "
             f"{'replayed MB':>11} {'replay MB/s':>11} {'ratio':>6}"]
    for r in results:
        replay = f"{r.replay_rate_mb_s:.1f}" if r.replay_rate_mb_s else "-"
        lines.append(f"{r.engine:<18} {r.table_mb:>8} {r.data_dir_mb:>7.0f} {r.copy_s:>7.2f} "
                     f"{r.restore_no_replay_s:>11.2f} {r.restore_s:>9.2f} {r.replayed_mb:>11.1f} {replay:>11} "
                     f"{r.ratio:>6.2f}")
    lines += ["", "copy s: cp -a of the writer's data directory (the physical floor); no-replay s: a restore to",
              "just after the base backup; restore s: to the latest restorable time, replaying every change;",
              "ratio: restore s ÷ (copy s + the time replay added); goal ≤ 2."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.restore", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000], help="MB of table data (100 1000)")
    parser.add_argument("--change-seconds", type=float, default=180.0, help="writes after the base backup (180)")
    parser.add_argument("--change-rate", type=int, default=500, help="rows updated a second meanwhile (500)")
    parser.add_argument("--engines", nargs="+", default=["aurora-postgresql", "aurora-mysql"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    state_dir = Path(tempfile.mkdtemp(prefix="gd-bench-restore-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    results: list[RestoreFigures] = []
    try:
        with Emulator(state_dir, net=NET, dns_ttl=0) as em:
            for engine in args.engines:
                for megabytes in args.sizes:
                    results.append(bench(em, engine, megabytes, args.change_seconds, args.change_rate))
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        if results:
            print(render(results, args.change_seconds, args.change_rate), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
