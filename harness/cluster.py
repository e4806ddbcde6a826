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
