"""One Aurora cluster, as the harness sees it: only through the public RDS API.

The same class drives real AWS and the emulator; only the boto3 client differs (endpoint URL
and credentials). botocore has no waiter for a failover, so state changes are observed by
polling DescribeDBClusters, the ground truth (RDS events are best effort).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any


class ClusterStateTimeout(TimeoutError):
    """The cluster did not reach the awaited state in time; says which state and what it was."""


@dataclass(frozen=True)
class Member:
    """A DB instance of the cluster, merged from DescribeDBClusters and DescribeDBInstances."""

    identifier: str
    is_writer: bool
    promotion_tier: int
    status: str
    availability_zone: str
    instance_class: str
    address: str
    port: int


class AuroraCluster:
    """Describe, wait, fail over, reboot, read events: each call is one or more RDS API calls."""

    def __init__(self, rds: Any, identifier: str, poll_interval: float = 0.2):
        self.rds, self.identifier, self.poll_interval = rds, identifier, poll_interval

    # --- describing ----------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """DescribeDBClusters for this cluster (raises the RDS client's DBClusterNotFoundFault)."""
        return self.rds.describe_db_clusters(DBClusterIdentifier=self.identifier)["DBClusters"][0]

    def members(self) -> list[Member]:
        cluster = self.describe()
        instances = {
            i["DBInstanceIdentifier"]: i
            for i in self.rds.describe_db_instances(
                Filters=[{"Name": "db-cluster-id", "Values": [self.identifier]}])["DBInstances"]
        }
        members = []
        for m in cluster["DBClusterMembers"]:
            instance = instances.get(m["DBInstanceIdentifier"], {})
            endpoint = instance.get("Endpoint") or {}
            members.append(Member(
                identifier=m["DBInstanceIdentifier"], is_writer=m["IsClusterWriter"],
                promotion_tier=m.get("PromotionTier", 1), status=instance.get("DBInstanceStatus", "unknown"),
                availability_zone=instance.get("AvailabilityZone", ""),
                instance_class=instance.get("DBInstanceClass", ""), address=endpoint.get("Address", ""),
                port=endpoint.get("Port", cluster["Port"])))
        return members

    def writer(self) -> Member | None:
        return next((m for m in self.members() if m.is_writer), None)

    def readers(self) -> list[Member]:
        return [m for m in self.members() if not m.is_writer]

    def topology(self) -> dict[str, Any]:
        """A compact picture of the cluster for the timeline."""
        cluster = self.describe()
        return {
            "status": cluster["Status"],
            "writer": next((m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"] if m["IsClusterWriter"]),
                           None),
            "readers": [m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"] if not m["IsClusterWriter"]],
        }

    # --- waiting ---------------------------------------------------------------------------------
    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise ClusterStateTimeout(f"{self.identifier}: {what} did not happen within {timeout:.0f} s "
                                          f"(cluster is {self.topology()})")
            time.sleep(self.poll_interval)

    def settled(self) -> bool:
        """The cluster and all its instances are available and there is a writer."""
        if self.describe()["Status"] != "available":
            return False
        members = self.members()
        return bool(members) and any(m.is_writer for m in members) and all(m.status == "available" for m in members)

    def wait_settled(self, timeout: float = 600.0) -> None:
        self.wait_until(self.settled, timeout, "settling (cluster and every instance available)")

    # --- acting ------------------------------------------------------------------------------------
    def failover(self, target: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"DBClusterIdentifier": self.identifier}
        if target:
            params["TargetDBInstanceIdentifier"] = target
        return self.rds.failover_db_cluster(**params)["DBCluster"]

    def reboot(self, instance: str) -> dict[str, Any]:
        return self.rds.reboot_db_instance(DBInstanceIdentifier=instance)["DBInstance"]

    def promotion_tier(self, instance: str) -> int:
        described = self.rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
        return int(described.get("PromotionTier", 1))

    def set_promotion_tier(self, instance: str, tier: int, timeout: float = 600.0) -> None:
        """ModifyDBInstance PromotionTier, applied immediately; returns once the API shows it and
        the instance is available again (on AWS it passes through `modifying`)."""
        self.rds.modify_db_instance(DBInstanceIdentifier=instance, PromotionTier=tier, ApplyImmediately=True)
        self.wait_until(lambda: self._instance_shows_tier(instance, tier), timeout,
                        f"{instance} showing promotion tier {tier}")

    def _instance_shows_tier(self, instance: str, tier: int) -> bool:
        described = self.rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
        return described.get("PromotionTier") == tier and described["DBInstanceStatus"] == "available"

    def events(self, since: datetime, source_type: str | None = None) -> list[dict[str, Any]]:
        """RDS events since `since` for the cluster and its instances, oldest first."""
        start = since.astimezone(timezone.utc) - timedelta(seconds=1)
        names = {self.identifier} | {m.identifier for m in self.members()}
        events = []
        for kind in ([source_type] if source_type else ["db-cluster", "db-instance"]):
            paginator = self.rds.get_paginator("describe_events")
            for page in paginator.paginate(SourceType=kind, StartTime=start):
                events += [e for e in page["Events"] if e["SourceIdentifier"] in names]
        return sorted(events, key=lambda e: e["Date"])

    # --- backups, snapshots and restores -------------------------------------------------------------
    def restorable_window(self) -> tuple[datetime | None, datetime | None]:
        """(EarliestRestorableTime, LatestRestorableTime) as DescribeDBClusters reports them now."""
        described = self.describe()
        return described.get("EarliestRestorableTime"), described.get("LatestRestorableTime")

    def restore_to_point_in_time(self, target: str, point: datetime | None, tags: list[dict[str, str]],
                                 restore_type: str = "full-copy") -> AuroraCluster:
        """RestoreDBClusterToPointInTime into a new cluster `target` (at `point`, or the latest restorable
        time when None); returns it (`creating`, no instances yet, as on AWS)."""
        params: dict[str, Any] = {"DBClusterIdentifier": target, "SourceDBClusterIdentifier": self.identifier,
                                  "RestoreType": restore_type, "Tags": tags}
        if point is None:
            params["UseLatestRestorableTime"] = True
        else:
            params["RestoreToTime"] = point
        self.rds.restore_db_cluster_to_point_in_time(**params)
        return AuroraCluster(self.rds, target, self.poll_interval)

    def take_snapshot(self, name: str, tags: list[dict[str, str]]) -> dict[str, Any]:
        """CreateDBClusterSnapshot; returns the snapshot as the API describes it (`creating`)."""
        return self.rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=name, DBClusterIdentifier=self.identifier,
                                                   Tags=tags)["DBClusterSnapshot"]

    def snapshot(self, name: str) -> dict[str, Any]:
        return self.rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name)["DBClusterSnapshots"][0]

    def restore_from_snapshot(self, snapshot: str, target: str, tags: list[dict[str, str]]) -> AuroraCluster:
        """RestoreDBClusterFromSnapshot into a new cluster `target` of this cluster's engine."""
        engine = self.describe()["Engine"]
        self.rds.restore_db_cluster_from_snapshot(DBClusterIdentifier=target, SnapshotIdentifier=snapshot,
                                                  Engine=engine, Tags=tags)
        return AuroraCluster(self.rds, target, self.poll_interval)

    def delete_snapshot(self, name: str) -> None:
        self.rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=name)

    def add_instance(self, identifier: str, instance_class: str, tags: list[dict[str, str]]) -> None:
        """CreateDBInstance in this cluster (the first one becomes its writer)."""
        engine = self.describe()["Engine"]
        self.rds.create_db_instance(DBInstanceIdentifier=identifier, DBClusterIdentifier=self.identifier,
                                    Engine=engine, DBInstanceClass=instance_class, Tags=tags)

    def delete_with_instances(self, timeout: float = 900.0) -> None:
        """Delete every instance (readers first), then the cluster itself, without a final snapshot:
        how the harness removes what it created."""
        for member in sorted(self.members(), key=lambda m: m.is_writer):
            if member.status != "deleting":
                self.rds.delete_db_instance(DBInstanceIdentifier=member.identifier, SkipFinalSnapshot=True)
        self.wait_until(lambda: not self.members(), timeout, "instances deleted")
        self.rds.delete_db_cluster(DBClusterIdentifier=self.identifier, SkipFinalSnapshot=True)

    # --- Backtrack (Aurora MySQL) ----------------------------------------------------------------------
    def backtrack(self, to: datetime, use_earliest: bool = False, force: bool = False) -> dict[str, Any]:
        """BacktrackDBCluster: rewind this cluster in place; returns the backtrack as the API answers it."""
        return self.rds.backtrack_db_cluster(DBClusterIdentifier=self.identifier, BacktrackTo=to, Force=force,
                                             UseEarliestTimeOnPointInTimeUnavailable=use_earliest)

    def backtracks(self, identifier: str | None = None) -> list[dict[str, Any]]:
        """DescribeDBClusterBacktracks, newest first as AWS lists them (all pages)."""
        params: dict[str, Any] = {"DBClusterIdentifier": self.identifier}
        if identifier:
            params["BacktrackIdentifier"] = identifier
        pages = self.rds.get_paginator("describe_db_cluster_backtracks").paginate(**params)
        return [b for page in pages for b in page["DBClusterBacktracks"]]
