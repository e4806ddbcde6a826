"""Backtrack on Aurora MySQL (MariaDB), through boto3 against real engines, judged by a ledger.

One cluster (a writer and a reader, BacktrackWindow one hour) lives through a scripted story while
a client writes a steady stream through the cluster endpoint, recording when each attempt began and
when COMMIT returned: a table created and later dropped, then backtracks, each to a millisecond in
the middle of the stream. The tests run in order on that cluster (each backtrack moves the same
cluster): rewind to before the drop, forward again to after it (back and forth), forward into the
branch the first backtrack began, and the negative control. Each checks what a user would: every
write acknowledged before the point is there, none begun after it, the dropped table back or gone,
the same writer and endpoints, the reader identical to the writer, statuses and events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pymysql
import pytest

from harness.emulator.event_messages import BACKTRACK_WINDOW_MET, INSTANCE_RESTARTED, INSTANCE_SHUTDOWN
from tests.emulator.support import PASSWORD, USER, Cluster, delete_cluster, wait_for
from tests.emulator.test_backups_mariadb import Attempt, LedgerStream, busiest_point, connect, ledger_ids, rows

ENGINE = "aurora-mysql"
WINDOW_S = 3600


def ms(point: float) -> datetime:
    """A moment as BacktrackTo carries it: UTC, whole milliseconds."""
    moment = datetime.fromtimestamp(point, timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Stretch:
    """Attempts begun in [began_from, began_to) belong to the branch judged at `point`."""

    began_from: float
    began_to: float
    point: float


def judge(stream: list[Attempt], stored: set[int], stretches: list[Stretch]) -> dict[str, list[tuple[int, ...]]]:
    """Exactness per stretch of the history the cluster now holds: each attempt acknowledged at or
    before its stretch's point is there, none begun after it, none in part, nothing never written."""
    wrong: dict[str, list[tuple[int, ...]]] = {"missing": [], "began after the point": [], "partial": []}
    for stretch in stretches:
        for a in stream:
            if not stretch.began_from <= a.began < stretch.began_to:
                continue
            if a.acknowledged is not None and a.acknowledged <= stretch.point and not set(a.ids) <= stored:
                wrong["missing"].append(a.ids)
            if a.began > stretch.point and set(a.ids) & stored:
                wrong["began after the point"].append(a.ids)
            if set(a.ids) & stored and not set(a.ids) <= stored:
                wrong["partial"].append(a.ids)
    written = {i for a in stream for i in a.ids}
    wrong["never written"] = [(i,) for i in sorted(stored - written)]
    return {what: ids for what, ids in wrong.items() if ids}


def summary(wrong: dict[str, list[tuple[int, ...]]]) -> str:
    return "; ".join(f"{what}: {len(ids)} {ids[:5]}" for what, ids in wrong.items())


