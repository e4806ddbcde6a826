"""Continuous backup and point-in-time restore on Aurora MySQL (MariaDB), judged against a ledger.

One source cluster lives through a scripted history while a client writes a steady stream
through the cluster endpoint, recording for every attempt when its statement began and when
COMMIT returned: a base backup early on, a table created and later dropped, an idle stretch, a
failover. Each test restores a point of that history into a new cluster (through the engine
contract, as RestoreDBClusterToPointInTime's job will), starts an instance on it, and checks
the ledger Jepsen-style: every attempt acknowledged at or before the point is there, none that
began after it is, and none is there in part (attempts in flight across the point may go either
way).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pymysql
import pytest

from harness.emulator.engines.base import BaseBackup, RestoredVolume
from harness.emulator.engines.mariadb import MariaDbCluster
from harness.emulator.engines.mariadb_backup import HistoryError, binlog_files
from tests.emulator.support import PASSWORD, USER, Cluster, create_cluster, delete_cluster, wait_for

ENGINE = "aurora-mysql"
REGION = "us-east-1"


def connect(host: str, **kwargs: Any) -> pymysql.Connection:
    params = dict(host=host, port=3306, user=USER, password=PASSWORD, database="app", autocommit=True,
                  connect_timeout=2, read_timeout=5, write_timeout=5, ssl_disabled=True)
    params.update(kwargs)
    return pymysql.connect(**params)


def rows(host: str, sql: str) -> list[tuple[Any, ...]]:
    with connect(host) as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


def moment(unix: float) -> datetime:
    """A point in time as the API carries it (UTC, whole microseconds)."""
    return datetime.fromtimestamp(unix, timezone.utc)


@dataclass
class Attempt:
    """One write of the stream: an autocommit INSERT, or an explicit transaction of two."""

    ids: tuple[int, ...]
    began: float  # before the first statement was sent
    acknowledged: float | None = None  # when COMMIT returned; None: failed, outcome unknown


@dataclass
class LedgerStream:
    """A client writing ledger rows through the cluster endpoint as fast as it is answered;
    every fourth attempt is a BEGIN / two INSERTs / COMMIT transaction."""

    endpoint: str
    attempts: list[Attempt] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    pause: threading.Event = field(default_factory=threading.Event)
    paused: threading.Event = field(default_factory=threading.Event)

    def write(self) -> None:
        """The client's loop (in its own thread) until `stop`."""
        conn, next_id, count = None, 1, 0
        while not self.stop.is_set():
            if self.pause.is_set():
                self.paused.set()
                time.sleep(0.005)
                continue
            self.paused.clear()
            count += 1
            ids = (next_id, next_id + 1) if count % 4 == 0 else (next_id,)
            next_id += len(ids)
            attempt = Attempt(ids, time.time())
            try:
                if conn is None:
                    conn = connect(self.endpoint)
                with conn.cursor() as cursor:
                    if len(ids) == 1:
                        cursor.execute("INSERT INTO ledger (id) VALUES (%s)", ids)
                    else:
                        cursor.execute("BEGIN")
                        for row in ids:
                            cursor.execute("INSERT INTO ledger (id) VALUES (%s)", (row,))
                        cursor.execute("COMMIT")
                attempt.acknowledged = time.time()
            except (pymysql.MySQLError, OSError):
                conn = None
                time.sleep(0.01)
            self.attempts.append(attempt)

    def run_for(self, seconds: float) -> None:
        before = len(self.acknowledged())
        time.sleep(seconds)
        assert len(self.acknowledged()) > before, "the stream is not writing"

    def acknowledged(self) -> list[Attempt]:
        return [a for a in list(self.attempts) if a.acknowledged is not None]

    def idle(self, seconds: float) -> tuple[float, float]:
        """Stop writing for a while; the stretch in which nothing was in flight."""
        self.pause.set()
        wait_for(self.paused.is_set, timeout=10, what="the stream to pause")
        start = time.time()
        time.sleep(seconds)
        end = time.time()
        self.pause.clear()
        return start, end


