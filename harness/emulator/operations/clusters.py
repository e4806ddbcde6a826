"""DB clusters: CreateDBCluster, DescribeDBClusters, ModifyDBCluster, DeleteDBCluster (with its final
snapshot), FailoverDBCluster."""

from __future__ import annotations

import re
from functools import partial
from operator import attrgetter
from typing import Any

from harness.emulator.api import fault
from harness.emulator.event_messages import CLUSTER_CREATED, CLUSTER_DELETED
from harness.emulator.models import DBCluster, DBClusterSnapshot
from harness.emulator.operations.snapshots import (
    begin_snapshot,
    check_new_snapshot_id,
    snapshot_directory,
    snapshot_failed,
    snapshot_source,
)
from harness.emulator.operations.common import (
    Filters,
    apply_filters,
    check_identifier,
    check_password,
    cluster_options,
    paginate,
)
from harness.emulator.operations.blue_green import refuse_during_switchover
from harness.emulator.operations.catalog import DEFAULT_SUBNET_GROUP, subnet_groups
from harness.emulator.operations.engine_specs import ENGINE_ONLY_PARAMETERS, ENGINES
from harness.emulator.operations.family import Family
from harness.emulator.operations.global_clusters import attach_member, join_global_cluster, primary_of
from harness.emulator.operations.parameter_groups import check_parameter_group
from harness.emulator.operations.state import Region
from harness.emulator.runtime import ClusterRuntime

FAILOVER_DEADLINE_S = 600.0  # promotion and catch-up take seconds; the old writer's rejoin can take minutes
DELETE_DEADLINE_S = 600.0

CLUSTER_FILTERS: Filters = {
    "db-cluster-id": attrgetter("identifier"),
    "engine": attrgetter("engine"),
    "db-cluster-resource-id": attrgetter("resource_id"),
    "clone-group-id": attrgetter("clone_group_id"),
}