@dataclass
class Story:
    """The shared cluster, its stream, and what has happened to it so far."""

    rds: Any
    emulator: Any
    cluster: Cluster
    stream: LedgerStream
    doomed_ready: float
    doomed_dropping: float
    writer: str
    endpoints: dict[str, str]
    backtracks: list[dict[str, Any]] = field(default_factory=list)  # as completed, with the request's times

    def attempts(self) -> list[Attempt]:
        return list(self.stream.attempts)

    def backtrack(self, point: datetime, **extra: Any) -> dict[str, Any]:
        """BacktrackDBCluster; checks it answers pending with the cluster backtracking, waits for it to
        complete (seeing it applying) and the cluster to settle; returns the answer with times."""
        requested = time.time()
        answer = self.rds.backtrack_db_cluster(DBClusterIdentifier=self.cluster.identifier, BacktrackTo=point,
                                               **extra)
        assert answer["Status"] == "pending", answer
        assert self.cluster.describe()["Status"] == "backtracking"
        seen: set[str] = set()

        def done() -> bool:
            status = self.rds.describe_db_cluster_backtracks(
                DBClusterIdentifier=self.cluster.identifier,
                BacktrackIdentifier=answer["BacktrackIdentifier"])["DBClusterBacktracks"][0]["Status"]
            seen.add(status)
            return status in ("completed", "failed")

        wait_for(done, timeout=120, interval=0.05, what="the backtrack to finish")
        self.cluster.wait_settled(120)
        completed = time.time()
        final = self.rds.describe_db_cluster_backtracks(
            DBClusterIdentifier=self.cluster.identifier,
            BacktrackIdentifier=answer["BacktrackIdentifier"])["DBClusterBacktracks"][0]
        record = {**final, "requested": requested, "completed": completed, "seen": seen}
        self.backtracks.append(record)
        return record

    def how(self) -> str:
        """How the engine rewound the last time: by flashback (the writer and the readers each
        undoing the change on their own data, as Aurora's readers need no copy) or by rebuilding
        from a backup (the readers re-cloned)."""
        return self.rewound().how

    def rewound(self) -> Any:
        rewound = self.emulator.store.runtime("us-east-1", self.cluster.identifier).rewound
        assert rewound is not None
        return rewound

    def held_connection(self) -> pymysql.Connection:
        return connect(self.cluster.instance_address(self.writer))

    def reader_matches_writer(self) -> None:
        """Pause the stream; the reader holds exactly the writer's data once it has caught up."""
        self.stream.pause.set()
        wait_for(self.stream.paused.is_set, timeout=10, what="the stream to pause")
        try:
            writer_ids = ledger_ids(self.cluster)
            reader = self.cluster.instance_address(self.cluster.readers()[0])
            wait_for(lambda: {r[0] for r in rows(reader, "SELECT id FROM ledger")} == writer_ids, timeout=30,
                     what="the reader to hold exactly the writer's ledger")
            tables = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'app' ORDER BY 1"
            assert rows(reader, tables) == rows(self.cluster.endpoint, tables)
        finally:
            self.stream.pause.clear()


@pytest.fixture(scope="module")
def story(emulator: Any, rds: Any) -> Iterator[Story]:
    identifier = "bt-story"
    rds.create_db_cluster(DBClusterIdentifier=identifier, Engine=ENGINE, MasterUsername=USER,
                          MasterUserPassword=PASSWORD, DatabaseName="app", BacktrackWindow=WINDOW_S)
    cluster = Cluster(rds, identifier, [])
    for index, tier in enumerate([1, 0]):
        name = f"{identifier}-{index + 1}"
        rds.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier=identifier, Engine=ENGINE,
                               DBInstanceClass="db.r6g.large", PromotionTier=tier)
        cluster.instances.append(name)
    try:
        cluster.wait_settled(180)
        wait_for(lambda: cluster.describe().get("EarliestBacktrackTime"), timeout=60,
                 what="the first backup (the earliest backtrack time)")
        with connect(cluster.endpoint) as conn, conn.cursor() as cursor:
            cursor.execute("CREATE TABLE ledger (id BIGINT PRIMARY KEY)")
        stream = LedgerStream(cluster.endpoint)
        client = threading.Thread(target=stream.write, daemon=True)
        client.start()
        try:
            stream.run_for(0.8)
            with connect(cluster.endpoint) as conn, conn.cursor() as cursor:
                cursor.execute("CREATE TABLE doomed (id INT PRIMARY KEY, note VARCHAR(20))")
                cursor.execute("INSERT INTO doomed VALUES (1, 'before the drop')")
                ready = time.time()
                stream.run_for(0.8)
                dropping = time.time()
                cursor.execute("DROP TABLE doomed")
            stream.run_for(0.8)
            writer = cluster.writer()
            endpoints = {"cluster": cluster.endpoint, "reader": cluster.reader_endpoint,
                         **{i: cluster.instance_address(i) for i in cluster.instances}}
            yield Story(rds, emulator, cluster, stream, ready, dropping, writer, endpoints)
        finally:
            stream.stop.set()
            client.join(15)
    finally:
        cluster.wait_settled(120)
        delete_cluster(cluster)


def test_describe_shows_the_window_a_real_earliest_time_and_change_records(story: Story) -> None:
    described = story.cluster.describe()
    assert described["BacktrackWindow"] == WINDOW_S
    earliest = described["EarliestBacktrackTime"]
    assert described["ClusterCreateTime"] <= earliest <= datetime.now(timezone.utc)
    assert described["BacktrackConsumedChangeRecords"] > len(story.stream.acknowledged()) / 2