@contextlib.contextmanager
def ledger_stream(endpoint: str) -> Iterator[LedgerStream]:
    """A ledger table and a client writing to it for the duration of the block."""
    with connect(endpoint) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE ledger (id BIGINT PRIMARY KEY)")
    stream = LedgerStream(endpoint)
    client = threading.Thread(target=stream.write, daemon=True)
    client.start()
    try:
        yield stream
    finally:
        stream.stop.set()
        client.join(15)


def judge(stream: list[Attempt], stored: set[int], point: float) -> dict[str, list[tuple[int, ...]]]:
    """The exactness rule, per attempt: what is wrong (empty lists when the restore is exact)."""
    missing = [a.ids for a in stream if a.acknowledged is not None and a.acknowledged <= point
               and not set(a.ids) <= stored]
    too_late = [a.ids for a in stream if a.began > point and set(a.ids) & stored]
    partial = [a.ids for a in stream if set(a.ids) & stored and not set(a.ids) <= stored]
    written = {i for a in stream for i in a.ids}
    unknown = sorted(stored - written)
    return {"missing": missing, "began after the point": too_late, "partial": partial,
            "never written": [(i,) for i in unknown]}


def assert_exact(stream: list[Attempt], stored: set[int], point: float) -> None:
    wrong = {what: ids for what, ids in judge(stream, stored, point).items() if ids}
    assert not wrong, f"restore to {moment(point).isoformat()} is not exact: " + "; ".join(
        f"{what}: {len(ids)} {ids[:5]}" for what, ids in wrong.items())


def neighbours(stream: list[Attempt], point: float) -> tuple[Attempt, Attempt]:
    """The last attempt acknowledged at or before the point and the first that began after it:
    a restore must hold the one and not the other."""
    before = max((a for a in stream if a.acknowledged is not None and a.acknowledged <= point),
                 key=lambda a: a.acknowledged or 0.0)
    after = min((a for a in stream if a.began > point), key=lambda a: a.began)
    return before, after


@dataclass
class History:
    """What happened to the source cluster, with the times the tests restore to."""

    cluster: Cluster
    engine: MariaDbCluster
    stream: list[Attempt]
    backup: BaseBackup
    doomed_ready: float  # table `doomed` and its row exist from here...
    doomed_dropping: float  # ...until DROP TABLE was sent
    idle: tuple[float, float]
    failover_requested: float
    failover_done: float
    writers: list[str]
    lag_samples: list[float]
    ended: float


@pytest.fixture(scope="module")
def history(emulator: Any, rds: Any) -> Iterator[History]:
    cluster = create_cluster(rds, [1, 0], engine=ENGINE, identifier="pitr-src", timeout=180)
    engine = emulator.store.runtime(REGION, cluster.identifier).engine
    backups = Path(emulator.state_dir) / "test-backups"
    lag: list[float] = []
    try:
        with ledger_stream(cluster.endpoint) as stream:
            stream.run_for(0.5)
            backup = engine.base_backup(backups / "early")
            stream.run_for(0.5)
            with connect(cluster.endpoint) as conn, conn.cursor() as cursor:
                cursor.execute("CREATE TABLE doomed (id INT PRIMARY KEY, note VARCHAR(20))")
                cursor.execute("INSERT INTO doomed VALUES (1, 'before the drop')")
                doomed_ready = time.time()
                stream.run_for(0.7)
                for _ in range(5):  # how far the archive trails the writer, while it writes
                    lag.append((datetime.now(timezone.utc) - engine.restorable_until()).total_seconds())
                    time.sleep(0.05)
                doomed_dropping = time.time()
                cursor.execute("DROP TABLE doomed")
            stream.run_for(0.5)
            idle = stream.idle(1.0)
            stream.run_for(0.7)
            old_writer, reader = cluster.writer(), cluster.readers()[0]
            failover_requested = time.time()
            rds.failover_db_cluster(DBClusterIdentifier=cluster.identifier, TargetDBInstanceIdentifier=reader)
            wait_for(lambda: cluster.writer() == reader, timeout=60, what=f"{reader} to become the writer")
            cluster.wait_settled()
            failover_done = time.time()
            stream.run_for(1.0)
        assert old_writer != reader
        ended = max(a.acknowledged for a in stream.acknowledged())
        wait_for(lambda: engine.restorable_until() >= moment(ended), timeout=10, what="the archive to catch up")
        yield History(cluster, engine, stream.attempts, backup, doomed_ready, doomed_dropping, idle,
                      failover_requested, failover_done, engine.history.writers(), lag, ended)
    finally:
        cluster.wait_settled()
        delete_cluster(cluster)


