"""What the API families share about cluster snapshot records: identifiers, whether a cluster can
be snapshotted now, where a manual snapshot's data goes, and what a failed snapshot job leaves
(CreateDBClusterSnapshot and DeleteDBCluster's final snapshot both take one)."""

from __future__ import annotations

from pathlib import Path

from harness.emulator.api import fault
from harness.emulator.backups import new_snapshot, remove_backup, supports_backups
from harness.emulator.models import DBCluster, DBClusterSnapshot
from harness.emulator.operations.common import check_identifier
from harness.emulator.operations.state import Region
from harness.emulator.runtime import ClusterRuntime


def snapshot_directory(backup_root: Path | None, snapshot: DBClusterSnapshot) -> Path:
    """Where a manual snapshot keeps its data: apart from every cluster's own directory."""
    if backup_root is None:
        raise fault("InternalFailure", "This emulator has no backup storage.")
    return backup_root / snapshot.region / "snapshots" / snapshot.directory_name


def check_new_snapshot_id(region: Region, identifier: str, parameter: str) -> str:
    name = check_identifier(identifier, parameter)
    if any(s.identifier == name for s in region.cluster_snapshots()):
        raise fault("DBClusterSnapshotAlreadyExistsFault", f"Cannot create the cluster snapshot because one with "
                                                           f"the identifier {name} already exists.")
    return name


def snapshot_source(region: Region, cluster: DBCluster) -> ClusterRuntime:
    """The runtime of a cluster a snapshot can be taken of now: available, with data."""
    runtime = region.runtimes.get(cluster.identifier)
    if runtime is None or cluster.status != "available":
        raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} is {cluster.status}; a snapshot "
                                                  f"needs it available.")
    require_backups(runtime)
    if not runtime.backups.has_volume:
        raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} has no data yet: it has never "
                                                  f"had a DB instance.")
    if runtime.engine.writer_id is None and not runtime.engine.backs_up_resting_volume:
        raise fault("InvalidParameterCombination", f"A snapshot of a {cluster.engine} cluster without DB instances "
                                                   f"is not supported by this emulator yet (DeleteDBCluster: set "
                                                   f"SkipFinalSnapshot).")
    return runtime


def require_backups(runtime: ClusterRuntime) -> None:
    if not supports_backups(runtime.engine):
        raise fault("InvalidParameterCombination", f"Snapshots and point-in-time restore are not supported by the "
                                                   f"{runtime.cluster.engine} engine of this emulator yet.")


def begin_snapshot(region: Region, cluster: DBCluster, identifier: str, tags: dict[str, str]) -> DBClusterSnapshot:
    """A manual snapshot record of `cluster`, listed (`creating`) until a job fills it."""
    snapshot = new_snapshot(cluster, identifier, "manual", tags)
    region.snapshots[identifier] = snapshot
    return snapshot


def snapshot_failed(snapshot: DBClusterSnapshot, exc: BaseException) -> None:
    """on_error of a snapshot job: `failed` (it may be deleted), not `creating` for ever."""
    if snapshot.status == "creating":
        snapshot.status = "failed"
        if not isinstance(exc, TimeoutError):  # an overdue job still writes there
            remove_backup(snapshot.backup)