def test_backtrack_to_before_a_drop_is_exact_and_brings_the_table_back(story: Story) -> None:
    point = ms(busiest_point(story.attempts(), story.doomed_ready, story.doomed_dropping))
    held = story.held_connection()
    record = story.backtrack(point, Force=True)
    assert record["Status"] == "completed" and {"applying", "completed"} <= record["seen"], record["seen"]
    assert record["BacktrackTo"] == point and record["BacktrackedFrom"].timestamp() <= record["requested"] + 1
    stored = ledger_ids(story.cluster)
    wrong = judge(story.attempts(), stored, [Stretch(0, record["requested"], point.timestamp())])
    assert not wrong, f"backtrack to {point.isoformat()} is not exact: {summary(wrong)}"
    assert rows(story.cluster.endpoint, "SELECT id, note FROM doomed") == [(1, "before the drop")]
    assert story.how() == "rebuild", "a DROP TABLE passed over cannot be flashed back"
    assert story.rewound().readers_flashed_back == (), "readers are re-cloned from the rebuilt writer"
    with pytest.raises((pymysql.MySQLError, OSError)):
        with held.cursor() as cursor:
            cursor.execute("SELECT 1")
    assert story.cluster.writer() == story.writer, "a backtrack keeps the writer"
    assert {"cluster": story.cluster.endpoint, "reader": story.cluster.reader_endpoint,
            **{i: story.cluster.instance_address(i) for i in story.cluster.instances}} == story.endpoints
    story.stream.run_for(0.3)  # the application writes again, on the new branch
    story.reader_matches_writer()


def test_backtrack_forward_again_to_after_the_drop(story: Story) -> None:
    first = story.backtracks[0]
    point = ms(busiest_point(story.attempts(), story.doomed_dropping + 0.05, first["requested"] - 0.05))
    record = story.backtrack(point)
    assert record["Status"] == "completed" and record["BacktrackTo"] == point
    stored = ledger_ids(story.cluster)
    wrong = judge(story.attempts(), stored, [Stretch(0, first["requested"], point.timestamp())])
    assert not wrong, f"forward to {point.isoformat()} is not exact: {summary(wrong)}"
    assert "doomed" not in {r[0] for r in rows(story.cluster.endpoint, "SHOW TABLES")}, "the drop is back"
    new_branch = {i for a in story.attempts() if first["completed"] <= a.began < record["requested"]
                  and a.acknowledged for i in a.ids}
    assert new_branch
    assert not new_branch & stored, "the writes after the first backtrack are on another branch"
    story.stream.run_for(0.3)
    story.reader_matches_writer()


def test_backtrack_into_the_branch_a_backtrack_began(story: Story) -> None:
    """Forward to a moment after the first backtrack: its rewound data plus what was written on it."""
    first, second = story.backtracks[0], story.backtracks[1]
    point = ms(busiest_point(story.attempts(), first["completed"], second["requested"] - 0.05))
    record = story.backtrack(point)
    assert record["Status"] == "completed"
    stored = ledger_ids(story.cluster)
    wrong = judge(story.attempts(), stored, [Stretch(0, first["requested"], first["BacktrackTo"].timestamp()),
                                             Stretch(first["completed"], second["requested"], point.timestamp())])
    assert not wrong, f"backtrack into the first branch at {point.isoformat()} is not exact: {summary(wrong)}"
    assert rows(story.cluster.endpoint, "SELECT id, note FROM doomed") == [(1, "before the drop")]
    story.stream.run_for(0.3)
    story.reader_matches_writer()


def test_a_backtrack_over_row_changes_only_flashes_them_back(story: Story) -> None:
    """On the current branch, with only the stream's INSERTs since the point: undone in place."""
    first, second, third = story.backtracks[:3]
    story.stream.run_for(1.0)
    point = ms(busiest_point(story.attempts(), third["completed"] + 0.1, time.time() - 0.3))
    record = story.backtrack(point)
    assert record["Status"] == "completed" and story.how() == "flashback"
    assert story.rewound().readers_flashed_back == tuple(story.cluster.readers()), "no copy of the writer needed"
    stored = ledger_ids(story.cluster)
    wrong = judge(story.attempts(), stored, [Stretch(0, first["requested"], first["BacktrackTo"].timestamp()),
                                             Stretch(first["completed"], second["requested"],
                                                     third["BacktrackTo"].timestamp()),
                                             Stretch(third["completed"], record["requested"], point.timestamp())])
    assert not wrong, f"flashback to {point.isoformat()} is not exact: {summary(wrong)}"
    story.stream.run_for(0.3)
    story.reader_matches_writer()


