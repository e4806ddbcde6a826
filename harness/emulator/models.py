"""The emulator's RDS resources as plain state, and how each renders as an API shape.

Only state and its description live here (moto's split): the backend validates requests and
the runtime drives the engines. Member names are the RDS API's own, so `describe()` output
goes straight to the model-driven serializer.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.emulator.engines.base import BaseBackup

_SNAPSHOT_PINS = threading.Lock()
ACCOUNT_ID = "123456789012"
HOSTED_ZONE_ID = "Z2R2ITUGPM61AM"
LICENSE_MODELS = {"aurora-postgresql": "postgresql-license", "aurora-mysql": "general-public-license"}

# (EarliestRestorableTime, LatestRestorableTime); None before the first backup, as AWS leaves them out.
RestoreWindow = tuple[datetime | None, datetime | None]
# (EarliestBacktrackTime, BacktrackConsumedChangeRecords) of a cluster with Backtrack on.
BacktrackState = tuple[datetime | None, int]
BACKTRACK_STATUSES = ("pending", "applying", "completed", "failed")


def now() -> datetime:
    return datetime.now(UTC)


def resource_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:26].upper()}"


def arn(region: str, kind: str, name: str) -> str:
    return f"arn:aws:rds:{region}:{ACCOUNT_ID}:{kind}:{name}"


def dns_suffix(region: str, cluster_id: str) -> str:
    """Aurora-style unique suffix, stable for a cluster name (used for display names only)."""
    return hashlib.sha1(f"{region}/{cluster_id}".encode()).hexdigest()[:12]


@dataclass
class Tagged:
    tags: dict[str, str] = field(default_factory=dict)

    def tag_list(self) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in self.tags.items()]


@dataclass
class Event:
    """One RDS event, as DescribeEvents returns it (there is no EventID in the API)."""

    date: datetime
    source_type: str
    source_id: str
    message: str
    categories: list[str]
    source_arn: str

    def describe(self) -> dict[str, object]:
        return {
            "SourceIdentifier": self.source_id,
            "SourceType": self.source_type,
            "Message": self.message,
            "EventCategories": self.categories,
            "Date": self.date,
            "SourceArn": self.source_arn,
        }


@dataclass
class EventLog:
    """Events of one region, in order. Thread-safe: jobs append while the API reads."""

    events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, source_type: str, source_id: str, source_arn: str, message: str, *categories: str) -> Event:
        event = Event(now(), source_type, source_id, message, list(categories), source_arn)
        with self._lock:
            self.events.append(event)
        return event

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)


@dataclass
class DBInstance(Tagged):
    identifier: str = ""
    cluster_id: str = ""
    region: str = ""
    engine: str = ""
    engine_version: str = ""
    instance_class: str = ""
    availability_zone: str = ""
    promotion_tier: int = 1
    status: str = "creating"
    slot: int = 0
    address: str = ""
    port: int = 0
    created: datetime = field(default_factory=now)
    resource_id: str = field(default_factory=lambda: resource_id("db"))

    @property
    def arn(self) -> str:
        return arn(self.region, "db", self.identifier)

    def describe(self, cluster: DBCluster) -> dict[str, object]:
        return {
            "DBInstanceIdentifier": self.identifier,
            "DBInstanceClass": self.instance_class,
            "Engine": self.engine,
            "DBInstanceStatus": self.status,
            "MasterUsername": cluster.master_username,
            "DBName": cluster.database_name,
            "Endpoint": {"Address": self.address, "Port": self.port, "HostedZoneId": HOSTED_ZONE_ID},
            "AllocatedStorage": 1,
            "InstanceCreateTime": self.created,
            "PreferredBackupWindow": cluster.preferred_backup_window,
            "BackupRetentionPeriod": cluster.backup_retention_period,
            "AvailabilityZone": self.availability_zone,
            "MultiAZ": False,
            "EngineVersion": self.engine_version,
            "AutoMinorVersionUpgrade": True,
            "PubliclyAccessible": False,
            "StorageType": "aurora",
            "DbInstancePort": 0,
            "DBClusterIdentifier": self.cluster_id,
            "StorageEncrypted": cluster.storage_encrypted,
            "DbiResourceId": self.resource_id,
            "PromotionTier": self.promotion_tier,
            "DBInstanceArn": self.arn,
            "IAMDatabaseAuthenticationEnabled": False,
            "PerformanceInsightsEnabled": False,
            "DeletionProtection": False,
            "TagList": self.tag_list(),
            "CopyTagsToSnapshot": False,
        }


@dataclass
class CustomEndpoint(Tagged):
    identifier: str = ""
    cluster_id: str = ""
    region: str = ""
    custom_type: str = "ANY"  # READER | ANY
    static_members: list[str] = field(default_factory=list)
    excluded_members: list[str] = field(default_factory=list)
    status: str = "creating"
    address: str = ""
    slot: int = 0
    resource_id: str = field(default_factory=lambda: resource_id("cluster-endpoint").lower())

    @property
    def arn(self) -> str:
        return arn(self.region, "cluster-endpoint", self.identifier)

    def members(self, cluster: DBCluster) -> list[str]:
        """Instances this endpoint may route to (static list, else all but the excluded)."""
        if self.static_members:
            return [i for i in self.static_members if i in cluster.instances]
        return [i for i in cluster.instances if i not in self.excluded_members]

    def describe(self) -> dict[str, object]:
        return {
            "DBClusterEndpointIdentifier": self.identifier,
            "DBClusterIdentifier": self.cluster_id,
            "DBClusterEndpointResourceIdentifier": self.resource_id,
            "Endpoint": self.address,
            "Status": self.status,
            "EndpointType": "CUSTOM",
            "CustomEndpointType": self.custom_type,
            "StaticMembers": self.static_members,
            "ExcludedMembers": self.excluded_members,
            "DBClusterEndpointArn": self.arn,
        }


@dataclass
class DBCluster(Tagged):
    identifier: str = ""
    region: str = ""
    engine: str = ""
    engine_version: str = ""
    port: int = 5432
    master_username: str = ""
    master_password: str = field(default="", repr=False)
    database_name: str | None = None
    status: str = "creating"
    slot: int = 0
    availability_zones: list[str] = field(default_factory=list)
    instances: dict[str, DBInstance] = field(default_factory=dict)
    writer_id: str | None = None
    custom_endpoints: dict[str, CustomEndpoint] = field(default_factory=dict)
    cluster_address: str = ""
    reader_address: str = ""
    deletion_protection: bool = False
    backup_retention_period: int = 1
    preferred_backup_window: str = "07:00-07:30"
    storage_encrypted: bool = False
    backtrack_window: int = 0  # seconds; Aurora MySQL only
    subnet_group: str = "default"
    parameter_group: str = ""
    vpc_security_groups: list[str] = field(default_factory=list)
    clone_group_id: str | None = None  # shared by a clone and its source (copy-on-write restores)
    global_cluster_id: str | None = None  # the Global Database it belongs to
    read_only: bool = False  # a Global Database secondary: no instance is its writer
    created: datetime = field(default_factory=now)
    resource_id: str = field(default_factory=lambda: resource_id("cluster"))
    # The cluster's continuous backup says what it can restore to (backups.ContinuousBackup.window)
    # and, with Backtrack on, how far back it can be rewound (ContinuousBackup.backtrack_state).
    restore_window: Callable[[], RestoreWindow] = field(default=lambda: (None, None), repr=False)
    backtrack_state: Callable[[], BacktrackState] = field(default=lambda: (None, 0), repr=False)
    backtracks: list[DBClusterBacktrack] = field(default_factory=list)  # oldest first

    @property
    def arn(self) -> str:
        return arn(self.region, "cluster", self.identifier)

    @property
    def readers(self) -> list[DBInstance]:
        return [i for i in list(self.instances.values()) if i.identifier != self.writer_id]

    def describe(self) -> dict[str, object]:
        members = [
            {
                "DBInstanceIdentifier": i.identifier,
                "IsClusterWriter": i.identifier == self.writer_id and not self.read_only,
                "DBClusterParameterGroupStatus": "in-sync",
                "PromotionTier": i.promotion_tier,
            }
            for i in self.instances.values()
        ]
        azs = {i.availability_zone for i in self.instances.values()}
        earliest, latest = self.restore_window()
        backtrack: dict[str, object] = {}
        if self.backtrack_window:
            earliest_backtrack, records = self.backtrack_state()
            backtrack = {"BacktrackWindow": self.backtrack_window, "EarliestBacktrackTime": earliest_backtrack,
                         "BacktrackConsumedChangeRecords": records}
        return {
            "AllocatedStorage": 1,
            "AvailabilityZones": self.availability_zones,
            "BackupRetentionPeriod": self.backup_retention_period,
            "DatabaseName": self.database_name,
            "DBClusterIdentifier": self.identifier,
            "DBClusterParameterGroup": self.parameter_group,
            "DBSubnetGroup": self.subnet_group,
            "Status": self.status,
            "EarliestRestorableTime": earliest,
            "Endpoint": self.cluster_address,
            "ReaderEndpoint": self.reader_address,
            "CustomEndpoints": [e.address for e in self.custom_endpoints.values()],
            "MultiAZ": len(azs) > 1,
            "Engine": self.engine,
            "EngineVersion": self.engine_version,
            "LatestRestorableTime": latest,
            "Port": self.port,
            "MasterUsername": self.master_username,
            "PreferredBackupWindow": self.preferred_backup_window,
            "PreferredMaintenanceWindow": "sun:05:00-sun:05:30",
            "ReadReplicaIdentifiers": [],
            "DBClusterMembers": members,
            "VpcSecurityGroups": [{"VpcSecurityGroupId": g, "Status": "active"} for g in self.vpc_security_groups],
            "HostedZoneId": HOSTED_ZONE_ID,
            "StorageEncrypted": self.storage_encrypted,
            "DbClusterResourceId": self.resource_id,
            "DBClusterArn": self.arn,
            "AssociatedRoles": [],
            "IAMDatabaseAuthenticationEnabled": False,
            "ClusterCreateTime": self.created,
            "EngineMode": "provisioned",
            "DeletionProtection": self.deletion_protection,
            "HttpEndpointEnabled": False,
            "CopyTagsToSnapshot": False,
            "CrossAccountClone": False,
            "CloneGroupId": self.clone_group_id,
            "GlobalClusterIdentifier": self.global_cluster_id,
            **({"GlobalWriteForwardingStatus": "disabled"} if self.global_cluster_id else {}),
            "TagList": self.tag_list(),
            "StorageType": "aurora",
            "NetworkType": "IPV4",
            **backtrack,
        }

    def endpoint_descriptions(self) -> list[dict[str, object]]:
        """DescribeDBClusterEndpoints lists the built-in writer and reader endpoints too."""
        built_in = [
            {
                "DBClusterEndpointIdentifier": self.identifier,
                "DBClusterIdentifier": self.identifier,
                "Endpoint": address,
                "Status": "available",
                "EndpointType": kind,
            }
            for kind, address in (("WRITER", self.cluster_address), ("READER", self.reader_address))
        ]
        return built_in + [e.describe() for e in self.custom_endpoints.values()]


@dataclass
class DBClusterBacktrack:
    """One BacktrackDBCluster request. `backtrack_to` is the moment asked for (to the millisecond,
    as the API carries it; the earliest backtrack time when that was asked for instead), which the
    completed backtrack reached; `backtracked_from` the latest moment the cluster held before."""

    cluster_id: str = ""
    backtrack_to: datetime = field(default_factory=now)
    backtracked_from: datetime = field(default_factory=now)
    requested: datetime = field(default_factory=now)
    status: str = "pending"  # pending | applying | completed | failed
    identifier: str = field(default_factory=lambda: str(uuid.uuid4()))

    def describe(self) -> dict[str, object]:
        return {
            "DBClusterIdentifier": self.cluster_id,
            "BacktrackIdentifier": self.identifier,
            "BacktrackTo": self.backtrack_to,
            "BacktrackedFrom": self.backtracked_from,
            "BacktrackRequestCreationTime": self.requested,
            "Status": self.status,
        }


@dataclass
class DBClusterSnapshot(Tagged):
    """A cluster snapshot: manual (CreateDBClusterSnapshot, a final snapshot, a copy) or automated
    (one of the continuous backup's base backups, `rds:<cluster>-<time>`). Its data is `backup`, a
    directory outside any cluster's own, so it outlives the cluster."""

    identifier: str = ""
    cluster_id: str = ""
    region: str = ""
    engine: str = ""
    engine_version: str = ""
    port: int = 0
    master_username: str = ""
    master_password: str = field(default="", repr=False)  # the restored cluster's, as the data holds it
    database_name: str | None = None
    availability_zones: list[str] = field(default_factory=list)
    snapshot_type: str = "manual"  # manual | automated
    status: str = "creating"  # creating | available | failed
    percent_progress: int = 0
    created: datetime = field(default_factory=now)  # SnapshotCreateTime
    cluster_created: datetime = field(default_factory=now)
    cluster_resource_id: str = ""
    storage_encrypted: bool = False
    backup_retention_period: int = 1
    source_arn: str | None = None  # a copy's source snapshot
    backup: BaseBackup | None = field(default=None, repr=False)
    directory_name: str = field(default_factory=lambda: uuid.uuid4().hex)  # where its data goes, unique
    in_use: int = 0  # restores and copies reading `backup` now: it may not be deleted under them

    @property
    def arn(self) -> str:
        return arn(self.region, "cluster-snapshot", self.identifier)

    def pin(self, by: int = 1) -> None:
        """A restore or copy starts (1) or stops (-1) reading this snapshot's data."""
        with _SNAPSHOT_PINS:
            self.in_use += by

    def describe(self) -> dict[str, object]:
        size = self.backup.size_bytes if self.backup else 0
        return {
            "AvailabilityZones": self.availability_zones,
            "DBClusterSnapshotIdentifier": self.identifier,
            "DBClusterIdentifier": self.cluster_id,
            "SnapshotCreateTime": self.created,
            "Engine": self.engine,
            "EngineMode": "provisioned",
            "AllocatedStorage": max(1, -(-size // 2**30)),
            "Status": self.status,
            "Port": self.port,
            "VpcId": "vpc-gameday",
            "ClusterCreateTime": self.cluster_created,
            "MasterUsername": self.master_username,
            "EngineVersion": self.engine_version,
            "LicenseModel": LICENSE_MODELS.get(self.engine, "general-public-license"),
            "SnapshotType": self.snapshot_type,
            "PercentProgress": self.percent_progress,
            "StorageEncrypted": self.storage_encrypted,
            "BackupRetentionPeriod": self.backup_retention_period if self.snapshot_type == "automated" else None,
            "DBClusterSnapshotArn": self.arn,
            "SourceDBClusterSnapshotArn": self.source_arn,
            "IAMDatabaseAuthenticationEnabled": False,
            "TagList": self.tag_list(),
            "StorageType": "aurora",
            "DbClusterResourceId": self.cluster_resource_id,
        }
