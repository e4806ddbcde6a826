"""The RDS operations the emulator answers: validate, change the models, start jobs.

Each public method is named after its operation in snake case and takes the parsed request
parameters; it returns the result members, or raises an ApiError with the code AWS uses.
Long operations return at once with a transitional status and finish in a job thread, so
clients see `creating`, `failing-over` and `rebooting` the way they do on AWS.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from harness.emulator.addresses import ClusterAddresses, first_free
from harness.emulator.api import ApiError, fault
from harness.emulator.models import CustomEndpoint, DBCluster, DBInstance, EventLog, now
from harness.aurora import instance_size
from harness.emulator.runtime import ClusterRuntime

if TYPE_CHECKING:
    from harness.emulator.emulator import Emulator

log = logging.getLogger("harness.emulator")

@dataclass(frozen=True)
class EngineSpec:
    """An Aurora engine as the API presents it, and what the emulator runs it on."""

    port: int
    default_version: str
    version_prefix: str  # versions the emulator can serve
    parameter_group: str
    master_user_max: int
    reserved_users: frozenset[str]


ENGINES = {
    "aurora-postgresql": EngineSpec(5432, "15.10", "15.", "default.aurora-postgresql15", 63,
                                    frozenset({"rdsadmin", "postgres"})),
    "aurora-mysql": EngineSpec(3306, "8.0.mysql_aurora.3.05.2", "8.0.mysql_aurora.3.", "default.aurora-mysql8.0",
                               16, frozenset({"rdsadmin", "root", "mariadb.sys"})),
}
# Parameters only one engine takes, and how AWS words the refusal for the other.
ENGINE_ONLY_PARAMETERS = {
    "BacktrackWindow": ("aurora-mysql", "Backtrack is not supported for the {engine} engine."),
    "EnableLimitlessDatabase": ("aurora-postgresql", "Limitless Database is not supported for the {engine} engine."),
}
IDENTIFIER = re.compile(r"[a-zA-Z](?:-?[a-zA-Z0-9])*")
FORBIDDEN_PASSWORD_CHARS = set('/"@ ')
MAX_CUSTOM_ENDPOINTS = 5
MAX_INSTANCES = 16


def snake_case(operation: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", operation).lower()


def check_identifier(value: str, parameter: str, max_length: int = 63) -> str:
    """RDS identifier rules: letters, digits and single hyphens, starting with a letter."""
    if not (1 <= len(value) <= max_length and IDENTIFIER.fullmatch(value)):
        raise fault("InvalidParameterValue",
                    f"The parameter {parameter} is not a valid identifier. Identifiers must begin with a "
                    f"letter; must contain only ASCII letters, digits, and hyphens; and must not end with "
                    f"a hyphen or contain two consecutive hyphens (got {value!r}).")
    return value.lower()


def paginate(items: list[Any], params: dict[str, Any]) -> tuple[list[Any], str | None]:
    """MaxRecords (20-100, default 100) and an opaque Marker, as the Describe calls take them."""
    limit = params.get("MaxRecords", 100)
    if not 20 <= limit <= 100:
        raise fault("InvalidParameterValue", f"MaxRecords must be between 20 and 100 (got {limit}).")
    start = 0
    if params.get("Marker"):
        try:
            start = int(base64.urlsafe_b64decode(params["Marker"].encode()).decode())
        except ValueError as exc:
            raise fault("InvalidParameterValue", "The Marker is not valid.") from exc
    page = items[start:start + limit]
    more = start + limit < len(items)
    return page, base64.urlsafe_b64encode(str(start + limit).encode()).decode() if more else None


def apply_filters(items: Iterable[Any], filters: list[dict[str, Any]] | None,
                  fields: dict[str, Callable[[Any], str]]) -> list[Any]:
    selected = list(items)
    for entry in filters or []:
        name = entry["Name"]
        if name not in fields:
            raise fault("InvalidParameterValue", f"Unrecognized filter name: {name}. Supported: "
                                                 f"{', '.join(sorted(fields))}.")
        values = set(entry.get("Values") or [])
        selected = [item for item in selected if fields[name](item) in values]
    return selected


@dataclass
class Region:
    """One region's resources. Instances are looked up by name across clusters."""

    name: str
    clusters: dict[str, DBCluster] = field(default_factory=dict)
    runtimes: dict[str, ClusterRuntime] = field(default_factory=dict)
    events: EventLog = field(default_factory=EventLog)

    def instance(self, identifier: str) -> tuple[DBCluster, DBInstance]:
        for cluster in self.clusters.values():
            if identifier in cluster.instances:
                return cluster, cluster.instances[identifier]
        raise fault("DBInstanceNotFoundFault", f"DBInstance {identifier} not found.")

    def cluster(self, identifier: str) -> DBCluster:
        identifier = identifier.rsplit(":", 1)[-1].lower() if identifier.startswith("arn:") else identifier.lower()
        if identifier not in self.clusters:
            raise fault("DBClusterNotFoundFault", f"DBCluster {identifier} not found.")
        return self.clusters[identifier]

    @property
    def availability_zones(self) -> list[str]:
        return [f"{self.name}{suffix}" for suffix in "abc"]


