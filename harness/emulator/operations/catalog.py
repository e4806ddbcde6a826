"""What provisioning tools ask before they create anything: DescribeDBEngineVersions,
DescribeOrderableDBInstanceOptions, and DB subnet groups (Create/Describe/Delete).

Terraform, CDK and the console call these first; answering `InvalidAction` stops them before
they reach CreateDBCluster. The answers are what the emulator really has: the engine versions it
serves (each run on the installed PostgreSQL 15 or MariaDB), the instance classes it accepts,
and a `default` subnet group per Region, spanning its Availability Zones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.emulator.api import fault
from harness.emulator.models import ACCOUNT_ID, Tagged, arn
from harness.emulator.operations.common import apply_filters, check_identifier, paginate, tags_of
from harness.emulator.operations.engine_specs import ENGINES
from harness.emulator.operations.family import Family
from harness.emulator.operations.state import Region

# The versions each engine reports (the first is the default); all run on the same real engine.
VERSIONS: dict[str, tuple[str, ...]] = {
    "aurora-postgresql": ("15.10", "15.12", "15.13"),  # 15.13: Blue/Green switchover metadata
    "aurora-mysql": ("8.0.mysql_aurora.3.05.2", "8.0.mysql_aurora.3.08.0"),  # 3.07+: Blue/Green metadata
}
FAMILIES = {"aurora-postgresql": "aurora-postgresql15", "aurora-mysql": "aurora-mysql8.0"}
DESCRIPTIONS = {"aurora-postgresql": "Aurora (PostgreSQL)", "aurora-mysql": "Aurora MySQL"}
INSTANCE_CLASSES = ("db.t4g.medium", "db.t4g.large", "db.r6g.large", "db.r6g.xlarge", "db.r6g.2xlarge",
                    "db.r6g.4xlarge", "db.r7g.large", "db.r7g.xlarge", "db.r7g.2xlarge")
DEFAULT_SUBNET_GROUP = "default"

VERSION_FILTERS = {"engine": lambda v: v["Engine"], "engine-version": lambda v: v["EngineVersion"],
                   "engine-mode": lambda v: "provisioned", "status": lambda v: v["Status"]}


@dataclass
class SubnetGroup(Tagged):
    name: str = ""
    region: str = ""
    description: str = ""
    subnets: list[str] = field(default_factory=list)

    def describe(self, zones: list[str]) -> dict[str, Any]:
        return {"DBSubnetGroupName": self.name, "DBSubnetGroupDescription": self.description,
                "VpcId": "vpc-gameday0emulator", "SubnetGroupStatus": "Complete",
                "Subnets": [{"SubnetIdentifier": subnet, "SubnetAvailabilityZone": {"Name": zones[i % len(zones)]},
                             "SubnetStatus": "Active"} for i, subnet in enumerate(self.subnets)],
                "DBSubnetGroupArn": arn(self.region, "subgrp", self.name), "SupportedNetworkTypes": ["IPV4"]}


def engine_version(engine: str, version: str) -> dict[str, Any]:
    later = [v for v in VERSIONS[engine] if v > version]
    return {"Engine": engine, "EngineVersion": version, "DBParameterGroupFamily": FAMILIES[engine],
            "DBEngineDescription": DESCRIPTIONS[engine], "DBEngineVersionDescription": f"{DESCRIPTIONS[engine]} {version}",
            "ValidUpgradeTarget": [{"Engine": engine, "EngineVersion": v, "Description": f"{DESCRIPTIONS[engine]} {v}",
                                    "AutoUpgrade": False, "IsMajorVersionUpgrade": False} for v in later],
            "SupportedEngineModes": ["provisioned"], "Status": "available", "SupportsReadReplica": True,
            "SupportsGlobalDatabases": True, "SupportsLogExportsToCloudwatchLogs": False,
            "SupportsParallelQuery": False, "SupportsBabelfish": False, "SupportsCertificateRotationWithoutRestart": True,
            "SupportsLocalWriteForwarding": False, "SupportsIntegrations": False}


class Catalog(Family):
    operations = ("DescribeDBEngineVersions", "DescribeOrderableDBInstanceOptions", "CreateDBSubnetGroup",
                  "DescribeDBSubnetGroups", "DeleteDBSubnetGroup")

    # --- engine versions and instance classes -------------------------------------------------------
    def describe_db_engine_versions(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        engines = [p["Engine"]] if p.get("Engine") else list(VERSIONS)
        versions = [engine_version(e, v) for e in engines if e in VERSIONS for v in VERSIONS[e]]
        if p.get("EngineVersion"):
            versions = [v for v in versions if v["EngineVersion"] == p["EngineVersion"]]
        if p.get("DBParameterGroupFamily"):
            versions = [v for v in versions if v["DBParameterGroupFamily"] == p["DBParameterGroupFamily"]]
        if p.get("DefaultOnly"):
            versions = [v for v in versions if v["EngineVersion"] == VERSIONS[v["Engine"]][0]]
        versions = apply_filters(versions, p.get("Filters"), VERSION_FILTERS)
        page, marker = paginate(versions, p)
        return {"DBEngineVersions": page, "Marker": marker}

    def describe_orderable_db_instance_options(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        engine = p["Engine"]
        if engine not in ENGINES:
            return {"OrderableDBInstanceOptions": [], "Marker": None}
        versions = [v for v in VERSIONS[engine] if p.get("EngineVersion") in (None, v)]
        classes = [c for c in INSTANCE_CLASSES if p.get("DBInstanceClass") in (None, c)]
        options = [{"Engine": engine, "EngineVersion": version, "DBInstanceClass": instance_class,
                    "LicenseModel": "postgresql-license" if engine == "aurora-postgresql" else "general-public-license",
                    "AvailabilityZones": [{"Name": az} for az in region.availability_zones], "MultiAZCapable": False,
                    "ReadReplicaCapable": True, "Vpc": True, "SupportsStorageEncryption": True, "StorageType": "aurora",
                    "SupportsIops": False, "SupportedEngineModes": ["provisioned"], "SupportsClusters": False,
                    "SupportedNetworkTypes": ["IPV4"]}
                   for version in versions for instance_class in classes]
        page, marker = paginate(options, p)
        return {"OrderableDBInstanceOptions": page, "Marker": marker}

    # --- DB subnet groups ------------------------------------------------------------------------------
    def create_db_subnet_group(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        name = check_identifier(p["DBSubnetGroupName"], "DBSubnetGroupName", max_length=255)
        groups = subnet_groups(region)
        if name in groups:
            raise fault("DBSubnetGroupAlreadyExistsFault", f"The DB subnet group '{name}' already exists.")
        if len(p.get("SubnetIds") or []) < 2:
            raise fault("DBSubnetGroupDoesNotCoverEnoughAZs", "The DB subnet group doesn't meet Availability Zone "
                                                             "coverage requirement. Please add subnets to cover at "
                                                             "least 2 Availability Zones.")
        groups[name] = SubnetGroup(name=name, region=region.name, description=p["DBSubnetGroupDescription"],
                                   subnets=list(p["SubnetIds"]), tags=tags_of(p))
        return {"DBSubnetGroup": groups[name].describe(region.availability_zones)}

    def describe_db_subnet_groups(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        groups = subnet_groups(region)
        if p.get("DBSubnetGroupName"):
            found = groups.get(p["DBSubnetGroupName"].lower())
            if found is None:
                raise fault("DBSubnetGroupNotFoundFault", f"DB subnet group '{p['DBSubnetGroupName']}' not found.")
            selected = [found]
        else:
            selected = list(groups.values())
        page, marker = paginate(selected, p)
        return {"DBSubnetGroups": [g.describe(region.availability_zones) for g in page], "Marker": marker}

    def delete_db_subnet_group(self, region: Region, p: dict[str, Any]) -> None:
        name = p["DBSubnetGroupName"].lower()
        groups = subnet_groups(region)
        if name not in groups:
            raise fault("DBSubnetGroupNotFoundFault", f"DB subnet group '{name}' not found.")
        if name == DEFAULT_SUBNET_GROUP:
            raise fault("InvalidDBSubnetGroupStateFault", "The default DB subnet group cannot be deleted.")
        if any(c.subnet_group == name for c in region.clusters.values()):
            raise fault("InvalidDBSubnetGroupStateFault", f"DB subnet group '{name}' is in use by a DB cluster.")
        del groups[name]
        return None


def subnet_groups(region: Region) -> dict[str, SubnetGroup]:
    """The Region's subnet groups, with the `default` one spanning its Availability Zones."""
    if DEFAULT_SUBNET_GROUP not in region.subnet_groups:
        region.subnet_groups[DEFAULT_SUBNET_GROUP] = SubnetGroup(
            name=DEFAULT_SUBNET_GROUP, region=region.name, description="default",
            subnets=[f"subnet-{ACCOUNT_ID[:4]}{i}emulator" for i, _ in enumerate(region.availability_zones)])
    return region.subnet_groups


__all__ = ["Catalog", "VERSIONS", "subnet_groups"]
