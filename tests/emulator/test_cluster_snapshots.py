"""Cluster snapshots and the restore API through real boto3 (on Aurora PostgreSQL): automated and
manual snapshots, copies, tags, the paginator and waiters, final snapshots, retention, and the
refusals AWS answers bad requests with, none of which creates anything."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.support import Cluster, create_cluster, delete_cluster, wait_for

ENGINE = "aurora-postgresql"
FAST = {"Delay": 0.2, "MaxAttempts": 300}  # waiter polling for an emulator that answers in seconds


@pytest.fixture(scope="module")
def source(rds: Any) -> Iterator[Cluster]:
    cluster = create_cluster(rds, [1], prefix="snap")
    with cluster.connect() as conn:
        conn.execute("CREATE TABLE items (name text PRIMARY KEY)")
        conn.execute("INSERT INTO items VALUES ('before')")
    wait_for(lambda: cluster.describe().get("EarliestRestorableTime"), timeout=60, what="the first backup")
    yield cluster
    cluster.wait_settled()
    delete_cluster(cluster)


def error_code(call: Any, **params: Any) -> str:
    with pytest.raises(Exception) as info:
        call(**params)
    return info.value.response["Error"]["Code"]  # type: ignore[attr-defined]


def snapshot(rds: Any, identifier: str) -> dict[str, Any]:
    return rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=identifier)["DBClusterSnapshots"][0]


def snapshot_ids(rds: Any, **params: Any) -> set[str]:
    pages = rds.get_paginator("describe_db_cluster_snapshots").paginate(**params)
    return {s["DBClusterSnapshotIdentifier"] for page in pages for s in page["DBClusterSnapshots"]}


def manual_snapshot_ids(rds: Any) -> set[str]:
    """What a request could have created (automated backups come and go on their own)."""
    return snapshot_ids(rds, SnapshotType="manual")


def cluster_ids(rds: Any) -> set[str]:
    return {c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]}


def restore_and_read(rds: Any, identifier: str, snapshot_id: str) -> set[str]:
    """Restore a snapshot into a new cluster, give it a writer, read its items, delete it."""
    described = rds.restore_db_cluster_from_snapshot(DBClusterIdentifier=identifier, SnapshotIdentifier=snapshot_id,
                                                     Engine=ENGINE)["DBCluster"]
    assert described["Status"] == "creating"
    rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier=identifier, WaiterConfig=FAST)
    rds.create_db_instance(DBInstanceIdentifier=f"{identifier}-1", DBClusterIdentifier=identifier, Engine=ENGINE,
                           DBInstanceClass="db.r6g.large")
    cluster = Cluster(rds, identifier, [f"{identifier}-1"])
    cluster.wait_settled()
    with cluster.connect() as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM items")}
    delete_cluster(cluster)
    return names


def test_a_cluster_without_data_has_no_restorable_time_nor_snapshot(rds: Any) -> None:
    rds.create_db_cluster(DBClusterIdentifier="snap-empty", Engine=ENGINE, MasterUsername="master",
                          MasterUserPassword="emulator-test-pw-1")
    described = rds.describe_db_clusters(DBClusterIdentifier="snap-empty")["DBClusters"][0]
    assert "EarliestRestorableTime" not in described and "LatestRestorableTime" not in described
    before = manual_snapshot_ids(rds)
    assert error_code(rds.create_db_cluster_snapshot, DBClusterIdentifier="snap-empty",
                      DBClusterSnapshotIdentifier="never") == "InvalidDBClusterStateFault"
    assert error_code(rds.restore_db_cluster_to_point_in_time, DBClusterIdentifier="never",
                      SourceDBClusterIdentifier="snap-empty", UseLatestRestorableTime=True) == "InvalidRestoreFault"
    assert error_code(rds.delete_db_cluster, DBClusterIdentifier="snap-empty",
                      FinalDBSnapshotIdentifier="never") == "InvalidDBClusterStateFault"
    assert manual_snapshot_ids(rds) == before and "never" not in cluster_ids(rds)
    rds.delete_db_cluster(DBClusterIdentifier="snap-empty", SkipFinalSnapshot=True)


def test_automated_backups_are_listed_as_automated_snapshots_the_user_cannot_delete(source: Cluster, rds: Any) -> None:
    automated = rds.describe_db_cluster_snapshots(DBClusterIdentifier=source.identifier,
                                                  SnapshotType="automated")["DBClusterSnapshots"]
    assert automated and all(s["SnapshotType"] == "automated" for s in automated)
    first = automated[0]
    assert re.fullmatch(rf"rds:{source.identifier}-\d{{4}}-\d\d-\d\d-\d\d-\d\d", first["DBClusterSnapshotIdentifier"])
    assert first["Status"] == "available" and first["PercentProgress"] == 100
    assert first["SnapshotCreateTime"] <= source.describe()["EarliestRestorableTime"]
    assert first["BackupRetentionPeriod"] == 1
    assert error_code(rds.delete_db_cluster_snapshot, DBClusterSnapshotIdentifier=first["DBClusterSnapshotIdentifier"]
                      ) == "InvalidDBClusterSnapshotStateFault"
    manual = rds.describe_db_cluster_snapshots(DBClusterIdentifier=source.identifier, SnapshotType="manual")
    assert first["DBClusterSnapshotIdentifier"] not in [s["DBClusterSnapshotIdentifier"]
                                                        for s in manual["DBClusterSnapshots"]]
    events = rds.describe_events(SourceType="db-cluster-snapshot",
                                 SourceIdentifier=first["DBClusterSnapshotIdentifier"])["Events"]
    assert [e["Message"] for e in events] == ["Creating automated cluster snapshot.",
                                              "Automated cluster snapshot created."]


def test_a_manual_snapshot_is_taken_tagged_copied_restored_and_deleted(source: Cluster, rds: Any) -> None:
    created = rds.create_db_cluster_snapshot(DBClusterIdentifier=source.identifier, DBClusterSnapshotIdentifier="snap-1",
                                             Tags=[{"Key": "purpose", "Value": "game day"}])["DBClusterSnapshot"]
    assert (created["Status"], created["SnapshotType"], created["PercentProgress"]) == ("creating", "manual", 0)
    rds.get_waiter("db_cluster_snapshot_available").wait(DBClusterSnapshotIdentifier="snap-1", WaiterConfig=FAST)
    with source.connect() as conn:
        conn.execute("INSERT INTO items VALUES ('after')")

    taken = snapshot(rds, "snap-1")
    cluster = source.describe()
    assert {k: taken[k] for k in ("DBClusterIdentifier", "Engine", "EngineVersion", "Port", "MasterUsername",
                                  "Status", "PercentProgress", "StorageEncrypted", "ClusterCreateTime")} == {
        "DBClusterIdentifier": source.identifier, "Engine": ENGINE, "EngineVersion": cluster["EngineVersion"],
        "Port": 5432, "MasterUsername": "master", "Status": "available", "PercentProgress": 100,
        "StorageEncrypted": False, "ClusterCreateTime": cluster["ClusterCreateTime"]}
    arn = taken["DBClusterSnapshotArn"]
    assert arn == "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:snap-1"
    assert taken["AllocatedStorage"] >= 1 and taken["SnapshotCreateTime"] <= datetime.now(UTC)
    rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "owner", "Value": "sre"}])
    assert rds.list_tags_for_resource(ResourceName=arn)["TagList"] == [
        {"Key": "purpose", "Value": "game day"}, {"Key": "owner", "Value": "sre"}]
    events = rds.describe_events(SourceType="db-cluster-snapshot", SourceIdentifier="snap-1")["Events"]
    assert [e["Message"] for e in events] == ["Creating manual cluster snapshot.", "Manual cluster snapshot created."]

    copy = rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=arn,
                                        TargetDBClusterSnapshotIdentifier="snap-1-copy", CopyTags=True)
    assert copy["DBClusterSnapshot"]["Status"] == "creating"
    rds.get_waiter("db_cluster_snapshot_available").wait(DBClusterSnapshotIdentifier="snap-1-copy", WaiterConfig=FAST)
    copied = snapshot(rds, "snap-1-copy")
    assert copied["SourceDBClusterSnapshotArn"] == arn and copied["SnapshotType"] == "manual"
    assert copied["SnapshotCreateTime"] == taken["SnapshotCreateTime"] and len(copied["TagList"]) == 2

    rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier="snap-1")
    rds.get_waiter("db_cluster_snapshot_deleted").wait(DBClusterSnapshotIdentifier="snap-1", WaiterConfig=FAST)
    assert restore_and_read(rds, "snap-restored", "snap-1-copy") == {"before"}, \
        "the copy holds the data as of the snapshot, and outlives its source"
    rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier="snap-1-copy")
    assert "snap-1-copy" not in snapshot_ids(rds)


def test_snapshot_requests_aws_refuses_change_nothing(source: Cluster, rds: Any) -> None:
    rds.create_db_cluster_snapshot(DBClusterIdentifier=source.identifier, DBClusterSnapshotIdentifier="snap-busy")
    # While it is still being taken:
    assert error_code(rds.delete_db_cluster_snapshot, DBClusterSnapshotIdentifier="snap-busy"
                      ) == "InvalidDBClusterSnapshotStateFault"
    assert error_code(rds.restore_db_cluster_from_snapshot, DBClusterIdentifier="snap-never", Engine=ENGINE,
                      SnapshotIdentifier="snap-busy") == "InvalidDBClusterSnapshotStateFault"
    assert error_code(rds.copy_db_cluster_snapshot, SourceDBClusterSnapshotIdentifier="snap-busy",
                      TargetDBClusterSnapshotIdentifier="snap-never") == "InvalidDBClusterSnapshotStateFault"
    rds.get_waiter("db_cluster_snapshot_available").wait(DBClusterSnapshotIdentifier="snap-busy", WaiterConfig=FAST)
    clusters, snapshots = cluster_ids(rds), manual_snapshot_ids(rds)
    refusals = [
        (rds.create_db_cluster_snapshot, {"DBClusterIdentifier": source.identifier,
                                          "DBClusterSnapshotIdentifier": "snap-busy"},
         "DBClusterSnapshotAlreadyExistsFault"),
        (rds.create_db_cluster_snapshot, {"DBClusterIdentifier": "nobody", "DBClusterSnapshotIdentifier": "snap-x"},
         "DBClusterNotFoundFault"),
        (rds.create_db_cluster_snapshot, {"DBClusterIdentifier": source.identifier,
                                          "DBClusterSnapshotIdentifier": "bad--name"}, "InvalidParameterValue"),
        (rds.delete_db_cluster_snapshot, {"DBClusterSnapshotIdentifier": "snap-x"}, "DBClusterSnapshotNotFoundFault"),
        (rds.copy_db_cluster_snapshot, {"SourceDBClusterSnapshotIdentifier": "snap-x",
                                        "TargetDBClusterSnapshotIdentifier": "snap-y"}, "DBClusterSnapshotNotFoundFault"),
        (rds.copy_db_cluster_snapshot, {"SourceDBClusterSnapshotIdentifier": "snap-busy",
                                        "TargetDBClusterSnapshotIdentifier": "snap-busy"},
         "DBClusterSnapshotAlreadyExistsFault"),
        (rds.describe_db_cluster_snapshots, {"DBClusterSnapshotIdentifier": "snap-x"}, "DBClusterSnapshotNotFoundFault"),
        (rds.describe_db_cluster_snapshots, {"DBClusterSnapshotIdentifier": "snap-busy",
                                             "DBClusterIdentifier": source.identifier}, "InvalidParameterCombination"),
        (rds.describe_db_cluster_snapshots, {"SnapshotType": "forever"}, "InvalidParameterValue"),
        (rds.restore_db_cluster_from_snapshot, {"DBClusterIdentifier": "snap-r", "SnapshotIdentifier": "snap-x",
                                                "Engine": ENGINE}, "DBClusterSnapshotNotFoundFault"),
        (rds.restore_db_cluster_from_snapshot, {"DBClusterIdentifier": "snap-r", "SnapshotIdentifier": "snap-busy",
                                                "Engine": "aurora-mysql"}, "InvalidParameterCombination"),
        (rds.restore_db_cluster_from_snapshot, {"DBClusterIdentifier": source.identifier,
                                                "SnapshotIdentifier": "snap-busy", "Engine": ENGINE},
         "DBClusterAlreadyExistsFault"),
        (rds.delete_db_cluster, {"DBClusterIdentifier": source.identifier, "FinalDBSnapshotIdentifier": "snap-busy"},
         "InvalidDBClusterStateFault"),  # it still has its instance
    ]
    for call, params, code in refusals:
        assert error_code(call, **params) == code, (call.__name__, params)
    assert cluster_ids(rds) == clusters and manual_snapshot_ids(rds) == snapshots
    assert source.describe()["Status"] == "available"
    rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier="snap-busy")


def test_the_paginator_and_the_filters_walk_every_snapshot(source: Cluster, rds: Any) -> None:
    rds.create_db_cluster_snapshot(DBClusterIdentifier=source.identifier, DBClusterSnapshotIdentifier="snap-page")
    rds.get_waiter("db_cluster_snapshot_available").wait(DBClusterSnapshotIdentifier="snap-page", WaiterConfig=FAST)
    copies = [f"snap-page-{n}" for n in range(22)]
    for name in copies:
        rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier="snap-page", TargetDBClusterSnapshotIdentifier=name)
    for name in copies:
        rds.get_waiter("db_cluster_snapshot_available").wait(DBClusterSnapshotIdentifier=name, WaiterConfig=FAST)
    pages = list(rds.get_paginator("describe_db_cluster_snapshots").paginate(
        DBClusterIdentifier=source.identifier, SnapshotType="manual", IncludeShared=True, IncludePublic=True,
        PaginationConfig={"PageSize": 20}))
    listed = [s["DBClusterSnapshotIdentifier"] for page in pages for s in page["DBClusterSnapshots"]]
    assert len(pages) == 2 and sorted(listed) == sorted(["snap-page", *copies])

    def filtered(*filters: tuple[str, list[str]]) -> list[str]:
        answer = rds.describe_db_cluster_snapshots(Filters=[{"Name": n, "Values": v} for n, v in filters])
        return sorted(s["DBClusterSnapshotIdentifier"] for s in answer["DBClusterSnapshots"])

    assert filtered(("db-cluster-snapshot-id", ["snap-page-3", "snap-page-4"])) == ["snap-page-3", "snap-page-4"]
    assert len(filtered(("db-cluster-id", [source.identifier]), ("snapshot-type", ["manual"]))) == 23
    assert filtered(("engine", ["aurora-mysql"])) == []
    assert all(i.startswith("rds:") for i in filtered(("db-cluster-id", [source.identifier]),
                                                      ("snapshot-type", ["automated"])))
    assert rds.describe_db_cluster_snapshots(SnapshotType="shared")["DBClusterSnapshots"] == []
    assert error_code(rds.describe_db_cluster_snapshots, Filters=[{"Name": "status", "Values": ["available"]}]
                      ) == "InvalidParameterValue"
    for name in ["snap-page", *copies]:
        rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=name)


def test_a_final_snapshot_outlives_its_cluster_and_its_automated_backups_do_not(rds: Any) -> None:
    cluster = create_cluster(rds, [1], prefix="snap-final")
    with cluster.connect() as conn:
        conn.execute("CREATE TABLE items (name text PRIMARY KEY)")
        conn.execute("INSERT INTO items VALUES ('kept')")
    wait_for(lambda: cluster.describe().get("EarliestRestorableTime"), timeout=60, what="the first backup")
    rds.delete_db_instance(DBInstanceIdentifier=cluster.instances[0], SkipFinalSnapshot=True)
    wait_for(lambda: not cluster.describe()["DBClusterMembers"], what="the instance to go")
    assert error_code(rds.delete_db_cluster, DBClusterIdentifier=cluster.identifier) == "InvalidParameterCombination"
    answer = rds.delete_db_cluster(DBClusterIdentifier=cluster.identifier, FinalDBSnapshotIdentifier="snap-final-last")
    assert answer["DBCluster"]["Status"] == "deleting"
    rds.get_waiter("db_cluster_snapshot_available").wait(DBClusterSnapshotIdentifier="snap-final-last",
                                                         WaiterConfig=FAST)
    wait_for(lambda: cluster.identifier not in cluster_ids(rds), what="the cluster to be deleted")
    final = snapshot(rds, "snap-final-last")
    assert (final["DBClusterIdentifier"], final["SnapshotType"]) == (cluster.identifier, "manual")
    left = rds.describe_db_cluster_snapshots(DBClusterIdentifier=cluster.identifier)["DBClusterSnapshots"]
    assert [s["DBClusterSnapshotIdentifier"] for s in left] == ["snap-final-last"], "automated backups went with it"
    assert restore_and_read(rds, "snap-final-restored", "snap-final-last") == {"kept"}
    rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier="snap-final-last")


def wal_files(emulator: Any, cluster: str) -> int:
    node = Path(emulator.state_dir) / "regions" / "us-east-1" / cluster / "volume" / "sn_a1"
    return sum(1 for f in node.iterdir() if re.fullmatch(r"[0-9A-F]{24}(\.partial)?", f.name))


def test_retention_prunes_old_backups_and_their_wal_and_moves_earliest_restorable_time(
        emulator: Any, rds: Any, cluster_factory: Any) -> None:
    cluster = cluster_factory([1])
    wait_for(lambda: cluster.describe().get("EarliestRestorableTime"), timeout=60, what="the first backup")
    assert error_code(rds.modify_db_cluster, DBClusterIdentifier=cluster.identifier, BackupRetentionPeriod=36
                      ) == "InvalidParameterValue"
    control = emulator.controls.call
    with cluster.connect() as conn:
        conn.execute("CREATE TABLE items (name text PRIMARY KEY)")
        conn.execute("INSERT INTO items VALUES ('old')")
        # Some 40 MB of WAL (three segments) the retention will find old.
        conn.execute("CREATE TABLE filler (pad text)")
        conn.execute("ALTER TABLE filler ALTER COLUMN pad SET STORAGE EXTERNAL")  # not compressed
        conn.execute("INSERT INTO filler SELECT repeat('x', 2000) FROM generate_series(1, 20000)")
    wal_before = wal_files(emulator, cluster.identifier)
    first_earliest = cluster.describe()["EarliestRestorableTime"]
    time.sleep(1.0)
    control("take_backup", {"cluster": cluster.identifier})
    with cluster.connect() as conn:
        conn.execute("INSERT INTO items VALUES ('kept')")
    kept_at = datetime.now(UTC)
    time.sleep(0.5)
    # One retention day lasts 2 s from now on: the first backup's successor is already older.
    assert control("set_backup_schedule", {"cluster": cluster.identifier, "retention_day_seconds": 1.5}) == {
        "interval_seconds": 3600.0, "retention_day_seconds": 1.5}
    time.sleep(1.0)
    control("take_backup", {"cluster": cluster.identifier})
    automated = wait_for(lambda: len(names := [s for s in snapshot_ids(rds) if s.startswith(f"rds:{cluster.identifier}")]
                                     ) == 2 and names, timeout=10, what="the first backup to be pruned")
    earliest = cluster.describe()["EarliestRestorableTime"]
    assert earliest > first_earliest and earliest >= datetime.now(UTC) - timedelta(seconds=3)
    assert wal_files(emulator, cluster.identifier) < wal_before, "WAL only the pruned backup needed went too"
    assert error_code(rds.restore_db_cluster_to_point_in_time, DBClusterIdentifier="snap-too-old",
                      SourceDBClusterIdentifier=cluster.identifier, RestoreToTime=first_earliest
                      ) == "InvalidRestoreFault"
    assert len(automated) == 2
    # What is kept still restores: the backups left and the WAL after them are whole.
    control("set_backup_schedule", {"cluster": cluster.identifier, "retention_day_seconds": 86400})
    point = max(kept_at, cluster.describe()["EarliestRestorableTime"])
    rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier="snap-kept", SourceDBClusterIdentifier=cluster.identifier,
                                            RestoreToTime=point)
    rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier="snap-kept", WaiterConfig=FAST)
    rds.create_db_instance(DBInstanceIdentifier="snap-kept-1", DBClusterIdentifier="snap-kept", Engine=ENGINE,
                           DBInstanceClass="db.r6g.large")
    restored = Cluster(rds, "snap-kept", ["snap-kept-1"])
    restored.wait_settled()
    with restored.connect() as conn:
        assert {row[0] for row in conn.execute("SELECT name FROM items")} >= {"old", "kept"}
    delete_cluster(restored)


def test_bad_restore_requests_are_refused_and_create_nothing(source: Cluster, rds: Any) -> None:
    clusters, snapshots = cluster_ids(rds), manual_snapshot_ids(rds)
    earliest = source.describe()["EarliestRestorableTime"]
    now = datetime.now(UTC)
    base = {"DBClusterIdentifier": "snap-bad", "SourceDBClusterIdentifier": source.identifier}
    refusals = [
        ({}, "InvalidParameterCombination"),  # neither RestoreToTime nor UseLatestRestorableTime
        ({"RestoreToTime": now, "UseLatestRestorableTime": True}, "InvalidParameterCombination"),
        ({"RestoreToTime": now, "RestoreType": "copy-on-write"}, "InvalidParameterCombination"),
        ({"UseLatestRestorableTime": True, "RestoreType": "snapshot"}, "InvalidParameterValue"),
        ({"RestoreToTime": now + timedelta(minutes=5)}, "InvalidRestoreFault"),
        ({"RestoreToTime": earliest - timedelta(seconds=1)}, "InvalidRestoreFault"),
        ({"UseLatestRestorableTime": True, "SourceDBClusterIdentifier": "nobody"}, "DBClusterNotFoundFault"),
        ({"UseLatestRestorableTime": True, "DBClusterIdentifier": source.identifier}, "DBClusterAlreadyExistsFault"),
        ({"UseLatestRestorableTime": True, "DBClusterIdentifier": "-bad"}, "InvalidParameterValue"),
        ({"UseLatestRestorableTime": True, "BackupRetentionPeriod": 0}, "InvalidParameterValue"),
        ({"UseLatestRestorableTime": True, "Port": 80}, "InvalidParameterValue"),
        ({"UseLatestRestorableTime": True, "BacktrackWindow": 3600}, "InvalidParameterValue"),
        ({"UseLatestRestorableTime": True, "DBSubnetGroupName": "nowhere"}, "DBSubnetGroupNotFoundFault"),
        ({"UseLatestRestorableTime": True, "EngineMode": "serverless"}, "InvalidParameterValue"),
    ]
    for params, code in refusals:
        assert error_code(rds.restore_db_cluster_to_point_in_time, **{**base, **params}) == code, params
    assert cluster_ids(rds) == clusters and manual_snapshot_ids(rds) == snapshots

    # A restored cluster takes instances only once its volume is built, as on Aurora.
    rds.restore_db_cluster_to_point_in_time(UseLatestRestorableTime=True, **base)
    assert error_code(rds.create_db_instance, DBInstanceIdentifier="snap-bad-1", DBClusterIdentifier="snap-bad",
                      Engine=ENGINE, DBInstanceClass="db.r6g.large") == "InvalidDBClusterStateFault"
    rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier="snap-bad", WaiterConfig=FAST)
    described = rds.describe_db_clusters(DBClusterIdentifier="snap-bad")["DBClusters"][0]
    assert "EarliestRestorableTime" not in described, "no backup of its own before its first instance"
    rds.delete_db_cluster(DBClusterIdentifier="snap-bad", SkipFinalSnapshot=True)
    wait_for(lambda: "snap-bad" not in cluster_ids(rds), what="snap-bad deleted")


def test_an_engine_that_cannot_copy_a_resting_volume_refuses_its_final_snapshot_up_front(rds: Any) -> None:
    """Aurora MySQL's engine here backs up only from a writer: DeleteDBCluster with a final snapshot
    of an instance-less aurora-mysql cluster is refused at once, and nothing changes."""
    cluster = create_cluster(rds, [1], prefix="snap-my", engine="aurora-mysql")
    wait_for(lambda: cluster.describe().get("EarliestRestorableTime"), timeout=60, what="the first backup")
    rds.delete_db_instance(DBInstanceIdentifier=cluster.instances[0], SkipFinalSnapshot=True)
    wait_for(lambda: not cluster.describe()["DBClusterMembers"], what="the instance to go")
    snapshots = manual_snapshot_ids(rds)
    assert error_code(rds.delete_db_cluster, DBClusterIdentifier=cluster.identifier,
                      FinalDBSnapshotIdentifier="snap-my-final") == "InvalidParameterCombination"
    assert cluster.describe()["Status"] == "available" and manual_snapshot_ids(rds) == snapshots
    rds.delete_db_cluster(DBClusterIdentifier=cluster.identifier, SkipFinalSnapshot=True)
    wait_for(lambda: cluster.identifier not in cluster_ids(rds), what="the cluster to be deleted")
