"""DB cluster parameter groups: CreateDBClusterParameterGroup, DescribeDBClusterParameterGroups,
ModifyDBClusterParameterGroup, DescribeDBClusterParameters, DeleteDBClusterParameterGroup.

Only the parameters the emulator acts on are listed (a group that accepted anything would let a
game day believe a setting took effect): `rds.global_db_rpo` on Aurora PostgreSQL, Global
Database's managed RPO (`global_database.GlobalDatabase._enforce_rpo` reads it from the
primary's group); `rds.logical_replication` (Aurora PostgreSQL) and `binlog_format` (Aurora
MySQL), which a Blue/Green deployment's source needs (`blue_green_ready`; the engines always
run with logical WAL and row binlogs, so only the group decides). Each Region has the engines'
default groups, which cannot be modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.emulator.api import fault
from harness.emulator.models import Tagged, arn
from harness.emulator.operations.common import check_identifier, paginate, tags_of
from harness.emulator.operations.engine_specs import ENGINES
from harness.emulator.operations.family import Family
from harness.emulator.operations.state import Region, RegionStore
from harness.emulator.runtime import ClusterRuntime

FAMILY_OF_ENGINE = {"aurora-postgresql": "aurora-postgresql15", "aurora-mysql": "aurora-mysql8.0"}
GLOBAL_DB_RPO = "rds.global_db_rpo"
LOGICAL_REPLICATION = "rds.logical_replication"
BINLOG_FORMAT = "binlog_format"


@dataclass(frozen=True)
class ParameterSpec:
    """A parameter as DescribeDBClusterParameters lists it (its engine default when not set)."""

    name: str
    description: str
    data_type: str
    allowed: str
    default: str | None
    minimum: int | None = None
    maximum: int | None = None
    apply_type: str = "dynamic"

    def check(self, value: str) -> str:
        if self.data_type == "integer":
            try:
                number = int(value)
            except ValueError:
                raise fault("InvalidParameterValue", f"Value {value!r} for {self.name} is not an integer.") from None
            if (self.minimum is not None and number < self.minimum) or (
                    self.maximum is not None and number > self.maximum):
                raise fault("InvalidParameterValue", f"Value {value} for {self.name} is outside {self.allowed}.")
        elif value not in self.allowed.split(","):
            raise fault("InvalidParameterValue", f"Value {value!r} for {self.name} is not one of {self.allowed}.")
        return value

    def describe(self, value: str | None) -> dict[str, Any]:
        return {"ParameterName": self.name, "ParameterValue": value if value is not None else self.default,
                "Description": self.description, "Source": "user" if value is not None else "engine-default",
                "ApplyType": self.apply_type, "DataType": self.data_type, "AllowedValues": self.allowed,
                "IsModifiable": True, "ApplyMethod": "immediate" if self.apply_type == "dynamic" else "pending-reboot",
                "SupportedEngineModes": ["provisioned"]}


PARAMETERS: dict[str, dict[str, ParameterSpec]] = {
    "aurora-postgresql15": {GLOBAL_DB_RPO: ParameterSpec(
        GLOBAL_DB_RPO, "(s) Recovery point objective threshold, in seconds, that blocks user commits when it is "
                       "violated.", "integer", "20-2147483647", None, 20, 2147483647),
        LOGICAL_REPLICATION: ParameterSpec(
            LOGICAL_REPLICATION, "Enables logical decoding.", "boolean", "0,1", "0", apply_type="static")},
    "aurora-mysql8.0": {BINLOG_FORMAT: ParameterSpec(
        BINLOG_FORMAT, "Binary logging format for replication", "string", "ROW,STATEMENT,MIXED,OFF", "OFF",
        apply_type="static")},
}


@dataclass
class ClusterParameterGroup(Tagged):
    name: str = ""
    family: str = ""
    description: str = ""
    region: str = ""
    values: dict[str, str] = field(default_factory=dict)  # what the user set
    default: bool = False

    @property
    def arn(self) -> str:
        return arn(self.region, "cluster-pg", self.name)

    def describe(self) -> dict[str, Any]:
        return {"DBClusterParameterGroupName": self.name, "DBParameterGroupFamily": self.family,
                "Description": self.description, "DBClusterParameterGroupArn": self.arn}


def groups(region: Region) -> dict[str, ClusterParameterGroup]:
    """The Region's groups, its engines' default groups first."""
    for engine, spec in ENGINES.items():
        if spec.parameter_group not in region.cluster_parameter_groups:
            region.cluster_parameter_groups[spec.parameter_group] = ClusterParameterGroup(
                name=spec.parameter_group, family=FAMILY_OF_ENGINE[engine], region=region.name, default=True,
                description=f"Default cluster parameter group for {FAMILY_OF_ENGINE[engine]}")
    return region.cluster_parameter_groups


def group(region: Region, name: str, missing: str = "DBParameterGroupNotFoundFault") -> ClusterParameterGroup:
    found = groups(region).get(name.lower()) or groups(region).get(name)
    if found is None:
        raise fault(missing, f"DBClusterParameterGroup not found: {name}")
    return found


def check_parameter_group(region: Region, name: str | None, engine: str) -> str:
    """The group CreateDBCluster/ModifyDBCluster name (the engine's default when None), checked."""
    if not name:
        return ENGINES[engine].parameter_group
    found = group(region, name, "DBClusterParameterGroupNotFoundFault")
    if found.family != FAMILY_OF_ENGINE[engine]:
        raise fault("InvalidParameterCombination", f"DB cluster parameter group {found.name} is for "
                                                   f"{found.family}, not {engine}.")
    return found.name


def global_db_rpo(store: RegionStore, runtime: ClusterRuntime) -> int | None:
    """The primary's rds.global_db_rpo in seconds, None when unset (SHOW answers -1)."""
    cluster = runtime.cluster
    with store.lock:
        found = groups(store.region(cluster.region)).get(cluster.parameter_group)
    value = found.values.get(GLOBAL_DB_RPO) if found else None
    return int(value) if value is not None and int(value) > 0 else None


def binary_logging(store: RegionStore, cluster: Any) -> bool:
    """Is the customer's binary logging on (`binlog_format` in an Aurora MySQL cluster's group)?"""
    with store.lock:
        found = groups(store.region(cluster.region)).get(cluster.parameter_group)
    return cluster.engine == "aurora-mysql" and found is not None and \
        found.values.get(BINLOG_FORMAT, "OFF") != "OFF"


def blue_green_ready(store: RegionStore, cluster: Any) -> str | None:
    """Why `cluster`'s parameter group does not allow a Blue/Green deployment, or None: Aurora
    PostgreSQL needs `rds.logical_replication` 1, Aurora MySQL `binlog_format` on (both in a custom
    group: the default groups leave them off)."""
    with store.lock:
        found = groups(store.region(cluster.region)).get(cluster.parameter_group)
    values = found.values if found else {}
    if cluster.engine == "aurora-postgresql" and values.get(LOGICAL_REPLICATION) != "1":
        return (f"the DB cluster parameter group {cluster.parameter_group} of the source DB cluster must turn on "
                f"logical replication ({LOGICAL_REPLICATION} = 1)")
    if cluster.engine == "aurora-mysql" and values.get(BINLOG_FORMAT, "OFF") == "OFF":
        return (f"the DB cluster parameter group {cluster.parameter_group} of the source DB cluster must turn on "
                f"binary logging ({BINLOG_FORMAT})")
    return None


class ParameterGroups(Family):
    operations = ("CreateDBClusterParameterGroup", "DescribeDBClusterParameterGroups", "ModifyDBClusterParameterGroup",
                  "DescribeDBClusterParameters", "DeleteDBClusterParameterGroup")

    def create_db_cluster_parameter_group(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        name = check_identifier(p["DBClusterParameterGroupName"], "DBClusterParameterGroupName", max_length=255)
        if name in groups(region):
            raise fault("DBParameterGroupAlreadyExistsFault", f"Parameter group {name} already exists.")
        if p["DBParameterGroupFamily"] not in PARAMETERS:
            raise fault("InvalidParameterValue", f"Invalid DB parameter group family {p['DBParameterGroupFamily']}; "
                                                 f"the emulator has {', '.join(PARAMETERS)}.")
        created = ClusterParameterGroup(name=name, family=p["DBParameterGroupFamily"], description=p["Description"],
                                        region=region.name, tags=tags_of(p))
        region.cluster_parameter_groups[name] = created
        return {"DBClusterParameterGroup": created.describe()}

    def describe_db_cluster_parameter_groups(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        listed = [group(region, p["DBClusterParameterGroupName"])] if p.get("DBClusterParameterGroupName") \
            else list(groups(region).values())
        page, marker = paginate(listed, p)
        return {"DBClusterParameterGroups": [g.describe() for g in page], "Marker": marker}

    def modify_db_cluster_parameter_group(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        found = group(region, p["DBClusterParameterGroupName"])
        if found.default:
            raise fault("InvalidParameterValue", "Default parameter groups cannot be modified.")
        specs = PARAMETERS[found.family]
        changes = {}
        for parameter in p.get("Parameters") or []:
            name = parameter.get("ParameterName")
            if name not in specs:
                raise fault("InvalidParameterValue", f"Unmodifiable or unknown DB cluster parameter: {name} (the "
                                                     f"emulator acts on {', '.join(specs) or 'none'} for "
                                                     f"{found.family}).")
            value = parameter.get("ParameterValue")
            changes[name] = None if value is None else specs[name].check(str(value))
        for name, value in changes.items():
            if value is None:
                found.values.pop(name, None)
            else:
                found.values[name] = value
        return {"DBClusterParameterGroupName": found.name}

    def describe_db_cluster_parameters(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        found = group(region, p["DBClusterParameterGroupName"])
        rows = [spec.describe(found.values.get(name)) for name, spec in PARAMETERS[found.family].items()]
        if p.get("Source"):
            rows = [r for r in rows if r["Source"] == p["Source"]]
        page, marker = paginate(rows, p)
        return {"Parameters": page, "Marker": marker}

    def delete_db_cluster_parameter_group(self, region: Region, p: dict[str, Any]) -> None:
        found = group(region, p["DBClusterParameterGroupName"])
        if found.default:
            raise fault("InvalidDBParameterGroupStateFault", "Default parameter groups cannot be deleted.")
        if any(c.parameter_group == found.name for c in region.clusters.values()):
            raise fault("InvalidDBParameterGroupStateFault", f"Parameter group {found.name} is in use.")
        del region.cluster_parameter_groups[found.name]
        return None
