"""A Global Database as the RDS API shows it: members across Regions, the writer, FailoverState.

Plain state and its `describe()` (the `GlobalCluster` shape); `global_database.py` drives the
data plane behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.emulator.models import ACCOUNT_ID, Tagged, resource_id

GLOBAL_ENDPOINT_DOMAIN = "global.rds.amazonaws.com"


def global_arn(identifier: str) -> str:
    """Global clusters have no Region in their ARN."""
    return f"arn:aws:rds::{ACCOUNT_ID}:global-cluster:{identifier}"


@dataclass
class GlobalMember:
    """One DB cluster of the global database, in its Region."""

    region: str
    cluster_id: str
    arn: str
    synchronization: str = "connected"  # connected | pending-resync

    def key(self) -> tuple[str, str]:
        return (self.region, self.cluster_id)


@dataclass
class FailoverState:
    """A switchover or failover in progress (absent otherwise)."""

    status: str  # pending | switching-over | failing-over | cancelling
    from_arn: str
    to_arn: str
    data_loss: bool

    def describe(self) -> dict[str, Any]:
        return {"Status": self.status, "FromDbClusterArn": self.from_arn, "ToDbClusterArn": self.to_arn,
                "IsDataLossAllowed": self.data_loss}


@dataclass
class GlobalCluster(Tagged):
    identifier: str = ""
    engine: str = ""
    engine_version: str = ""
    database_name: str | None = None
    storage_encrypted: bool = False
    deletion_protection: bool = False
    status: str = "available"
    slot: int = 0  # names its writer endpoint's address
    endpoint: str = ""  # the global writer endpoint's address (the emulator's endpoints are addresses)
    members: list[GlobalMember] = field(default_factory=list)
    writer: tuple[str, str] | None = None  # (region, cluster) of the primary
    failover: FailoverState | None = None
    resource_id: str = field(default_factory=lambda: resource_id("cluster").lower())

    @property
    def arn(self) -> str:
        return global_arn(self.identifier)

    @property
    def endpoint_name(self) -> str:
        """The DNS name AWS would give the global writer endpoint (the emulator serves `endpoint`)."""
        return f"{self.identifier}.global-{self.resource_id[-12:]}.{GLOBAL_ENDPOINT_DOMAIN}"

    def member(self, region: str, cluster_id: str) -> GlobalMember | None:
        return next((m for m in self.members if m.key() == (region, cluster_id)), None)

    def member_by_arn(self, value: str) -> GlobalMember | None:
        return next((m for m in self.members if m.arn == value), None)

    def primary(self) -> GlobalMember | None:
        return self.member(*self.writer) if self.writer else None

    def secondaries(self) -> list[GlobalMember]:
        return [m for m in self.members if m.key() != self.writer]

    def describe(self) -> dict[str, Any]:
        secondaries = [m.arn for m in self.secondaries()]
        members = [{"DBClusterArn": m.arn, "IsWriter": m.key() == self.writer,
                    "Readers": secondaries if m.key() == self.writer else [],
                    "GlobalWriteForwardingStatus": "disabled", "SynchronizationStatus": m.synchronization}
                   for m in self.members]
        return {
            "GlobalClusterIdentifier": self.identifier,
            "GlobalClusterResourceId": self.resource_id,
            "GlobalClusterArn": self.arn,
            "Status": self.status,
            "Engine": self.engine,
            "EngineVersion": self.engine_version,
            "DatabaseName": self.database_name,
            "StorageEncrypted": self.storage_encrypted,
            "DeletionProtection": self.deletion_protection,
            "GlobalClusterMembers": members,
            "Endpoint": self.endpoint if self.writer else None,
            "TagList": self.tag_list(),
            **({"FailoverState": self.failover.describe()} if self.failover else {}),
        }
