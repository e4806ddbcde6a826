"""Cluster snapshots and restores: CreateDBClusterSnapshot, DescribeDBClusterSnapshots,
CopyDBClusterSnapshot, DeleteDBClusterSnapshot, RestoreDBClusterFromSnapshot,
RestoreDBClusterToPointInTime (and the final snapshot DeleteDBCluster takes).

Snapshot data lives under the emulator's backup directory, apart from any cluster, so a snapshot
outlives its cluster. A restore creates a new cluster at once, `creating` with no instance, and a
job builds its volume (`restores.Restore`); as on Aurora, its instances are added afterwards with
CreateDBInstance. Refusals change nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from operator import attrgetter
from typing import Any

from harness.emulator.api import fault
from harness.emulator.backups import copy_backup, remove_backup
from harness.emulator.models import DBCluster, DBClusterSnapshot
from harness.emulator.operations.catalog import DEFAULT_SUBNET_GROUP
from harness.emulator.operations.clusters import refuse_unemulated
from harness.emulator.operations.common import (
    Filters,
    apply_filters,
    check_identifier,
    cluster_options,
    paginate,
    tags_of,
)
from harness.emulator.operations.engine_specs import ENGINES
from harness.emulator.operations.family import Family
from harness.emulator.operations.snapshots import (
    begin_snapshot,
    check_new_snapshot_id,
    require_backups,
    snapshot_directory,
    snapshot_failed,
    snapshot_source,
)
from harness.emulator.operations.state import Region
from harness.emulator.restores import Restore

SNAPSHOT_DEADLINE_S = 1800.0  # a base backup of a large volume, retried after a failover
RESTORE_DEADLINE_S = 3600.0  # Aurora's own restores "can take hours"; the emulator's take seconds to minutes
RESTORE_TYPES = ("full-copy", "copy-on-write")
SNAPSHOT_TYPES = ("automated", "manual", "shared", "public", "awsbackup")

SNAPSHOT_FILTERS: Filters = {
    "db-cluster-id": attrgetter("cluster_id"),
    "db-cluster-snapshot-id": attrgetter("identifier"),
    "snapshot-type": attrgetter("snapshot_type"),
    "engine": attrgetter("engine"),
}


class Backups(Family):
    operations = ("CreateDBClusterSnapshot", "DescribeDBClusterSnapshots", "CopyDBClusterSnapshot",
                  "DeleteDBClusterSnapshot", "RestoreDBClusterFromSnapshot", "RestoreDBClusterToPointInTime")

    # --- snapshots ------------------------------------------------------------------------------------
    def create_db_cluster_snapshot(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        identifier = check_new_snapshot_id(region, p["DBClusterSnapshotIdentifier"], "DBClusterSnapshotIdentifier")
        cluster = region.cluster(p["DBClusterIdentifier"])
        runtime = snapshot_source(region, cluster)
        snapshot = begin_snapshot(region, cluster, identifier, tags_of(p))
        self.jobs.start(f"snapshot {identifier}", runtime.backups.take_snapshot, snapshot,
                        snapshot_directory(self.backup_root, snapshot),
                        on_error=partial(snapshot_failed, snapshot), deadline_s=SNAPSHOT_DEADLINE_S)
        return {"DBClusterSnapshot": snapshot.describe()}

    def describe_db_cluster_snapshots(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("DBClusterIdentifier") and p.get("DBClusterSnapshotIdentifier"):
            raise fault("InvalidParameterCombination", "DBClusterIdentifier can't be used together with "
                                                       "DBClusterSnapshotIdentifier.")
        snapshot_type = p.get("SnapshotType")
        if snapshot_type is not None and snapshot_type not in SNAPSHOT_TYPES:
            raise fault("InvalidParameterValue", f"Invalid snapshot type {snapshot_type}; valid types are "
                                                 f"{', '.join(SNAPSHOT_TYPES)}.")
        if p.get("DBClusterSnapshotIdentifier"):
            snapshots = [region.cluster_snapshot(p["DBClusterSnapshotIdentifier"])]
        else:
            snapshots = region.cluster_snapshots()
        if p.get("DBClusterIdentifier"):
            cluster_id = p["DBClusterIdentifier"].rsplit(":", 1)[-1].lower()
            snapshots = [s for s in snapshots if s.cluster_id == cluster_id]
        if p.get("DbClusterResourceId"):
            snapshots = [s for s in snapshots if s.cluster_resource_id == p["DbClusterResourceId"]]
        if snapshot_type is not None:  # shared, public and AWS Backup snapshots do not exist here
            snapshots = [s for s in snapshots if s.snapshot_type == snapshot_type]
        page, marker = paginate(apply_filters(snapshots, p.get("Filters"), SNAPSHOT_FILTERS), p)
        return {"DBClusterSnapshots": [s.describe() for s in page], "Marker": marker}

    def copy_db_cluster_snapshot(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        source = region.cluster_snapshot(p["SourceDBClusterSnapshotIdentifier"])
        identifier = check_new_snapshot_id(region, p["TargetDBClusterSnapshotIdentifier"],
                                           "TargetDBClusterSnapshotIdentifier")
        if source.status != "available":
            raise fault("InvalidDBClusterSnapshotStateFault", f"DB cluster snapshot {source.identifier} is "
                                                              f"{source.status}, not available.")
        tags = {**(source.tags if p.get("CopyTags") else {}), **tags_of(p)}
        # SnapshotCreateTime stays the source's: it says when the data is from.
        copy = replace(source, identifier=identifier, snapshot_type="manual", status="creating", percent_progress=0,
                       source_arn=source.arn, tags=tags, backup=None, in_use=0, directory_name=uuid.uuid4().hex)
        source.pin()
        region.snapshots[identifier] = copy
        self.jobs.start(f"copy {source.identifier} to {identifier}", self._copy, source, copy,
                        on_error=partial(snapshot_failed, copy), deadline_s=SNAPSHOT_DEADLINE_S)
        return {"DBClusterSnapshot": copy.describe()}

    def _copy(self, source: DBClusterSnapshot, copy: DBClusterSnapshot) -> None:
        """Job: a real copy of the source's data (CopyDBClusterSnapshot makes an independent snapshot)."""
        try:
            assert source.backup is not None
            copy.backup = copy_backup(source.backup, snapshot_directory(self.backup_root, copy))
        finally:
            source.pin(-1)
        copy.status, copy.percent_progress = "available", 100

    def delete_db_cluster_snapshot(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        snapshot = region.cluster_snapshot(p["DBClusterSnapshotIdentifier"])
        if snapshot.snapshot_type == "automated":
            raise fault("InvalidDBClusterSnapshotStateFault", f"Automated snapshot {snapshot.identifier} can't be "
                                                              f"deleted: automated backups are removed when the "
                                                              f"retention period passes or with their cluster.")
        if snapshot.status == "creating" or snapshot.in_use:
            what = "is being created" if snapshot.status == "creating" else "is being restored or copied"
            raise fault("InvalidDBClusterSnapshotStateFault", f"DB cluster snapshot {snapshot.identifier} {what}; "
                                                              f"it can be deleted once that is done.")
        del region.snapshots[snapshot.identifier]
        self.jobs.start(f"delete snapshot {snapshot.identifier}", remove_backup, snapshot.backup)
        return {"DBClusterSnapshot": snapshot.describe()}

    # --- restores ---------------------------------------------------------------------------------------
    def restore_db_cluster_from_snapshot(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        identifier = check_identifier(p["DBClusterIdentifier"], "DBClusterIdentifier")
        snapshot = region.cluster_snapshot(p["SnapshotIdentifier"])
        if p["Engine"] != snapshot.engine:
            raise fault("InvalidParameterCombination", f"The engine {p['Engine']} does not match the engine of DB "
                                                       f"cluster snapshot {snapshot.identifier} ({snapshot.engine}).")
        if identifier in region.clusters:
            raise fault("DBClusterAlreadyExistsFault", f"DB cluster already exists: {identifier}")
        if snapshot.status != "available":
            raise fault("InvalidDBClusterSnapshotStateFault", f"DB cluster snapshot {snapshot.identifier} is "
                                                              f"{snapshot.status}, not available.")
        version = p.get("EngineVersion") or snapshot.engine_version
        if not version.startswith(ENGINES[snapshot.engine].version_prefix):
            raise fault("InvalidParameterCombination", f"Cannot upgrade {snapshot.engine} from "
                                                       f"{snapshot.engine_version} to {version} in a restore.")
        azs = p.get("AvailabilityZones") or snapshot.availability_zones
        if any(az not in region.availability_zones for az in azs):
            raise fault("InvalidParameterValue", f"Availability zones {', '.join(azs)} are not all in region "
                                                 f"{region.name}.")
        options = self._restore_options(region, p, snapshot.engine, snapshot.port)
        cluster, runtime = self.launch_cluster(
            region, identifier, engine=snapshot.engine, engine_version=version,
            master_username=snapshot.master_username, master_password=snapshot.master_password,
            database_name=snapshot.database_name, availability_zones=list(azs),
            parameter_group=ENGINES[snapshot.engine].parameter_group, storage_encrypted=snapshot.storage_encrypted,
            **options)
        snapshot.pin()
        # The snapshot alone: its own cluster may be gone, so the new cluster stands in as the source.
        self._start_restore(Restore(runtime, runtime.engine, snapshot))
        return {"DBCluster": cluster.describe()}

    def restore_db_cluster_to_point_in_time(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        identifier = check_identifier(p["DBClusterIdentifier"], "DBClusterIdentifier")
        restore_type = p.get("RestoreType") or "full-copy"
        if restore_type not in RESTORE_TYPES:
            raise fault("InvalidParameterValue", f"Invalid RestoreType {restore_type}; it must be one of "
                                                 f"{', '.join(RESTORE_TYPES)}.")
        asked, latest_asked = p.get("RestoreToTime"), bool(p.get("UseLatestRestorableTime"))
        if asked is not None and latest_asked:
            raise fault("InvalidParameterCombination", "RestoreToTime and UseLatestRestorableTime can't both be "
                                                       "specified.")
        if asked is None and not latest_asked:
            raise fault("InvalidParameterCombination", "Either RestoreToTime or UseLatestRestorableTime must be "
                                                       "specified.")
        if asked is not None and restore_type == "copy-on-write":
            raise fault("InvalidParameterCombination", "RestoreToTime can't be specified with the copy-on-write "
                                                       "restore type: a clone starts from the latest restorable "
                                                       "time.")
        source = self._source_cluster(region, p)
        if identifier in region.clusters:
            raise fault("DBClusterAlreadyExistsFault", f"DB cluster already exists: {identifier}")
        source_runtime = region.runtimes.get(source.identifier)
        if source_runtime is None:
            raise fault("InvalidDBClusterStateFault", f"DB cluster {source.identifier} is {source.status}.")
        require_backups(source_runtime)
        point = self._restorable_point(source, asked)
        options = self._restore_options(region, p, source.engine, source.port)
        backups = source_runtime.backups
        effective = point - timedelta(seconds=backups.take_restore_offset())
        snapshot = backups.backup_for(effective) or min(
            (s for s in backups.snapshots() if s.backup is not None), key=lambda s: s.backup.taken_at)  # type: ignore[union-attr]
        assert snapshot.backup is not None
        effective = max(effective, snapshot.backup.taken_at)
        clone = restore_type == "copy-on-write"
        if clone and source.clone_group_id is None:
            source.clone_group_id = str(uuid.uuid4())
        cluster, runtime = self.launch_cluster(
            region, identifier, engine=source.engine, engine_version=source.engine_version,
            master_username=source.master_username, master_password=source.master_password,
            database_name=source.database_name, availability_zones=list(source.availability_zones),
            parameter_group=source.parameter_group, storage_encrypted=source.storage_encrypted,
            clone_group_id=source.clone_group_id if clone else None, **options)
        snapshot.pin()
        backups.pin()
        self._start_restore(Restore(runtime, source_runtime.engine, snapshot, effective, backups, clone))
        return {"DBCluster": cluster.describe()}

    @staticmethod
    def _restore_options(region: Region, p: dict[str, Any], engine: str, port: int) -> dict[str, Any]:
        """The new cluster's settings a restore takes as CreateDBCluster does (refused alike)."""
        options = cluster_options(p, engine, port)
        refuse_unemulated(region, p)
        return {**options, "subnet_group": (p.get("DBSubnetGroupName") or DEFAULT_SUBNET_GROUP).lower()}

    @staticmethod
    def _source_cluster(region: Region, p: dict[str, Any]) -> DBCluster:
        if p.get("SourceDBClusterIdentifier"):
            return region.cluster(p["SourceDBClusterIdentifier"])
        resource_id = p.get("SourceDbClusterResourceId")
        if not resource_id:
            raise fault("InvalidParameterCombination", "Either SourceDBClusterIdentifier or "
                                                       "SourceDbClusterResourceId must be specified.")
        for cluster in region.clusters.values():
            if cluster.resource_id == resource_id:
                return cluster
        raise fault("DBClusterNotFoundFault", f"DBCluster with resource id {resource_id} not found.")

    @staticmethod
    def _restorable_point(source: DBCluster, asked: datetime | None) -> datetime:
        """The moment asked for (the latest restorable time when none is), if the source can restore to it."""
        earliest, latest = source.restore_window()
        if earliest is None or latest is None:
            raise fault("InvalidRestoreFault", f"DB cluster {source.identifier} has no backup to restore from yet.")
        point = latest if asked is None else asked.astimezone(UTC)
        if not earliest <= point <= latest:
            raise fault("InvalidRestoreFault", f"The restore time {point.isoformat()} is outside the restorable "
                                               f"window of DB cluster {source.identifier}: "
                                               f"{earliest.isoformat()} to {latest.isoformat()}.")
        return point

    def _start_restore(self, restore: Restore) -> None:
        restore.target.volume_pending = True
        self.jobs.start(f"restore {restore.target.cluster.identifier}", restore.run, on_error=restore.failed,
                        deadline_s=RESTORE_DEADLINE_S)