class Clusters(Family):
    operations = ("CreateDBCluster", "DescribeDBClusters", "ModifyDBCluster", "DeleteDBCluster",
                  "FailoverDBCluster")

    def create_db_cluster(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        identifier = check_identifier(p["DBClusterIdentifier"], "DBClusterIdentifier")
        engine = p["Engine"]
        if engine not in ENGINES:
            raise fault("InvalidParameterValue", f"Invalid DB engine: {engine}. The emulator runs "
                                                 f"{', '.join(ENGINES)}.")
        spec = ENGINES[engine]
        if identifier in region.clusters:
            raise fault("DBClusterAlreadyExistsFault", f"DB cluster already exists: {identifier}")
        version = p.get("EngineVersion") or spec.default_version
        if not version.startswith(spec.version_prefix):
            raise fault("InvalidParameterCombination",
                        f"Cannot find version {version} for {engine}; the emulator serves {spec.version_prefix}x.")
        options = cluster_options(p, engine, spec.port)
        refuse_unemulated(region, p)
        parameter_group = check_parameter_group(region, p.get("DBClusterParameterGroupName"), engine)
        joining = join_global_cluster(self.store, region, p)
        primary = primary_of(joining) if joining is not None else None
        if primary is not None:  # a secondary: the primary's volume, users and database come with the copy
            if p.get("MasterUsername") or p.get("MasterUserPassword"):
                raise fault("InvalidParameterCombination", "MasterUsername and MasterUserPassword cannot be "
                                                           "specified for a secondary cluster of a global database.")
            p = {**p, "MasterUsername": primary.master_username, "MasterUserPassword": primary.master_password,
                 "DatabaseName": primary.database_name}
            version = primary.engine_version
        username = p.get("MasterUsername")
        password = p.get("MasterUserPassword")
        if not username:
            raise fault("InvalidParameterValue", "The parameter MasterUsername must be provided and must "
                                                 "not be blank.")
        if (not re.fullmatch(rf"[A-Za-z][A-Za-z0-9_]{{0,{spec.master_user_max - 1}}}", username)
                or username.lower() in spec.reserved_users):
            raise fault("InvalidParameterValue", f"MasterUsername {username} cannot be used with {engine}. It must "
                                                 f"start with a letter, use at most {spec.master_user_max} letters, "
                                                 f"digits or underscores, and must not be a reserved word.")
        check_password(password)
        database = p.get("DatabaseName")
        if database is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,62}", database):
            raise fault("InvalidParameterValue", f"DatabaseName {database!r} must begin with a letter and "
                                                 f"contain only alphanumeric characters.")
        azs = p.get("AvailabilityZones") or region.availability_zones
        for az in azs:
            if az not in region.availability_zones:
                raise fault("InvalidParameterValue", f"Availability zone {az} is not in region {region.name}.")
        cluster, runtime = self.launch_cluster(
            region, identifier, engine=engine, engine_version=version, master_username=username,
            master_password=password, database_name=database, availability_zones=list(azs),
            parameter_group=parameter_group, storage_encrypted=bool(p.get("StorageEncrypted")),
            subnet_group=(p.get("DBSubnetGroupName") or DEFAULT_SUBNET_GROUP).lower(), **options)
        if joining is not None:
            attach_member(joining, cluster, runtime)
        answer = {"DBCluster": cluster.describe()}  # `creating`, as AWS answers; the job makes it available
        self.jobs.start(f"create {identifier}", self._created, runtime)
        return answer

    @staticmethod
    def _created(runtime: ClusterRuntime) -> None:
        """Job: the new cluster's endpoints are published and it is `available` (instances may be
        added meanwhile, as on AWS: they start once it is)."""
        runtime.publish_endpoints()
        runtime.cluster.status = "available"
        runtime.cluster_event(CLUSTER_CREATED, "creation")

    def describe_db_clusters(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("DBClusterIdentifier"):
            clusters = [region.cluster(p["DBClusterIdentifier"])]
        else:
            clusters = list(region.clusters.values())
        page, marker = paginate(apply_filters(clusters, p.get("Filters"), CLUSTER_FILTERS), p)
        return {"DBClusters": [c.describe() for c in page], "Marker": marker}

    def modify_db_cluster(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        cluster = region.cluster(p["DBClusterIdentifier"])
        refuse_during_switchover(region, cluster.identifier)
        if p.get("DBClusterParameterGroupName"):
            cluster.parameter_group = check_parameter_group(region, p["DBClusterParameterGroupName"], cluster.engine)
        unsupported = [k for k in ("NewDBClusterIdentifier", "EngineVersion", "Port") if p.get(k) is not None]
        if unsupported:
            raise fault("InvalidParameterCombination", f"The emulator cannot modify {', '.join(unsupported)} "
                                                       f"of a cluster.")
        if cluster.status != "available":
            raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} is not in the available "
                                                      f"state (it is {cluster.status}).")
        window = p.get("BacktrackWindow")
        if window is not None:
            check_backtrack_window(cluster, window)
        if p.get("MasterUserPassword") is not None:
            check_password(p["MasterUserPassword"])
            if cluster.writer_id is None:
                raise fault("InvalidDBClusterStateFault", "The cluster has no writer instance to apply the "
                                                          "password to.")
            runtime = region.runtimes[cluster.identifier]
            with runtime.lock:
                runtime.engine.set_master_password(cluster.master_username, p["MasterUserPassword"])
            cluster.master_password = p["MasterUserPassword"]
        if p.get("DeletionProtection") is not None:
            cluster.deletion_protection = p["DeletionProtection"]
        if p.get("BackupRetentionPeriod") is not None:
            if not 1 <= p["BackupRetentionPeriod"] <= 35:
                raise fault("InvalidParameterValue", "BackupRetentionPeriod must be between 1 and 35 days.")
            cluster.backup_retention_period = p["BackupRetentionPeriod"]
        if window is not None:
            cluster.backtrack_window = window
        return {"DBCluster": cluster.describe()}

    def delete_db_cluster(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        cluster = region.cluster(p["DBClusterIdentifier"])
        refuse_during_switchover(region, cluster.identifier)
        if cluster.deletion_protection:
            raise fault("InvalidParameterCombination", "Cannot delete protected Cluster, please disable "
                                                       "deletion protection and try again.")
        if not p.get("SkipFinalSnapshot") and not p.get("FinalDBSnapshotIdentifier"):
            raise fault("InvalidParameterCombination", "FinalDBSnapshotIdentifier is required unless "
                                                       "SkipFinalSnapshot is specified.")
        if cluster.global_cluster_id:
            raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} is a member of global cluster "
                                                      f"{cluster.global_cluster_id}; remove it from the global "
                                                      f"cluster first.")
        if cluster.instances:
            raise fault("InvalidDBClusterStateFault", "Cluster cannot be deleted, it still contains DB "
                                                      "instances in non-deleting state.")
        final = None
        if not p.get("SkipFinalSnapshot"):
            identifier = check_new_snapshot_id(region, p["FinalDBSnapshotIdentifier"], "FinalDBSnapshotIdentifier")
            snapshot_source(region, cluster)
            final = begin_snapshot(region, cluster, identifier, {})  # CopyTagsToSnapshot is off
        cluster.status = "deleting"
        description = cluster.describe()
        runtime = region.runtimes.pop(cluster.identifier)
        # Listed as `deleting` until its files are gone, as on AWS: a CreateDBCluster of the same name
        # meanwhile gets DBClusterAlreadyExists instead of a directory the deletion is removing.
        self.store.retiring_slots.add(cluster.slot)
        self.jobs.start(f"delete {cluster.identifier}", self._tear_down, region, cluster, runtime, final,
                        on_error=partial(self._tear_down_failed, region, cluster, runtime, final),
                        deadline_s=DELETE_DEADLINE_S)
        return {"DBCluster": description}

    def _tear_down(self, region: Region, cluster: DBCluster, runtime: ClusterRuntime,
                   final: DBClusterSnapshot | None) -> None:
        """Job: take the final snapshot, wait for restores still reading from the cluster, stop its
        engines and remove its files (its automated backups with them), then stop listing it."""
        if final is not None:
            runtime.backups.take_snapshot(final, snapshot_directory(self.backup_root, final))
        runtime.backups.wait_unpinned(DELETE_DEADLINE_S / 2)
        runtime.destroy()
        runtime.cluster_event(CLUSTER_DELETED, "deletion")
        with self.store.lock:
            self.store.retiring_slots.discard(cluster.slot)
            if region.clusters.get(cluster.identifier) is cluster:
                del region.clusters[cluster.identifier]
            if region.runtimes.get(cluster.identifier) is runtime:
                del region.runtimes[cluster.identifier]

    def _tear_down_failed(self, region: Region, cluster: DBCluster, runtime: ClusterRuntime,
                          final: DBClusterSnapshot | None, exc: BaseException) -> None:
        """The teardown raised or hung: the cluster is listed as `failed`, not `deleting` for ever,
        and DeleteDBCluster may be tried again (its runtime is back, its slot still taken); a final
        snapshot that did not complete is `failed`."""
        if final is not None:
            snapshot_failed(final, exc)
        with self.store.lock:
            self.store.retiring_slots.discard(cluster.slot)
            if region.clusters.get(cluster.identifier) is cluster:
                cluster.status = "failed"
                region.runtimes.setdefault(cluster.identifier, runtime)

    def failover_db_cluster(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        cluster = region.cluster(p["DBClusterIdentifier"])
        refuse_during_switchover(region, cluster.identifier)
        if cluster.status != "available":
            raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} is {cluster.status}; it "
                                                      f"must be available to fail over.")
        if cluster.read_only:
            raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} is a secondary cluster of "
                                                      f"global cluster {cluster.global_cluster_id}: it has no writer "
                                                      f"to fail over (use FailoverGlobalCluster).")
        if cluster.writer_id is None or not cluster.readers:
            raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} has no Aurora Replica to "
                                                      f"fail over to.")
        target = p.get("TargetDBInstanceIdentifier")
        if target is not None:
            target = target.rsplit(":", 1)[-1].lower()
            if target not in cluster.instances:
                raise fault("InvalidDBInstanceStateFault", f"Target instance {target} is not a member of DB "
                                                           f"cluster {cluster.identifier}.")
            if target == cluster.writer_id:
                raise fault("InvalidDBInstanceStateFault", f"Target instance {target} is already the writer of "
                                                           f"DB cluster {cluster.identifier}.")
            if cluster.instances[target].status != "available":
                raise fault("InvalidDBInstanceStateFault", f"Target instance {target} is "
                                                           f"{cluster.instances[target].status}, not available.")
        cluster.status = "failing-over"
        runtime = region.runtimes[cluster.identifier]
        self.jobs.start(f"failover {cluster.identifier}", runtime.failover, target,
                        on_error=partial(runtime.failover_failed, cluster.writer_id),
                        deadline_s=FAILOVER_DEADLINE_S)
        return {"DBCluster": cluster.describe()}


