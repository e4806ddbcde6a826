"""The emulator's RDS resources as plain state, and how each renders as an API shape.

Only state and its description live here (moto's split): the backend validates requests and
the runtime drives the engines. Member names are the RDS API's own, so `describe()` output
goes straight to the model-driven serializer.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

ACCOUNT_ID = "123456789012"
HOSTED_ZONE_ID = "Z2R2ITUGPM61AM"


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
    parameter_group: str = ""
    created: datetime = field(default_factory=now)
    resource_id: str = field(default_factory=lambda: resource_id("cluster"))

    @property
    def arn(self) -> str:
        return arn(self.region, "cluster", self.identifier)

    @property
    def readers(self) -> list[DBInstance]:
        return [i for i in self.instances.values() if i.identifier != self.writer_id]

    def describe(self) -> dict[str, object]:
        members = [
            {
                "DBInstanceIdentifier": i.identifier,
                "IsClusterWriter": i.identifier == self.writer_id,
                "DBClusterParameterGroupStatus": "in-sync",
                "PromotionTier": i.promotion_tier,
            }
            for i in self.instances.values()
        ]
        azs = {i.availability_zone for i in self.instances.values()}
        return {
            "AllocatedStorage": 1,
            "AvailabilityZones": self.availability_zones,
            "BackupRetentionPeriod": self.backup_retention_period,
            "DatabaseName": self.database_name,
            "DBClusterIdentifier": self.identifier,
            "DBClusterParameterGroup": self.parameter_group,
            "DBSubnetGroup": "default",
            "Status": self.status,
            "EarliestRestorableTime": self.created,
            "Endpoint": self.cluster_address,
            "ReaderEndpoint": self.reader_address,
            "CustomEndpoints": [e.address for e in self.custom_endpoints.values()],
            "MultiAZ": len(azs) > 1,
            "Engine": self.engine,
            "EngineVersion": self.engine_version,
            "LatestRestorableTime": now(),
            "Port": self.port,
            "MasterUsername": self.master_username,
            "PreferredBackupWindow": self.preferred_backup_window,
            "PreferredMaintenanceWindow": "sun:05:00-sun:05:30",
            "ReadReplicaIdentifiers": [],
            "DBClusterMembers": members,
            "VpcSecurityGroups": [],
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
            "TagList": self.tag_list(),
            "StorageType": "aurora",
            "NetworkType": "IPV4",
            **({"BacktrackWindow": self.backtrack_window, "EarliestBacktrackTime": self.created}
               if self.backtrack_window else {}),
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