@pytest.fixture
def restore(emulator: Any, rds: Any) -> Iterator[Callable[..., tuple[Cluster, RestoredVolume, float]]]:
    """Restore into a new cluster through the engine contract, start its first instance on the
    restored volume; the cluster is deleted afterwards."""
    made: list[Cluster] = []

    def run(source: MariaDbCluster, backup: BaseBackup, point: datetime | None,
            name: str) -> tuple[Cluster, RestoredVolume, float]:
        rds.create_db_cluster(DBClusterIdentifier=name, Engine=ENGINE, MasterUsername=USER,
                              MasterUserPassword="not-used-by-a-restored-volume")
        made.append(Cluster(rds, name, []))
        target = emulator.store.runtime(REGION, name).engine
        started = time.monotonic()
        volume = target.restore_volume(source, backup, point)
        took = time.monotonic() - started
        rds.create_db_instance(DBInstanceIdentifier=f"{name}-1", DBClusterIdentifier=name, Engine=ENGINE,
                               DBInstanceClass="db.r6g.large")
        made[-1].instances.append(f"{name}-1")
        made[-1].wait_settled(180)
        return made[-1], volume, took

    yield run
    for cluster in made:
        cluster.wait_settled()
        delete_cluster(cluster)


def ledger_ids(cluster: Cluster) -> set[int]:
    return {row[0] for row in rows(cluster.endpoint, "SELECT id FROM ledger")}