def check_backtrack_window(cluster: DBCluster, window: int) -> None:
    """ModifyDBCluster may change a backtrack window, or set it to 0 (off for good), but never turn
    Backtrack on: it needs what only a cluster created with it keeps ("You can't modify a DB
    cluster to enable the Backtrack feature"; AWS answers with the message below)."""
    if cluster.engine != "aurora-mysql":
        raise fault("InvalidParameterValue", ENGINE_ONLY_PARAMETERS["BacktrackWindow"][1].format(engine=cluster.engine))
    if not 0 <= window <= 259200:
        raise fault("InvalidParameterValue", "The BacktrackWindow must be between 0 and 259200 seconds (72 hours).")
    if window and not cluster.backtrack_window:
        raise fault("InvalidParameterCombination", "Backtrack cannot currently be enabled for this cluster.")


def refuse_unemulated(region: Region, p: dict[str, Any]) -> None:
    """What CreateDBCluster could ask that the emulator does not do, refused with AWS's error rather
    than silently ignored (a game day on a cluster that is not what it asked for proves nothing)."""
    mode = p.get("EngineMode") or "provisioned"
    if mode != "provisioned":
        raise fault("InvalidParameterValue", f"The engine mode {mode} you requested is currently unavailable: the "
                                             f"emulator runs provisioned clusters only.")
    if p.get("ServerlessV2ScalingConfiguration"):
        raise fault("InvalidParameterCombination", "ServerlessV2ScalingConfiguration is not supported by the "
                                                   "emulator: it runs provisioned DB instances only.")
    name = p.get("DBSubnetGroupName")
    if name and name.lower() not in subnet_groups(region):
        raise fault("DBSubnetGroupNotFoundFault", f"DB subnet group '{name}' not found.")
