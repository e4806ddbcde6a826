"""Global Database: CreateGlobalCluster, DescribeGlobalClusters, ModifyGlobalCluster, DeleteGlobalCluster,
RemoveFromGlobalCluster, SwitchoverGlobalCluster, FailoverGlobalCluster; and the part of
CreateDBCluster that joins a global cluster (`join_global_cluster`).

Global clusters are not regional: any Region's endpoint lists and changes them. Their members'
data planes are driven by `global_database.GlobalDatabase` (one per global cluster, in the store).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from harness.emulator.addresses import global_writer_endpoint
from harness.emulator.api import fault
from harness.emulator.global_cluster import GlobalCluster, GlobalMember
from harness.emulator.global_database import GlobalDatabase
from harness.emulator.models import DBCluster
from harness.emulator.operations.common import check_identifier, paginate, tags_of
from harness.emulator.operations.engine_specs import ENGINES
from harness.emulator.operations.family import Family, Parts
from harness.emulator.operations.parameter_groups import global_db_rpo
from harness.emulator.operations.snapshots import begin_snapshot, snapshot_directory, snapshot_failed
from harness.emulator.operations.state import Region, RegionStore
from harness.emulator.runtime import ClusterRuntime

MAX_SECONDARIES = 10  # current User Guide ("up to 10 secondary clusters")
SWITCHOVER_DEADLINE_S = 900.0
FAILOVER_DEADLINE_S = 900.0


class GlobalClusters(Family):
    operations = ("CreateGlobalCluster", "DescribeGlobalClusters", "ModifyGlobalCluster", "DeleteGlobalCluster",
                  "RemoveFromGlobalCluster", "SwitchoverGlobalCluster", "FailoverGlobalCluster")

    def __init__(self, parts: Parts):
        super().__init__(parts)
        self.network = parts.network

    # --- create, describe, modify, delete ----------------------------------------------------------------
    def create_global_cluster(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        identifier = check_identifier(p["GlobalClusterIdentifier"], "GlobalClusterIdentifier", max_length=255)
        if identifier in self.store.global_clusters:
            raise fault("GlobalClusterAlreadyExistsFault", f"Global cluster {identifier} already exists.")
        source: DBCluster | None = None
        if p.get("SourceDBClusterIdentifier"):
            for key in ("Engine", "EngineVersion", "DatabaseName", "StorageEncrypted"):
                if p.get(key) is not None and key != "Engine":
                    raise fault("InvalidParameterCombination", f"{key} cannot be specified with "
                                                               f"SourceDBClusterIdentifier: it comes from the source.")
            source = _cluster_by_arn(self.store, region, p["SourceDBClusterIdentifier"])
            if source.global_cluster_id:
                raise fault("InvalidDBClusterStateFault", f"DB cluster {source.identifier} is already a member of "
                                                          f"global cluster {source.global_cluster_id}.")
            if source.backtrack_window:
                raise fault("InvalidDBClusterStateFault", f"DB cluster {source.identifier} has Backtrack enabled: "
                                                          f"Aurora Global Database does not support Backtrack.")
            if source.status != "available" or source.writer_id is None:
                raise fault("InvalidDBClusterStateFault", f"DB cluster {source.identifier} must be available with "
                                                          f"a writer instance to become a global primary.")
        engine = source.engine if source else p.get("Engine")
        if engine not in ENGINES:
            raise fault("InvalidParameterValue", f"Invalid DB engine: {engine}. The emulator runs "
                                                 f"{', '.join(ENGINES)}.")
        if source and p.get("Engine") and p["Engine"] != source.engine:
            raise fault("InvalidParameterCombination", f"The engine {p['Engine']} does not match the source "
                                                       f"cluster's ({source.engine}).")
        version = source.engine_version if source else (p.get("EngineVersion") or ENGINES[engine].default_version)
        slot = _free_slot(self.store)
        model = GlobalCluster(identifier=identifier, engine=engine, engine_version=version,
                              database_name=source.database_name if source else p.get("DatabaseName"),
                              storage_encrypted=source.storage_encrypted if source else bool(p.get("StorageEncrypted")),
                              deletion_protection=bool(p.get("DeletionProtection")), slot=slot,
                              endpoint=global_writer_endpoint(self.net, slot), tags=tags_of(p))
        database = GlobalDatabase(model, self._runtime_of, self.network, self.network.fabric, self.net, self.jobs,
                                  rpo_setting=partial(global_db_rpo, self.store), snapshot=self._snapshot)
        self.store.global_clusters[identifier] = database
        if source is not None:
            model.members.append(GlobalMember(source.region, source.identifier, source.arn))
            source.global_cluster_id = identifier
            database.attach_primary(self.store.region(source.region).runtimes[source.identifier])
        return {"GlobalCluster": model.describe()}

    def describe_global_clusters(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        databases = list(self.store.global_clusters.values())
        if p.get("GlobalClusterIdentifier"):
            databases = [self._database(p["GlobalClusterIdentifier"])]
        models = [d.model for d in databases]
        for entry in p.get("Filters") or []:
            if entry["Name"] != "region":
                raise fault("InvalidParameterValue", f"Unrecognized filter name: {entry['Name']}. Supported: region.")
            wanted = set(entry.get("Values") or [])
            models = [m for m in models if any(member.region in wanted for member in m.members)]
        page, marker = paginate(models, p)
        return {"GlobalClusters": [m.describe() for m in page], "Marker": marker}

    def modify_global_cluster(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        model = self._database(p["GlobalClusterIdentifier"]).model
        if p.get("NewGlobalClusterIdentifier") or p.get("EngineVersion"):
            raise fault("InvalidParameterCombination", "The emulator can only change DeletionProtection of a "
                                                       "global cluster.")
        if p.get("DeletionProtection") is not None:
            model.deletion_protection = p["DeletionProtection"]
        return {"GlobalCluster": model.describe()}

    def delete_global_cluster(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        database = self._database(p["GlobalClusterIdentifier"])
        model = database.model
        if model.members:
            raise fault("InvalidGlobalClusterStateFault", f"Global cluster {model.identifier} still has "
                                                          f"{len(model.members)} member cluster(s); remove them first.")
        if model.deletion_protection:
            raise fault("InvalidGlobalClusterStateFault", f"Global cluster {model.identifier} has deletion "
                                                          f"protection enabled.")
        del self.store.global_clusters[model.identifier]
        database.close()
        model.status = "deleting"
        return {"GlobalCluster": model.describe()}

    # --- membership --------------------------------------------------------------------------------------
    def remove_from_global_cluster(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        database = self._database(p["GlobalClusterIdentifier"])
        model = database.model
        member = _member(model, p["DbClusterIdentifier"], region)
        self._idle(database)
        if member.key() == model.writer and model.secondaries():
            raise fault("InvalidGlobalClusterStateFault", f"The primary cluster of global cluster "
                                                          f"{model.identifier} can only be removed once it has no "
                                                          f"secondary clusters.")
        runtime = self._runtime_of(*member.key())
        if runtime is not None and runtime.region_down:
            raise fault("InvalidDBClusterStateFault", f"DB cluster {member.cluster_id} cannot be reached.")
        database.detach(member)
        cluster = self.store.region(member.region).clusters.get(member.cluster_id)
        if cluster is not None:
            cluster.global_cluster_id = None
            cluster.read_only = False
        return {"GlobalCluster": model.describe()}

    def switchover_global_cluster(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        database, target = self._role_change(region, p)
        database.begin(target, data_loss=False)
        self.jobs.start(f"global switchover {database.model.identifier}", database.switchover, target,
                        on_error=partial(database.failover_failed, target), deadline_s=SWITCHOVER_DEADLINE_S)
        return {"GlobalCluster": database.model.describe()}

    def failover_global_cluster(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("AllowDataLoss") and p.get("Switchover"):
            raise fault("InvalidParameterCombination", "AllowDataLoss and Switchover cannot be specified together.")
        database, target = self._role_change(region, p)
        data_loss = bool(p.get("AllowDataLoss"))
        database.begin(target, data_loss=data_loss)
        work = database.failover if data_loss else database.switchover
        self.jobs.start(f"global {'failover' if data_loss else 'switchover'} {database.model.identifier}", work,
                        target, on_error=partial(database.failover_failed, target), deadline_s=FAILOVER_DEADLINE_S)
        return {"GlobalCluster": database.model.describe()}

    def _role_change(self, region: Region, p: dict[str, Any]) -> tuple[GlobalDatabase, GlobalMember]:
        database = self._database(p["GlobalClusterIdentifier"])
        model = database.model
        target = _member(model, p["TargetDbClusterIdentifier"], region)
        self._idle(database)
        if target.key() == model.writer:
            raise fault("InvalidGlobalClusterStateFault", f"DB cluster {target.cluster_id} is already the primary "
                                                          f"cluster of global cluster {model.identifier}.")
        if target.synchronization != "connected":
            raise fault("InvalidGlobalClusterStateFault", f"DB cluster {target.cluster_id} is "
                                                          f"{target.synchronization}.")
        runtime = self._runtime_of(*target.key())
        cluster = runtime.cluster if runtime else None
        if cluster is None or cluster.writer_id is None or not any(
                i.status == "available" for i in cluster.instances.values()):
            raise fault("InvalidDBClusterStateFault", f"DB cluster {target.cluster_id} has no available DB instance: "
                                                      f"add one before switching over or failing over to it "
                                                      f"(a headless secondary cannot take the primary role).")
        if runtime.region_down or cluster.status != "available":
            raise fault("InvalidDBClusterStateFault", f"DB cluster {target.cluster_id} is not available.")
        if not p.get("AllowDataLoss"):
            primary = database.primary_runtime()
            if primary is None or primary.region_down or primary.cluster.status != "available":
                raise fault("InvalidGlobalClusterStateFault", f"The primary cluster of {model.identifier} is not "
                                                              f"available: a switchover needs it (fail over with "
                                                              f"AllowDataLoss instead).")
        return database, target

    def _idle(self, database: GlobalDatabase) -> None:
        if database.model.failover is not None:
            raise fault("InvalidGlobalClusterStateFault", f"Global cluster {database.model.identifier} is "
                                                          f"{database.model.failover.status}.")

    def _snapshot(self, runtime: ClusterRuntime, name: str) -> None:
        """A cluster snapshot of `runtime`'s cluster, taken now (before a failover's resync)."""
        with self.store.lock:
            region = self.store.region(runtime.cluster.region)
            snapshot = begin_snapshot(region, runtime.cluster, name, {})
        try:
            runtime.backups.take_snapshot(snapshot, snapshot_directory(self.backup_root, snapshot))
        except Exception as exc:
            snapshot_failed(snapshot, exc)
            raise

    # --- helpers --------------------------------------------------------------------------------------------
    def _database(self, identifier: str) -> GlobalDatabase:
        name = identifier.rsplit(":", 1)[-1]
        if name not in self.store.global_clusters:
            raise fault("GlobalClusterNotFoundFault", f"Global cluster {identifier} not found.")
        return self.store.global_clusters[name]

    def _runtime_of(self, region: str, cluster: str) -> ClusterRuntime | None:
        with self.store.lock:
            return self.store.region(region).runtimes.get(cluster)


def join_global_cluster(store: RegionStore, region: Region, p: dict[str, Any]) -> GlobalDatabase | None:
    """CreateDBCluster with GlobalClusterIdentifier: the global cluster it joins (checked), or None.
    Its first member becomes the primary; later ones are secondaries in other Regions."""
    name = p.get("GlobalClusterIdentifier")
    if not name:
        return None
    database = store.global_clusters.get(name)
    if database is None:
        raise fault("GlobalClusterNotFoundFault", f"Global cluster {name} not found.")
    model = database.model
    if p.get("BacktrackWindow"):
        raise fault("InvalidParameterCombination", "Aurora Global Database does not support Backtrack: "
                                                   "BacktrackWindow cannot be set on a member cluster.")
    if p.get("Engine") != model.engine:
        raise fault("InvalidParameterCombination", f"The engine {p.get('Engine')} does not match global cluster "
                                                   f"{model.identifier} ({model.engine}).")
    if any(m.region == region.name for m in model.members):
        raise fault("InvalidParameterValue", f"Global cluster {model.identifier} already has a member in "
                                             f"{region.name}: one cluster per Region.")
    if model.failover is not None:
        raise fault("InvalidGlobalClusterStateFault", f"Global cluster {model.identifier} is "
                                                      f"{model.failover.status}.")
    if len(model.secondaries()) >= MAX_SECONDARIES and model.writer is not None:
        raise fault("GlobalClusterQuotaExceededFault", f"Global cluster {model.identifier} already has "
                                                       f"{MAX_SECONDARIES} secondary clusters.")
    if model.writer is not None:
        primary = database.primary_runtime()
        if primary is None or primary.cluster.writer_id is None or primary.region_down:
            raise fault("InvalidGlobalClusterStateFault", f"The primary cluster of {model.identifier} has no "
                                                          f"writer to replicate from.")
    return database


def attach_member(database: GlobalDatabase, cluster: DBCluster, runtime: ClusterRuntime) -> None:
    """After CreateDBCluster launched `cluster`: join it to the global cluster."""
    model = database.model
    model.members.append(GlobalMember(cluster.region, cluster.identifier, cluster.arn))
    cluster.global_cluster_id = model.identifier
    if model.writer is None:
        database.attach_primary(runtime)
    else:
        cluster.read_only = True
        database.attach_secondary(runtime)


def primary_of(database: GlobalDatabase) -> DBCluster | None:
    runtime = database.primary_runtime()
    return runtime.cluster if runtime else None


def _cluster_by_arn(store: RegionStore, region: Region, value: str) -> DBCluster:
    """A cluster by ARN (any Region) or by name (the caller's Region)."""
    if value.startswith("arn:"):
        parts = value.split(":")
        if len(parts) < 7:
            raise fault("DBClusterNotFoundFault", f"DBCluster {value} not found.")
        return store.region(parts[3]).cluster(parts[6])
    return region.cluster(value)


def _member(model: GlobalCluster, value: str, region: Region) -> GlobalMember:
    """A member by ARN, or by name in the caller's Region (DBClusterNotFoundFault if it is none)."""
    member = model.member_by_arn(value) if value.startswith("arn:") else model.member(region.name, value.lower())
    if member is None:
        raise fault("DBClusterNotFoundFault", f"DB cluster {value} is not a member of global cluster "
                                              f"{model.identifier}.")
    return member


def _free_slot(store: RegionStore) -> int:
    used = {d.model.slot for d in store.global_clusters.values()}
    for slot in range(1, 255):
        if slot not in used:
            return slot
    raise fault("GlobalClusterQuotaExceededFault", "No more global clusters fit in the emulator.")