class RdsBackend:
    """All regions of one emulator and the operations on them."""

    def __init__(self, emulator: Emulator):
        self.emulator = emulator
        self.regions: dict[str, Region] = {}
        self.lock = threading.RLock()
        self.retiring_slots: set[int] = set()  # deleted clusters whose teardown is still running

    # --- plumbing -------------------------------------------------------------------------------
    def region(self, name: str) -> Region:
        with self.lock:
            if name not in self.regions:
                self.regions[name] = Region(name)
            return self.regions[name]

    def dispatch(self, region_name: str, operation: str, params: dict[str, Any]) -> dict[str, Any] | None:
        handler = getattr(self, snake_case(operation), None)
        if handler is None:
            raise fault("InvalidAction", f"The action {operation} is not supported by the aurora-gameday "
                                         f"emulator.")
        with self.lock:
            return handler(self.region(region_name), params)

    def _used_cluster_slots(self) -> set[int]:
        # A slot names the cluster's addresses, listeners and sockets: reuse it only once the
        # previous owner's teardown has finished.
        return {c.slot for r in self.regions.values() for c in r.clusters.values()} | self.retiring_slots | {0}

    # --- clusters --------------------------------------------------------------------------------
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
        for parameter, (only_for, message) in ENGINE_ONLY_PARAMETERS.items():
            if p.get(parameter) and engine != only_for:
                raise fault("InvalidParameterValue", message.format(engine=engine))
        if not 0 <= p.get("BacktrackWindow", 0) <= 259200:
            raise fault("InvalidParameterValue", "The BacktrackWindow must be between 0 and 259200 seconds (72 hours).")
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
        port = p.get("Port") or spec.port
        if not 1150 <= port <= 65535:
            raise fault("InvalidParameterValue", f"Port {port} is outside the allowed range 1150-65535.")
        slot = first_free(self._used_cluster_slots(), 255)
        addresses = ClusterAddresses(self.emulator.net, slot)
        cluster = DBCluster(
            identifier=identifier, region=region.name, engine=engine, engine_version=version, port=port,
            master_username=username, master_password=password, database_name=database, slot=slot,
            availability_zones=list(azs), cluster_address=addresses.cluster_endpoint,
            reader_address=addresses.reader_endpoint, deletion_protection=bool(p.get("DeletionProtection")),
            backup_retention_period=p.get("BackupRetentionPeriod", 1), parameter_group=spec.parameter_group,
            storage_encrypted=bool(p.get("StorageEncrypted")), backtrack_window=p.get("BacktrackWindow", 0),
            tags=tags_of(p),
        )
        runtime = self.emulator.new_runtime(cluster, addresses)
        region.clusters[identifier] = cluster
        region.runtimes[identifier] = runtime
        cluster.status = "available"
        runtime.publish_endpoints()
        runtime.cluster_event("DB cluster created.", "creation")
        return {"DBCluster": cluster.describe()}

    def describe_db_clusters(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("DBClusterIdentifier"):
            clusters = [region.cluster(p["DBClusterIdentifier"])]
        else:
            clusters = list(region.clusters.values())
        clusters = apply_filters(clusters, p.get("Filters"), {
            "db-cluster-id": lambda c: c.identifier, "engine": lambda c: c.engine,
            "db-cluster-resource-id": lambda c: c.resource_id})
        page, marker = paginate(clusters, p)
        return {"DBClusters": [c.describe() for c in page], "Marker": marker}

    def modify_db_cluster(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        cluster = region.cluster(p["DBClusterIdentifier"])
        unsupported = [k for k in ("NewDBClusterIdentifier", "EngineVersion", "Port", "BacktrackWindow")
                       if p.get(k) is not None]
        if unsupported:
            raise fault("InvalidParameterCombination", f"The emulator cannot modify {', '.join(unsupported)} "
                                                       f"of a cluster.")
        if cluster.status != "available":
            raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} is not in the available "
                                                      f"state (it is {cluster.status}).")
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
        return {"DBCluster": cluster.describe()}

    def delete_db_cluster(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        cluster = region.cluster(p["DBClusterIdentifier"])
        if cluster.deletion_protection:
            raise fault("InvalidParameterCombination", "Cannot delete protected Cluster, please disable "
                                                       "deletion protection and try again.")
        if not p.get("SkipFinalSnapshot") and not p.get("FinalDBSnapshotIdentifier"):
            raise fault("InvalidParameterCombination", "FinalDBSnapshotIdentifier is required unless "
                                                       "SkipFinalSnapshot is specified.")
        if p.get("FinalDBSnapshotIdentifier") and not p.get("SkipFinalSnapshot"):
            raise fault("InvalidParameterCombination", "The emulator does not take final snapshots; set "
                                                       "SkipFinalSnapshot.")
        if cluster.instances:
            raise fault("InvalidDBClusterStateFault", "Cluster cannot be deleted, it still contains DB "
                                                      "instances in non-deleting state.")
        cluster.status = "deleting"
        description = cluster.describe()
        runtime = region.runtimes.pop(cluster.identifier)
        # Listed as `deleting` until its files are gone, as on AWS: a CreateDBCluster of the same name
        # meanwhile gets DBClusterAlreadyExists instead of a directory the deletion is removing.
        self.retiring_slots.add(cluster.slot)

        def finish() -> None:
            try:
                runtime.destroy()
                runtime.cluster_event("DB cluster deleted.", "deletion")
            finally:
                with self.lock:
                    self.retiring_slots.discard(cluster.slot)
                    if region.clusters.get(cluster.identifier) is cluster:
                        del region.clusters[cluster.identifier]

        self.emulator.jobs.start(f"delete {cluster.identifier}", finish)
        return {"DBCluster": description}

    # --- instances ---------------------------------------------------------------------------------
    def create_db_instance(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        identifier = check_identifier(p["DBInstanceIdentifier"], "DBInstanceIdentifier")
        if not p.get("DBClusterIdentifier"):
            raise fault("InvalidParameterValue", "An Aurora DB instance needs DBClusterIdentifier: the emulator "
                                                 "only runs Aurora clusters.")
        cluster = region.cluster(p["DBClusterIdentifier"])
        if p["Engine"] != cluster.engine:
            raise fault("InvalidParameterCombination", f"The engine {p['Engine']} does not match the engine of "
                                                       f"DB cluster {cluster.identifier} ({cluster.engine}).")
        if any(identifier in c.instances for c in region.clusters.values()):
            raise fault("DBInstanceAlreadyExistsFault", f"DB instance already exists: {identifier}")
        if cluster.status not in ("available",):
            raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} is {cluster.status}; "
                                                      f"instances can be added when it is available.")
        if len(cluster.instances) >= MAX_INSTANCES:
            raise fault("InstanceQuotaExceededFault", f"A cluster holds at most {MAX_INSTANCES} instances.")
        tier = p.get("PromotionTier", 1)
        check_tier(tier)
        instance_class = p["DBInstanceClass"]
        if not re.fullmatch(r"db\.[a-z0-9]+\.[a-z0-9]+", instance_class) or instance_size(instance_class) == 0:
            raise fault("InvalidParameterValue", f"Invalid DB instance class: {instance_class}.")
        az = p.get("AvailabilityZone") or self._next_az(cluster)
        if az not in cluster.availability_zones:
            raise fault("InvalidParameterValue", f"Availability zone {az} is not one of the cluster's zones "
                                                 f"({', '.join(cluster.availability_zones)}).")
        slot = first_free({i.slot for i in cluster.instances.values()}, MAX_INSTANCES)
        addresses = ClusterAddresses(self.emulator.net, cluster.slot)
        instance = DBInstance(
            identifier=identifier, cluster_id=cluster.identifier, region=region.name, engine=cluster.engine,
            engine_version=cluster.engine_version, instance_class=instance_class, availability_zone=az,
            promotion_tier=tier, slot=slot, address=addresses.instance_endpoint(slot), port=cluster.port,
            tags=tags_of(p),
        )
        cluster.instances[identifier] = instance
        runtime = region.runtimes[cluster.identifier]
        self.emulator.jobs.start(f"create {identifier}", runtime.create_instance, instance, addresses.engine(slot))
        return {"DBInstance": instance.describe(cluster)}

    def _next_az(self, cluster: DBCluster) -> str:
        """Spread instances over the cluster's zones, as the console does by default."""
        used = [i.availability_zone for i in cluster.instances.values()]
        return min(cluster.availability_zones, key=lambda az: (used.count(az), az))

    def describe_db_instances(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("DBInstanceIdentifier"):
            pairs = [region.instance(p["DBInstanceIdentifier"].rsplit(":", 1)[-1])]
        else:
            pairs = [(c, i) for c in region.clusters.values() for i in c.instances.values()]
        pairs = apply_filters(pairs, p.get("Filters"), {
            "db-cluster-id": lambda pair: pair[0].identifier, "db-instance-id": lambda pair: pair[1].identifier,
            "engine": lambda pair: pair[1].engine, "dbi-resource-id": lambda pair: pair[1].resource_id})
        page, marker = paginate(pairs, p)
        return {"DBInstances": [i.describe(c) for c, i in page], "Marker": marker}

    def modify_db_instance(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        cluster, instance = region.instance(p["DBInstanceIdentifier"])
        if p.get("NewDBInstanceIdentifier"):
            raise fault("InvalidParameterCombination", "The emulator cannot rename DB instances.")
        if p.get("PromotionTier") is not None:
            check_tier(p["PromotionTier"])
            instance.promotion_tier = p["PromotionTier"]
        if p.get("DBInstanceClass"):
            if instance_size(p["DBInstanceClass"]) == 0:
                raise fault("InvalidParameterValue", f"Invalid DB instance class: {p['DBInstanceClass']}.")
            instance.instance_class = p["DBInstanceClass"]
        return {"DBInstance": instance.describe(cluster)}

    def delete_db_instance(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        cluster, instance = region.instance(p["DBInstanceIdentifier"])
        if instance.status in ("deleting", "creating"):
            raise fault("InvalidDBInstanceStateFault", f"Instance {instance.identifier} cannot be deleted while "
                                                       f"it is {instance.status}.")
        instance.status = "deleting"
        runtime = region.runtimes[cluster.identifier]
        self.emulator.jobs.start(f"delete {instance.identifier}", runtime.delete_instance, instance, lambda: None)
        return {"DBInstance": instance.describe(cluster)}

    def reboot_db_instance(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        cluster, instance = region.instance(p["DBInstanceIdentifier"])
        if p.get("ForceFailover"):
            raise fault("InvalidParameterCombination", "ForceFailover does not apply to Aurora DB instances; "
                                                       "use FailoverDBCluster.")
        if instance.status != "available" or cluster.status != "available":
            raise fault("InvalidDBInstanceStateFault", "Instance cannot currently reboot due to an in-progress "
                                                       "management operation.")
        instance.status = "rebooting"
        runtime = region.runtimes[cluster.identifier]
        self.emulator.jobs.start(f"reboot {instance.identifier}", runtime.reboot, instance)
        return {"DBInstance": instance.describe(cluster)}

    # --- failover ------------------------------------------------------------------------------------
    def failover_db_cluster(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        cluster = region.cluster(p["DBClusterIdentifier"])
        if cluster.status != "available":
            raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} is {cluster.status}; it "
                                                      f"must be available to fail over.")
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
        self.emulator.jobs.start(f"failover {cluster.identifier}", runtime.failover, target)
        return {"DBCluster": cluster.describe()}

    # --- custom endpoints ------------------------------------------------------------------------------
    def create_db_cluster_endpoint(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        cluster = region.cluster(p["DBClusterIdentifier"])
        if cluster.status == "deleting":
            raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} is being deleted.")
        identifier = check_identifier(p["DBClusterEndpointIdentifier"], "DBClusterEndpointIdentifier")
        if any(identifier in c.custom_endpoints for c in region.clusters.values()):
            raise fault("DBClusterEndpointAlreadyExistsFault", f"DB cluster endpoint {identifier} already exists.")
        custom_type = p["EndpointType"].upper()
        if custom_type not in ("READER", "ANY"):
            raise fault("InvalidParameterValue", f"EndpointType must be READER or ANY (got {p['EndpointType']}).")
        if len(cluster.custom_endpoints) >= MAX_CUSTOM_ENDPOINTS:
            raise fault("DBClusterEndpointQuotaExceededFault", f"A cluster can have at most {MAX_CUSTOM_ENDPOINTS} "
                                                               f"custom endpoints.")
        static, excluded = p.get("StaticMembers") or [], p.get("ExcludedMembers") or []
        if static and excluded:
            raise fault("InvalidParameterCombination", "Specify StaticMembers or ExcludedMembers, not both.")
        for member in static + excluded:
            if member not in cluster.instances:
                raise fault("DBInstanceNotFoundFault", f"DBInstance {member} not found in DB cluster "
                                                       f"{cluster.identifier}.")
        slot = first_free({e.slot for e in cluster.custom_endpoints.values()}, MAX_CUSTOM_ENDPOINTS)
        endpoint = CustomEndpoint(
            identifier=identifier, cluster_id=cluster.identifier, region=region.name, custom_type=custom_type,
            static_members=static, excluded_members=excluded, slot=slot,
            address=ClusterAddresses(self.emulator.net, cluster.slot).custom_endpoint(slot), tags=tags_of(p))
        cluster.custom_endpoints[identifier] = endpoint
        result = endpoint.describe()
        region.runtimes[cluster.identifier].publish_endpoints()
        return result

    def describe_db_cluster_endpoints(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        clusters = ([region.cluster(p["DBClusterIdentifier"])] if p.get("DBClusterIdentifier")
                    else list(region.clusters.values()))
        endpoints = [e for c in clusters for e in c.endpoint_descriptions()]
        if p.get("DBClusterEndpointIdentifier"):
            endpoints = [e for e in endpoints if e.get("EndpointType") == "CUSTOM"
                         and e["DBClusterEndpointIdentifier"] == p["DBClusterEndpointIdentifier"].lower()]
        endpoints = apply_filters(endpoints, p.get("Filters"), {
            "db-cluster-endpoint-type": lambda e: e["EndpointType"].lower(),
            "db-cluster-endpoint-custom-type": lambda e: str(e.get("CustomEndpointType", "")).lower(),
            "db-cluster-endpoint-id": lambda e: e["DBClusterEndpointIdentifier"],
            "db-cluster-endpoint-status": lambda e: e["Status"]})
        page, marker = paginate(endpoints, p)
        return {"DBClusterEndpoints": page, "Marker": marker}

    def delete_db_cluster_endpoint(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        identifier = p["DBClusterEndpointIdentifier"].lower()
        for cluster in region.clusters.values():
            if identifier in cluster.custom_endpoints and cluster.identifier in region.runtimes:
                endpoint = cluster.custom_endpoints.pop(identifier)
                endpoint.status = "deleting"
                region.runtimes[cluster.identifier].remove_endpoint(identifier)
                return endpoint.describe()
        raise fault("DBClusterEndpointNotFoundFault", f"DB cluster endpoint {identifier} not found.")

    # --- events ------------------------------------------------------------------------------------------
    def describe_events(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("SourceIdentifier") and not p.get("SourceType"):
            raise fault("InvalidParameterCombination", "Cannot specify SourceIdentifier without SourceType.")
        end = p.get("EndTime") or now()
        if p.get("StartTime"):
            start = p["StartTime"]
        else:
            start = end - timedelta(minutes=p.get("Duration", 60))
        if start > end:
            raise fault("InvalidParameterValue", "StartTime must be before EndTime.")
        categories = set(p.get("EventCategories") or [])
        events = [
            e for e in region.events.snapshot()
            if start <= e.date <= end
            and (not p.get("SourceType") or e.source_type == p["SourceType"])
            and (not p.get("SourceIdentifier") or e.source_id == p["SourceIdentifier"].lower())
            and (not categories or categories & set(e.categories))
        ]
        page, marker = paginate(events, p)
        return {"Events": [e.describe() for e in page], "Marker": marker}

    # --- tags -----------------------------------------------------------------------------------------------
    def _tagged(self, region: Region, resource_name: str) -> Any:
        match = re.fullmatch(r"arn:aws:rds:([a-z0-9-]+):(\d{12}):(cluster|db|cluster-endpoint):(.+)", resource_name)
        if not match:
            raise fault("InvalidParameterValue", f"The specified resource name does not match an RDS resource "
                                                 f"in this region: {resource_name}")
        arn_region, _, kind, name = match.groups()
        if arn_region != region.name:
            raise fault("InvalidParameterValue", f"The resource {resource_name} is in region {arn_region}, not "
                                                 f"{region.name}.")
        if kind == "cluster":
            return region.cluster(name)
        if kind == "db":
            return region.instance(name)[1]
        for cluster in region.clusters.values():
            if name in cluster.custom_endpoints:
                return cluster.custom_endpoints[name]
        raise fault("DBClusterEndpointNotFoundFault", f"DB cluster endpoint {name} not found.")

    def add_tags_to_resource(self, region: Region, p: dict[str, Any]) -> None:
        resource = self._tagged(region, p["ResourceName"])
        resource.tags.update(tags_of(p))
        return None

    def list_tags_for_resource(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        return {"TagList": self._tagged(region, p["ResourceName"]).tag_list()}

    def remove_tags_from_resource(self, region: Region, p: dict[str, Any]) -> None:
        resource = self._tagged(region, p["ResourceName"])
        for key in p["TagKeys"]:
            resource.tags.pop(key, None)
        return None


def tags_of(p: dict[str, Any]) -> dict[str, str]:
    tags = {}
    for tag in p.get("Tags") or []:
        if not tag.get("Key"):
            raise fault("InvalidParameterValue", "A tag key must not be empty.")
        tags[tag["Key"]] = tag.get("Value", "")
    return tags


def check_password(password: str | None) -> None:
    """AWS rules for master passwords; the message never echoes the password."""
    if not password:
        raise fault("InvalidParameterValue", "The parameter MasterUserPassword must be provided and must not be "
                                             "blank.")
    if not 8 <= len(password) <= 128 or FORBIDDEN_PASSWORD_CHARS & set(password) or not password.isprintable():
        raise fault("InvalidParameterValue", "The parameter MasterUserPassword is not a valid password. Only "
                                             "printable ASCII characters besides '/', '@', '\"', ' ' may be used, "
                                             "and it must be 8 to 128 characters long.")


def check_tier(tier: int) -> None:
    if not 0 <= tier <= 15:
        raise fault("InvalidParameterValue", f"PromotionTier must be between 0 and 15 (got {tier}).")


__all__ = ["ApiError", "RdsBackend", "Region"]