def busiest_point(stream: list[Attempt], after: float, before: float) -> float:
    """Half way through an autocommit INSERT's round trip that follows an acknowledged attempt
    (in the middle of the stretch): the sharpest test of the boundary."""
    candidates = [a for b, a in zip(stream, stream[1:])
                  if after < b.began and b.acknowledged is not None and len(a.ids) == 1
                  and a.acknowledged is not None and a.acknowledged < before]
    attempt = candidates[len(candidates) // 2]
    return attempt.began + ((attempt.acknowledged or attempt.began) - attempt.began) / 2


def test_restore_to_a_point_inside_the_write_stream_is_exact(history: History, restore: Callable) -> None:
    point = busiest_point(history.stream, history.backup.taken_at.timestamp(), history.doomed_dropping)
    cluster, volume, took = restore(history.engine, history.backup, moment(point), "pitr-busy")
    stored = ledger_ids(cluster)
    assert_exact(history.stream, stored, moment(point).timestamp())
    kept, dropped = neighbours(history.stream, moment(point).timestamp())
    assert set(kept.ids) <= stored and not set(dropped.ids) & stored
    assert kept.acknowledged is not None and dropped.began - kept.acknowledged < 0.05, \
        "the point falls between two commits milliseconds apart"
    assert volume.reached == moment(point) and volume.resolution_s == 1e-6
    assert volume.replayed_bytes > 0 and took < 20, (volume, took)
    assert rows(cluster.endpoint, "SELECT @@gtid_binlog_pos")[0][0] == volume.position


def test_ddl_replays_a_table_created_then_dropped(history: History, restore: Callable) -> None:
    between = (history.doomed_ready + history.doomed_dropping) / 2
    cluster, _, _ = restore(history.engine, history.backup, moment(between), "pitr-ddl")
    assert rows(cluster.endpoint, "SELECT id, note FROM doomed") == [(1, "before the drop")]
    assert_exact(history.stream, ledger_ids(cluster), moment(between).timestamp())


def test_restore_to_a_point_in_an_idle_stretch_has_everything_before_it(history: History,
                                                                       restore: Callable) -> None:
    start, end = history.idle
    point = (start + end) / 2
    cluster, _, _ = restore(history.engine, history.backup, moment(point), "pitr-idle")
    stored = ledger_ids(cluster)
    assert_exact(history.stream, stored, moment(point).timestamp())
    before = {i for a in history.stream if a.acknowledged is not None and a.acknowledged <= start for i in a.ids}
    assert stored == before, "an idle point holds exactly what was acknowledged before the stretch"
    tables = {row[0] for row in rows(cluster.endpoint, "SHOW TABLES")}
    assert "doomed" not in tables, "the DROP TABLE replayed"


@pytest.mark.parametrize("where", ["old-writer-last-commit", "new-writer-stream"])
def test_restore_across_a_failover_stitches_both_writers_binlogs(history: History, restore: Callable,
                                                                  where: str) -> None:
    assert len(history.writers) == 2, f"the archive holds one history per writer: {history.writers}"
    if where == "old-writer-last-commit":  # the old writer's archive tail, drained when it rejoined
        point = max(a.acknowledged for a in history.stream
                    if a.acknowledged is not None and a.acknowledged < history.failover_requested)
    else:
        point = busiest_point(history.stream, history.failover_done, history.ended)
    cluster, volume, _ = restore(history.engine, history.backup, moment(point), f"pitr-{where}")
    stored = ledger_ids(cluster)
    assert_exact(history.stream, stored, moment(point).timestamp())
    kept, dropped = neighbours(history.stream, moment(point).timestamp())
    assert set(kept.ids) <= stored and not set(dropped.ids) & stored
    # The restored cluster's own history continues from the restored position.
    with connect(cluster.endpoint) as conn, conn.cursor() as cursor:
        cursor.execute("INSERT INTO ledger (id) VALUES (-1)")
        cursor.execute("SELECT @@gtid_binlog_pos")
        after = cursor.fetchone()[0]
    assert int(after.rsplit("-", 1)[1]) == int(volume.position.rsplit("-", 1)[1]) + 1


def test_a_writer_that_crashed_and_restarted_in_place_restores_on_both_sides_of_the_crash(
        emulator: Any, rds: Any, restore: Callable) -> None:
    """No reader, so the crash restarts the writer in place: its binlog moves to a new file and
    the archive resumes on the same history."""
    cluster = create_cluster(rds, [1], engine=ENGINE, identifier="pitr-crash", timeout=180)
    engine = emulator.store.runtime(REGION, cluster.identifier).engine
    try:
        with ledger_stream(cluster.endpoint) as stream:
            stream.run_for(0.3)
            backup = engine.base_backup(Path(emulator.state_dir) / "test-backups" / "crash")
            stream.run_for(0.5)
            killed = time.time()
            emulator.controls.kill_instance(instance=cluster.instances[0])
            wait_for(lambda: any(a.acknowledged and a.began > killed for a in stream.attempts), timeout=60,
                     what="writes after the restart")
            stream.run_for(0.5)
        assert engine.history.writers() == [cluster.instances[0]], "a restart in place keeps the history"
        last_before = max(a.acknowledged for a in stream.attempts if a.acknowledged and a.acknowledged < killed)
        after = busiest_point(stream.attempts, killed, time.time())
        for name, point in (("before", last_before), ("after", after)):
            wait_for(lambda: engine.restorable_until() >= moment(point), timeout=10, what="the archive")
            restored, _, _ = restore(engine, backup, moment(point), f"pitr-crash-{name}")
            assert_exact(stream.attempts, ledger_ids(restored), moment(point).timestamp())
    finally:
        cluster.wait_settled()
        delete_cluster(cluster)


def test_snapshot_restore_holds_exactly_the_backup(history: History, restore: Callable) -> None:
    cluster, volume, _ = restore(history.engine, history.backup, None, "pitr-snapshot")
    assert volume.replayed_bytes == 0 and volume.position == history.backup.position
    assert history.backup.started_at <= volume.reached <= history.backup.taken_at
    stored = ledger_ids(cluster)
    assert_exact(history.stream, stored, volume.reached.timestamp())
    assert rows(cluster.endpoint, "SELECT @@gtid_binlog_pos")[0][0] == history.backup.position


def test_restorable_time_trails_the_writer_by_the_archive_only(history: History) -> None:
    assert max(history.lag_samples) < 1.0, f"LatestRestorableTime lagged {history.lag_samples} s behind writes"
    until = history.engine.restorable_until()
    assert until >= moment(history.ended)
    assert (datetime.now(timezone.utc) - until).total_seconds() < 0.5, "caught up: restorable until now"


def test_points_the_backup_and_archive_cannot_give_are_refused(history: History, restore: Callable) -> None:
    started = time.monotonic()
    with pytest.raises(HistoryError, match="can be restored up to"):
        restore(history.engine, history.backup, moment(time.time() + 60), "pitr-future")
    with pytest.raises(HistoryError, match="holds commits made after"):
        restore(history.engine, history.backup, history.backup.started_at, "pitr-too-early")
    assert time.monotonic() - started < 5, "refused at once"


def test_pruning_drops_only_files_complete_before_the_oldest_kept_backup(history: History) -> None:
    engine = history.engine
    engine._query(engine.writer(), "FLUSH BINARY LOGS")  # the new writer's file so far is complete
    flushed = datetime.now(timezone.utc)
    wait_for(lambda: engine.restorable_until() >= flushed, timeout=10, what="the archive to follow the flush")
    archived = {h: [p.name for p in binlog_files(engine.history.archive_dir(h))] for h in history.writers}
    point = moment(busiest_point(history.stream, history.failover_done, history.ended))
    expected = engine.history.plan(history.backup.position, point)
    assert engine.prune_continuous_backup(history.backup.started_at) >= 1
    left = {h: [p.name for p in binlog_files(engine.history.archive_dir(h))] for h in history.writers}
    assert all(left[h] and left[h][-1] == archived[h][-1] for h in history.writers), (archived, left)
    assert engine.history.plan(history.backup.position, point) == expected, "the backup still restores"
    assert engine.restorable_until() >= moment(history.ended)
    assert engine.prune_continuous_backup(datetime.now(timezone.utc)) >= 1  # everything but the newest files
    with pytest.raises(HistoryError, match="lacks"):
        engine.history.plan(history.backup.position, point)


@pytest.mark.skipif(not os.environ.get("GAMEDAY_BENCH"), reason="a benchmark: set GAMEDAY_BENCH=1")
def test_replay_rate(emulator: Any, rds: Any, restore: Callable) -> None:
    """How fast a restore replays the binlog: many small commits after a base backup."""
    cluster = create_cluster(rds, [1], engine=ENGINE, identifier="pitr-bench", timeout=180)
    engine = emulator.store.runtime(REGION, cluster.identifier).engine
    try:
        with connect(cluster.endpoint) as conn, conn.cursor() as cursor:
            cursor.execute("CREATE TABLE bench (id BIGINT PRIMARY KEY, payload VARCHAR(200))")
            backup = engine.base_backup(Path(emulator.state_dir) / "test-backups" / "bench")
            count = int(os.environ.get("GAMEDAY_BENCH_ROWS", "20000"))
            for start in range(0, count, 10):  # ten-row transactions, as a busy application commits
                values = ", ".join(f"({i}, REPEAT('x', 100))" for i in range(start, start + 10))
                cursor.execute(f"INSERT INTO bench VALUES {values}")
        point = datetime.now(timezone.utc)
        wait_for(lambda: engine.restorable_until() >= point, timeout=30, what="the archive")
        restored, volume, took = restore(engine, backup, point, "pitr-bench-restored")
        assert rows(restored.endpoint, "SELECT count(*) FROM bench")[0][0] == count
        print(f"\nreplayed {count // 10} transactions, {volume.replayed_bytes / 1e6:.1f} MB of binlog in {took:.2f} s "
              f"(restore_volume total): {volume.replayed_bytes / 1e6 / took:.1f} MB/s, {count / 10 / took:.0f} tx/s")
    finally:
        delete_cluster(cluster)
