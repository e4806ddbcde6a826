"""Benchmark: Backtrack duration against the amount of change passed over, beside a point-in-time
restore of the same cluster to the same moment (Aurora MySQL).

One cluster (a writer and a reader, Backtrack on) holds a table of `--rows` narrow rows. For each
amount of change (a few thousand to a million rows updated, in 10,000-row transactions): an
automated backup is taken, `--since-backup` rows are changed (the work since the last backup, up
to an hour's on Aurora's schedule), a moment is marked, the rows are changed, then, side by side:

- **backtrack**: BacktrackDBCluster to the moment, timed from the request until the backtrack is
  `completed` and the cluster `available` (writer and reader rewound in place), by flashback (the
  changed rows undone) since only row changes are passed over;
- **paused**: how long of that writes were refused (until the writer was back);
- **restore**: RestoreDBClusterToPointInTime of the same cluster to the same moment, timed until the
  new cluster is `available` (its volume built; it has no instance yet, as on AWS).

    python -m harness.bench.backtrack [--rows 1000000] [--changes 5000 50000 500000 1000000] [--rounds 3]

Each amount is measured `--rounds` times, backtrack and restore side by side in every round; the
table shows the medians (the ratio is the median of the rounds' ratios), since on a shared
machine one round can move by seconds.

The restore copies the newest backup and replays the change stream up to the moment, so its time
follows the data size and the change since the backup; a flashback's follows the change it undoes,
as Aurora's backtrack does. The emulator flashes back when that is the smaller change, else it
rebuilds as the restore does (see the README's fidelity table).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

from harness.bench.common import progress, wait_for
from harness.bench.restore import DATABASE, PASSWORD, USER, available, execute, session
from harness.emulator.emulator import DEFAULT_REGION, Emulator

NET = 79  # 127.79.x.y: apart from the daemon, the tests and the other benchmarks
ENGINE = "aurora-mysql"
CLUSTER = "bt-bench"
BATCH_ROWS = 10_000


@dataclass
class BacktrackFigures:
    changed_rows: int
    binlog_mb: float  # the change stream the backtrack passed over
    backtrack_s: float
    paused_s: float
    how: str  # flashback | rebuild
    restore_s: float
    usable_s: float  # the restore plus a writer and a reader on it, until available


def make_cluster(em: Emulator) -> None:
    rds = em.client()
    rds.create_db_cluster(DBClusterIdentifier=CLUSTER, Engine=ENGINE, MasterUsername=USER, MasterUserPassword=PASSWORD,
                          DatabaseName=DATABASE, BacktrackWindow=3600)
    for index, tier in enumerate((1, 0)):
        rds.create_db_instance(DBInstanceIdentifier=f"{CLUSTER}-{index + 1}", DBClusterIdentifier=CLUSTER,
                               Engine=ENGINE, DBInstanceClass="db.r6g.large", PromotionTier=tier)
    wait_for(lambda: all(i["DBInstanceStatus"] == "available" for i in rds.describe_db_instances()["DBInstances"]),
             600, f"{CLUSTER} available", interval=0.2)


def load(em: Emulator, rows: int) -> None:
    conn = session(em, CLUSTER, ENGINE)
    try:
        execute(conn, "CREATE TABLE bench_data (id BIGINT PRIMARY KEY, pad CHAR(64) NOT NULL)")
        for first in range(1, rows + 1, 50_000):
            last = min(rows, first + 49_999)
            execute(conn, f"INSERT INTO bench_data SELECT seq, MD5(seq) FROM seq_{first}_to_{last}")
    finally:
        conn.close()


def change(em: Emulator, rows: int, count: int) -> None:
    """Update `count` rows, 10,000 to a transaction, wrapping around the table."""
    conn = session(em, CLUSTER, ENGINE)
    try:
        done, first = 0, 1
        while done < count:
            size = min(BATCH_ROWS, count - done, rows - first + 1)
            execute(conn, f"UPDATE bench_data SET pad = MD5(RAND()) WHERE id BETWEEN {first} AND {first + size - 1}")
            done, first = done + size, (first + size if first + size <= rows else 1)
    finally:
        conn.close()


def restore_usable(em: Emulator, target: str, point: datetime) -> tuple[float, float]:
    """RestoreDBClusterToPointInTime until available, then until a writer and a reader on it are
    (what a restore takes before it can stand in for the cluster); both in seconds. Deleted after."""
    rds = em.client()
    started = time.monotonic()
    rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier=target, SourceDBClusterIdentifier=CLUSTER,
                                            RestoreToTime=point)
    wait_for(lambda: available(rds, target), 3600, f"{target} restored", interval=0.05)
    restored = time.monotonic() - started
    names = [f"{target}-1", f"{target}-2"]
    for name in names:
        rds.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier=target, Engine=ENGINE,
                               DBInstanceClass="db.r6g.large")
        wait_for(lambda: rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["DBInstanceStatus"]
                 == "available", 600, f"{name} available", interval=0.05)
    usable = time.monotonic() - started
    for name in names:
        rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
    wait_for(lambda: not rds.describe_db_clusters(DBClusterIdentifier=target)["DBClusters"][0]["DBClusterMembers"],
             600, f"{target} instances deleted", interval=0.2)
    rds.delete_db_cluster(DBClusterIdentifier=target, SkipFinalSnapshot=True)
    wait_for(lambda: target not in {c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]},
             600, f"{target} deleted", interval=0.2)
    return restored, usable


def binlog_mb(em: Emulator) -> float:
    root = em.store.runtime(DEFAULT_REGION, CLUSTER).engine.history.archive_root
    return sum(p.stat().st_size for p in root.rglob("binlog.*") if p.is_file()) / 2**20


def backtrack(em: Emulator, point: datetime) -> tuple[float, float, str]:
    """Seconds until the backtrack is completed and the cluster available, how long writes were
    refused, and how the engine rewound."""
    rds = em.client()
    started = time.monotonic()
    answer = rds.backtrack_db_cluster(DBClusterIdentifier=CLUSTER, BacktrackTo=point)

    def done() -> bool:
        status = rds.describe_db_cluster_backtracks(
            DBClusterIdentifier=CLUSTER, BacktrackIdentifier=answer["BacktrackIdentifier"])["DBClusterBacktracks"][0]
        if status["Status"] == "failed":
            raise RuntimeError(f"backtrack {answer['BacktrackIdentifier']} failed")
        return status["Status"] == "completed" and available(rds, CLUSTER)

    wait_for(done, 3600, "the backtrack", interval=0.05)
    took = time.monotonic() - started
    rewound = em.store.runtime(DEFAULT_REGION, CLUSTER).rewound
    return took, rewound.paused_s if rewound else 0.0, rewound.how if rewound else "?"


def bench(em: Emulator, rows: int, count: int, since_backup: int, round_: int) -> BacktrackFigures:
    progress(f"{count} rows changed: backup, {since_backup} rows, the point, {count} rows, restore, backtrack")
    em.controls.take_backup(cluster=CLUSTER)
    change(em, rows, since_backup)
    time.sleep(0.01)
    point = datetime.now(UTC)
    before = binlog_mb(em)
    change(em, rows, count)
    changed = datetime.now(UTC)
    engine = em.store.runtime(DEFAULT_REGION, CLUSTER).engine
    wait_for(lambda: (engine.restorable_until() or point) >= changed, 60, "the archive", interval=0.02)
    passed = binlog_mb(em) - before
    point = point.replace(microsecond=point.microsecond // 1000 * 1000)
    restore_s, usable_s = restore_usable(em, f"{CLUSTER}-r{round_}", point)
    backtrack_s, paused_s, how = backtrack(em, point)
    return BacktrackFigures(count, passed, backtrack_s, paused_s, how, restore_s, usable_s)


def render(results: list[BacktrackFigures], rows: int, since_backup: int) -> str:
    rounds = max((sum(r.changed_rows == x.changed_rows for x in results) for r in results), default=0)
    lines = [f"Backtrack against the change passed over (Aurora MySQL, {rows} rows of 72 bytes, a writer and a "
             f"reader, {since_backup} rows changed between the last backup and the point; medians of {rounds} "
             f"round(s))", "",
             f"{'rows changed':>12} {'binlog MB':>9} {'backtrack s':>11} {'paused s':>8} {'how':>9} {'restore s':>9} "
             f"{'+instances s':>12} {'ratio':>6}"]
    for changed in dict.fromkeys(r.changed_rows for r in results):
        same = [r for r in results if r.changed_rows == changed]
        hows = "/".join(sorted({r.how for r in same}))
        lines.append(f"{changed:>12} {median(r.binlog_mb for r in same):>9.1f} "
                     f"{median(r.backtrack_s for r in same):>11.2f} {median(r.paused_s for r in same):>8.2f} "
                     f"{hows:>9} {median(r.restore_s for r in same):>9.2f} {median(r.usable_s for r in same):>12.2f} "
                     f"{median(r.backtrack_s / r.usable_s for r in same):>6.2f}")
    lines += ["", "backtrack s: BacktrackDBCluster until completed and available (writer and reader rewound in place);",
              "paused s: writes refused meanwhile; how: flashback (the change undone) or rebuild (a restore in",
              "place); restore s: RestoreDBClusterToPointInTime to the same moment until available (no instance",
              "yet); +instances s: until a writer and a reader on it are available; ratio: backtrack ÷ (restore +",
              "instances)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.backtrack", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the table (1000000)")
    parser.add_argument("--changes", type=int, nargs="+", default=[5_000, 50_000, 500_000, 1_000_000],
                        help="rows changed after the backtrack point (5000 50000 500000 1000000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per amount, side by side (3)")
    parser.add_argument("--since-backup", type=int, default=200_000,
                        help="rows changed between the backup and the backtrack point (200000)")
    parser.add_argument("--net", type=int, default=NET, help=f"loopback net 127.<net>.x.y ({NET})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    state_dir = Path(tempfile.mkdtemp(prefix="gd-bench-backtrack-",
                                      dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    results: list[BacktrackFigures] = []
    try:
        with Emulator(state_dir, net=args.net, dns_ttl=0) as em:
            progress("a cluster")
            make_cluster(em)
            progress(f"loading {args.rows} rows")
            load(em, args.rows)
            for index, count in enumerate(args.changes):
                for round_ in range(args.rounds):
                    results.append(bench(em, args.rows, count, args.since_backup, index * args.rounds + round_))
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        if results:
            print(render(results, args.rows, args.since_backup), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