def test_a_point_in_time_restore_follows_the_branch_the_point_is_on(story: Story, rds: Any) -> None:
    """After backtracks, a moment of a branch they passed over restores to that branch's data, and a
    restore can enable Backtrack on the new cluster."""
    first = story.backtracks[0]
    point = ms(busiest_point(story.attempts(), story.doomed_dropping + 0.05, first["requested"] - 0.05))
    answer = rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier="bt-restored",
                                                     SourceDBClusterIdentifier=story.cluster.identifier,
                                                     RestoreToTime=point, BacktrackWindow=600)["DBCluster"]
    restored = Cluster(rds, "bt-restored", [])
    try:
        assert answer["BacktrackWindow"] == 600
        wait_for(lambda: restored.describe()["Status"] == "available", timeout=120, what="the restore")
        rds.create_db_instance(DBInstanceIdentifier="bt-restored-1", DBClusterIdentifier="bt-restored",
                               Engine=ENGINE, DBInstanceClass="db.r6g.large")
        restored.instances.append("bt-restored-1")
        restored.wait_settled(120)
        stored = ledger_ids(restored)
        wrong = judge(story.attempts(), stored, [Stretch(0, first["requested"], point.timestamp())])
        assert not wrong, f"restore to {point.isoformat()} on the passed-over branch is not exact: {summary(wrong)}"
        assert stored <= {i for a in story.attempts() if a.began < first["requested"] for i in a.ids}
        assert "doomed" not in {r[0] for r in rows(restored.endpoint, "SHOW TABLES")}
    finally:
        restored.wait_settled(120)
        delete_cluster(restored)


def test_refusals_change_nothing(story: Story, rds: Any) -> None:
    identifier = story.cluster.identifier
    before = story.cluster.describe()
    earliest = before["EarliestBacktrackTime"]

    def code(**params: Any) -> str:
        with pytest.raises(rds.exceptions.ClientError) as info:
            rds.backtrack_db_cluster(**{"DBClusterIdentifier": identifier, **params})
        return info.value.response["Error"]["Code"]

    assert code(BacktrackTo=datetime.now(timezone.utc).replace(year=2100)) == "InvalidParameterValue"
    assert code(BacktrackTo=earliest.replace(year=earliest.year - 1)) == "InvalidParameterValue"
    assert code(DBClusterIdentifier="bt-nobody", BacktrackTo=earliest) == "DBClusterNotFoundFault"
    with pytest.raises(rds.exceptions.DBClusterBacktrackNotFoundFault):
        rds.describe_db_cluster_backtracks(DBClusterIdentifier=identifier,
                                           BacktrackIdentifier="0e4ae3c6-0000-4000-8000-000000000000")
    rds.create_db_cluster(DBClusterIdentifier="bt-pg", Engine="aurora-postgresql", MasterUsername=USER,
                          MasterUserPassword=PASSWORD)
    pg = Cluster(rds, "bt-pg", [])
    try:
        pg.wait_settled()
        assert code(DBClusterIdentifier="bt-pg", BacktrackTo=earliest) == "InvalidParameterCombination"
    finally:
        delete_cluster(pg)
    assert len(rds.describe_db_cluster_backtracks(DBClusterIdentifier=identifier)["DBClusterBacktracks"]) == \
        len(story.backtracks)
    assert story.cluster.describe()["Status"] == "available"


