"""Point-in-time restore on Aurora PostgreSQL, judged against an independent ledger: a write loop
records when each INSERT began and when its COMMIT was acknowledged, and a restore to T must hold
every row acknowledged at or before T and none begun after it (in between is the engine's call).
Real engines, real boto3, one source cluster shared by the module where that hides nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from harness.emulator.controls import EmulatorControlClient
from tests.emulator.support import Cluster, WriteLoop, create_cluster, delete_cluster, wait_for

ENGINE = "aurora-postgresql"


@pytest.fixture(scope="module")
def source(rds: Any) -> Iterator[Cluster]:
    """A cluster with a writer whose continuous backup has started."""
    cluster = create_cluster(rds, [1], prefix="pitr")
    wait_for(lambda: cluster.describe().get("EarliestRestorableTime"), timeout=60, what="the first backup")
    yield cluster
    cluster.wait_settled()
    delete_cluster(cluster)


@pytest.fixture
def restored(rds: Any) -> Iterator[Callable[..., Cluster]]:
    """Restore a cluster (any restore call), wait until it is available, give it instances; deleted
    after the test."""
    made: list[Cluster] = []

    def restore(call: Callable[..., Any], identifier: str, tiers: tuple[int, ...] = (1,), **params: Any) -> Cluster:
        cluster = Cluster(rds, identifier, [])
        made.append(cluster)
        answer = call(DBClusterIdentifier=identifier, **params)["DBCluster"]
        assert answer["Status"] == "creating" and answer["DBClusterMembers"] == []
        status = wait_for(lambda: (s := cluster.describe()["Status"]) != "creating" and s, timeout=120,
                          what=f"{identifier} to be restored")
        assert status == "available", status
        for index, tier in enumerate(tiers):
            name = f"{identifier}-{index + 1}"
            rds.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier=identifier, Engine=ENGINE,
                                   DBInstanceClass="db.r6g.large", PromotionTier=tier)
            cluster.instances.append(name)
            cluster.wait_settled()
        return cluster

    yield restore
    for cluster in made:
        cluster.wait_settled()
        delete_cluster(cluster)


def writes(cluster: Cluster) -> WriteLoop:
    """A write loop on an empty ledger (the source is shared by the module's tests)."""
    loop = WriteLoop(cluster)
    with cluster.connect() as conn:
        conn.execute("TRUNCATE ledger")
    return loop


def ledger_ids(cluster: Cluster) -> set[int]:
    with cluster.connect() as conn:
        return {row[0] for row in conn.execute("SELECT id FROM ledger")}


def judge(loop: WriteLoop, point: datetime, restored: set[int]) -> None:
    """Every write acknowledged at or before `point` is there, none begun after it is."""
    must_have = {i for i, acked in loop.acked_at.items() if acked <= point}
    must_not = {i for i, begun in loop.begun_at.items() if begun > point}
    assert must_have and must_not, "the point must fall inside the write stream"
    missing, extra = sorted(must_have - restored), sorted(restored & must_not)
    assert not missing, f"{len(missing)} writes acknowledged by {point} are missing, first {missing[:5]}"
    assert not extra, f"{len(extra)} writes begun after {point} are there, first {extra[:5]}"
    assert restored <= set(loop.begun_at), "the restored cluster holds writes nobody made"


def test_a_restore_lands_exactly_on_the_point_asked(source: Cluster, rds: Any, restored: Any) -> None:
    with writes(source) as loop:
        time.sleep(1.0)
        middle = loop.acknowledged[len(loop.acknowledged) // 2]
        time.sleep(0.5)
    # At the very moment a commit was acknowledged: it is in, the next one (begun later) is not.
    exact = loop.acked_at[middle]
    started = time.monotonic()
    target = restored(rds.restore_db_cluster_to_point_in_time, "pitr-exact", SourceDBClusterIdentifier=source.identifier,
                      RestoreToTime=exact)
    assert time.monotonic() - started < 30, "a restore of a small cluster takes seconds"
    assert ledger_ids(target) == set(range(1, middle + 1))
    description = target.describe()
    assert description["Engine"] == ENGINE and description["MasterUsername"] == "master"
    assert description["DatabaseName"] == "app" and "CloneGroupId" not in description


def test_a_restore_inside_a_steady_write_stream_keeps_what_was_acknowledged(source: Cluster, rds: Any,
                                                                              restored: Any) -> None:
    with writes(source) as loop:
        time.sleep(0.8)
        point = datetime.now(UTC)
        time.sleep(0.8)
    target = restored(rds.restore_db_cluster_to_point_in_time, "pitr-stream", SourceDBClusterIdentifier=source.identifier,
                      RestoreToTime=point, Port=5433, DeletionProtection=False, BackupRetentionPeriod=3,
                      Tags=[{"Key": "team", "Value": "sre"}], VpcSecurityGroupIds=["sg-1"], DBSubnetGroupName="default")
    described = target.describe()
    assert (described["Port"], described["BackupRetentionPeriod"], described["DBSubnetGroup"]) == (5433, 3, "default")
    assert described["VpcSecurityGroups"] == [{"VpcSecurityGroupId": "sg-1", "Status": "active"}]
    assert described["TagList"] == [{"Key": "team", "Value": "sre"}]
    with target.connect(port=5433) as conn:
        restored_rows = {row[0] for row in conn.execute("SELECT id FROM ledger")}
    judge(loop, point, restored_rows)
    events = rds.describe_events(SourceType="db-cluster", SourceIdentifier="pitr-stream")["Events"]
    assert "DB cluster created." in [e["Message"] for e in events]


def test_the_latest_restorable_time_holds_every_acknowledged_write(source: Cluster, rds: Any, restored: Any) -> None:
    with writes(source) as loop:
        time.sleep(0.5)
    described = source.describe()
    latest, earliest = described["LatestRestorableTime"], described["EarliestRestorableTime"]
    assert earliest <= latest and abs((datetime.now(UTC) - latest).total_seconds()) < 2, \
        "LatestRestorableTime is now: the storage nodes hold every acknowledged commit"
    # The source is idle: the point is after its last commit, so the restore replays the WAL to its end.
    target = restored(rds.restore_db_cluster_to_point_in_time, "pitr-latest", SourceDBClusterIdentifier=source.identifier,
                      UseLatestRestorableTime=True)
    assert set(loop.acknowledged) <= ledger_ids(target)


def test_a_clone_is_a_copy_reported_in_the_source_clone_group(source: Cluster, rds: Any, restored: Any) -> None:
    with source.connect() as conn:
        conn.execute("INSERT INTO ledger (id) VALUES (-1) ON CONFLICT DO NOTHING")
    clone = restored(rds.restore_db_cluster_to_point_in_time, "pitr-clone", SourceDBClusterIdentifier=source.identifier,
                     RestoreType="copy-on-write", UseLatestRestorableTime=True)
    group = clone.describe()["CloneGroupId"]
    assert group == source.describe()["CloneGroupId"]
    members = rds.describe_db_clusters(Filters=[{"Name": "clone-group-id", "Values": [group]}])["DBClusters"]
    assert sorted(c["DBClusterIdentifier"] for c in members) == sorted([source.identifier, "pitr-clone"])
    assert -1 in ledger_ids(clone)
    with clone.connect() as conn:  # a real copy: its writes stay its own
        conn.execute("INSERT INTO ledger (id) VALUES (-2)")
    assert -2 not in ledger_ids(source)


def test_the_negative_control_lands_a_restore_earlier_than_asked_once(emulator: Any, source: Cluster, rds: Any,
                                                                      restored: Any) -> None:
    with writes(source) as loop:
        time.sleep(1.0)
        point = datetime.now(UTC)
        time.sleep(0.3)
    controls = EmulatorControlClient(emulator.endpoint_url, emulator.control_token)  # as the harness reaches it
    assert controls.set_restore_offset(cluster=source.identifier, seconds=0.5) == 0.5
    early = restored(rds.restore_db_cluster_to_point_in_time, "pitr-early", SourceDBClusterIdentifier=source.identifier,
                     RestoreToTime=point)
    early_rows = ledger_ids(early)
    judge(loop, point - timedelta(seconds=0.5), early_rows)
    lost = {i for i, acked in loop.acked_at.items() if point - timedelta(seconds=0.5) < acked <= point} - early_rows
    assert len(lost) > 10, "the control makes the restore lose what was acknowledged in its last half second"
    exact = restored(rds.restore_db_cluster_to_point_in_time, "pitr-exact-again",
                     SourceDBClusterIdentifier=source.identifier, RestoreToTime=point)
    judge(loop, point, ledger_ids(exact))


def test_a_restore_follows_the_source_through_failovers_and_the_restored_cluster_works(
        emulator: Any, rds: Any, cluster_factory: Any, restored: Any) -> None:
    cluster = cluster_factory([1, 0])
    wait_for(lambda: cluster.describe().get("EarliestRestorableTime"), timeout=60, what="the first backup")
    points = []
    with writes(cluster) as loop:
        for _ in range(2):  # two timeline switches after the base backup
            time.sleep(0.5)
            points.append(datetime.now(UTC))
            before = cluster.writer()
            rds.failover_db_cluster(DBClusterIdentifier=cluster.identifier)
            wait_for(lambda: cluster.writer() != before, timeout=60, what="the failover")
            cluster.wait_settled()
        time.sleep(0.5)
        points.append(datetime.now(UTC))
        time.sleep(0.3)
    assert loop.failures, "writes failed during the failovers (their outcome is unknown, never judged)"
    between = restored(rds.restore_db_cluster_to_point_in_time, "pitr-tl2", SourceDBClusterIdentifier=cluster.identifier,
                       RestoreToTime=points[1])
    judge(loop, points[1], ledger_ids(between))
    after = restored(rds.restore_db_cluster_to_point_in_time, "pitr-tl3", SourceDBClusterIdentifier=cluster.identifier,
                     RestoreToTime=points[2], tiers=(1, 0))
    judge(loop, points[2], ledger_ids(after))

    # The restored cluster is a cluster like any other: a writer, a reader, a failover, its own backups.
    with after.connect() as conn:
        conn.execute("INSERT INTO ledger (id) VALUES (-10)")
    writer = after.writer()
    rds.failover_db_cluster(DBClusterIdentifier="pitr-tl3")
    wait_for(lambda: after.writer() != writer, timeout=60, what="the restored cluster's failover")
    after.wait_settled()
    with after.connect() as conn:
        conn.execute("INSERT INTO ledger (id) VALUES (-11)")
        assert {-10, -11} <= {row[0] for row in conn.execute("SELECT id FROM ledger WHERE id < 0")}
    wait_for(lambda: set(emulator.controls.call("storage_status", {"cluster": "pitr-tl3"}).values()) == {"running"},
             timeout=10, what="the restored cluster's own six storage nodes")
    wait_for(lambda: after.describe().get("EarliestRestorableTime"), timeout=60, what="the restored cluster's backup")