def test_statuses_and_events(story: Story, rds: Any) -> None:
    listed = rds.describe_db_cluster_backtracks(DBClusterIdentifier=story.cluster.identifier)["DBClusterBacktracks"]
    assert [b["BacktrackIdentifier"] for b in listed] == [b["BacktrackIdentifier"] for b in story.backtracks[::-1]]
    completed = rds.describe_db_cluster_backtracks(
        DBClusterIdentifier=story.cluster.identifier,
        Filters=[{"Name": "db-cluster-backtrack-status", "Values": ["completed"]}])["DBClusterBacktracks"]
    assert len(completed) == len(story.backtracks)
    events = rds.describe_events(SourceType="db-cluster", SourceIdentifier=story.cluster.identifier,
                                 Duration=60)["Events"]
    assert [e["Message"] for e in events].count(BACKTRACK_WINDOW_MET) == len(story.backtracks)
    for instance in story.cluster.instances:
        messages = [e["Message"] for e in rds.describe_events(SourceType="db-instance", SourceIdentifier=instance,
                                                              Duration=60)["Events"]]
        assert messages.count(INSTANCE_SHUTDOWN) >= len(story.backtracks), (instance, messages)
        assert messages.count(INSTANCE_RESTARTED) >= len(story.backtracks), (instance, messages)


def test_a_backtrack_that_cannot_rebuild_fails_and_changes_nothing(story: Story, monkeypatch: Any) -> None:
    """The rebuild breaks (a DDL since the point rules out a flashback): the backtrack is `failed`,
    the cluster `available` again on its data as it was, the same writer taking writes."""
    point = ms(time.time() - 0.2)
    with connect(story.cluster.endpoint) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE kept (id INT PRIMARY KEY)")
    engine = story.emulator.store.runtime("us-east-1", story.cluster.identifier).engine

    def broken(*args: Any) -> None:
        raise RuntimeError("the rebuild broke")

    monkeypatch.setattr(engine, "_replay", broken)
    before = len(story.backtracks)
    record = story.backtrack(point)
    monkeypatch.undo()
    assert record["Status"] == "failed" and len(story.backtracks) == before + 1
    assert "kept" in {r[0] for r in rows(story.cluster.endpoint, "SHOW TABLES")}, "nothing was rewound"
    assert story.cluster.writer() == story.writer
    story.stream.run_for(0.3)
    story.reader_matches_writer()
    story.backtracks.pop()  # the later tests build on completed backtracks


def test_negative_control_lands_early_and_the_checker_sees_the_missing_writes(story: Story) -> None:
    last = story.backtracks[-1]
    story.stream.run_for(2.5)
    point = ms(busiest_point(story.attempts(), last["completed"] + 2.2, time.time()))
    story.emulator.controls.set_restore_offset(cluster=story.cluster.identifier, seconds=2.0)
    record = story.backtrack(point)
    assert record["Status"] == "completed" and record["BacktrackTo"] == point, "the control reports the point asked"
    stored = ledger_ids(story.cluster)
    wrong = judge(story.attempts(), stored, [Stretch(last["completed"], record["requested"], point.timestamp())])
    assert wrong.get("missing"), "landing 2 s early must lose acknowledged writes"
    acked = {a.ids: a.acknowledged for a in story.attempts()}
    assert all(point.timestamp() - 2.0 - 0.05 < (acked[ids] or 0) <= point.timestamp() for ids in wrong["missing"])


def test_a_backtrack_across_a_failover_is_exact(story: Story, rds: Any) -> None:
    """A failover since the point: the new writer's own binlog holds what the old one wrote after
    the point (it replicated it), so the change is undone on it all the same, exactly."""
    last = story.backtracks[-1]
    story.stream.run_for(1.0)
    point = ms(busiest_point(story.attempts(), last["completed"] + 0.1, time.time() - 0.1))
    reader = story.cluster.readers()[0]
    rds.failover_db_cluster(DBClusterIdentifier=story.cluster.identifier, TargetDBInstanceIdentifier=reader)
    wait_for(lambda: story.cluster.writer() == reader, timeout=60, what=f"{reader} to become the writer")
    story.cluster.wait_settled(120)
    story.stream.run_for(0.5)
    record = story.backtrack(point)
    assert record["Status"] == "completed" and story.how() == "flashback"
    assert story.rewound().readers_flashed_back == (), "the old writer, re-cloned after the point, is re-cloned"
    assert story.cluster.writer() == reader, "the backtrack keeps the writer the failover made"
    stored = ledger_ids(story.cluster)
    wrong = judge(story.attempts(), stored, [Stretch(last["completed"], record["requested"], point.timestamp())])
    assert not wrong, f"backtrack across a failover to {point.isoformat()} is not exact: {summary(wrong)}"
    story.stream.run_for(0.3)
    story.reader_matches_writer()
