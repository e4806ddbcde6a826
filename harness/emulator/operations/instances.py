"""DB instances: CreateDBInstance, DescribeDBInstances, ModifyDBInstance, DeleteDBInstance, RebootDBInstance."""

from __future__ import annotations

import re
from functools import partial
from operator import attrgetter
from typing import Any

from harness.aurora import instance_size
from harness.emulator.addresses import MAX_INSTANCES, first_free
from harness.emulator.api import fault
from harness.emulator.models import DBCluster, DBInstance
from harness.emulator.operations.blue_green import refuse_during_switchover
from harness.emulator.operations.common import (
    Filters,
    apply_filters,
    check_identifier,
    check_tier,
    paginate,
    tags_of,
)
from harness.emulator.operations.family import Family
from harness.emulator.operations.state import Region

CREATE_DEADLINE_S = 1200.0  # the first instance of an engine may build its template; a reader clones the writer
DELETE_DEADLINE_S = 600.0  # deleting the writer fails over first
REBOOT_DEADLINE_S = 600.0  # the writer's reboot restarts its readers too on Aurora PostgreSQL

# Filters match the instance; DescribeDBInstances filters (cluster, instance) pairs by their instance.
INSTANCE_FILTERS: Filters = {
    "db-cluster-id": attrgetter("cluster_id"),
    "db-instance-id": attrgetter("identifier"),
    "engine": attrgetter("engine"),
    "dbi-resource-id": attrgetter("resource_id"),
}


def _instance_of(pair: tuple[DBCluster, DBInstance]) -> DBInstance:
    return pair[1]


class Instances(Family):
    operations = ("CreateDBInstance", "DescribeDBInstances", "ModifyDBInstance", "DeleteDBInstance",
                  "RebootDBInstance")

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
        runtime = region.runtimes[cluster.identifier]
        if cluster.status not in ("available", "creating") or runtime.volume_pending:
            raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} is {cluster.status}; "
                                                      f"instances can be added when it is available.")
        if cluster.read_only and not cluster.instances:
            runtime = region.runtimes[cluster.identifier]
            source = runtime.replica_of.primary() if runtime.replica_of else None
            if source is None or source.writer_id is None:
                raise fault("InvalidDBClusterStateFault", f"The primary cluster of global cluster "
                                                          f"{cluster.global_cluster_id} has no writer to copy from.")
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
        addresses = self.addresses(cluster)
        instance = DBInstance(
            identifier=identifier, cluster_id=cluster.identifier, region=region.name, engine=cluster.engine,
            engine_version=cluster.engine_version, instance_class=instance_class, availability_zone=az,
            promotion_tier=tier, slot=slot, address=addresses.instance_endpoint(slot), port=cluster.port,
            tags=tags_of(p),
        )
        cluster.instances[identifier] = instance
        self.jobs.start(f"create {identifier}", runtime.create_instance, instance, addresses.engine(slot),
                        on_error=partial(runtime.creation_failed, instance), deadline_s=CREATE_DEADLINE_S)
        return {"DBInstance": instance.describe(cluster)}

    @staticmethod
    def _next_az(cluster: DBCluster) -> str:
        """Spread instances over the cluster's zones, as the console does by default."""
        used = [i.availability_zone for i in cluster.instances.values()]
        return min(cluster.availability_zones, key=lambda az: (used.count(az), az))

    def describe_db_instances(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("DBInstanceIdentifier"):
            pairs = [region.instance(p["DBInstanceIdentifier"].rsplit(":", 1)[-1])]
        else:
            pairs = [(c, i) for c in region.clusters.values() for i in c.instances.values()]
        pairs = apply_filters(pairs, p.get("Filters"), INSTANCE_FILTERS, key=_instance_of)
        page, marker = paginate(pairs, p)
        return {"DBInstances": [i.describe(c) for c, i in page], "Marker": marker}

    def modify_db_instance(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        cluster, instance = region.instance(p["DBInstanceIdentifier"])
        refuse_during_switchover(region, cluster.identifier, instance.identifier)
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
        refuse_during_switchover(region, cluster.identifier, instance.identifier)
        if instance.status in ("deleting", "creating"):
            raise fault("InvalidDBInstanceStateFault", f"Instance {instance.identifier} cannot be deleted while "
                                                       f"it is {instance.status}.")
        if cluster.read_only and instance.identifier == cluster.writer_id and len(cluster.instances) > 1:
            raise fault("InvalidDBClusterStateFault", f"Instance {instance.identifier} is the replica head of "
                                                      f"secondary cluster {cluster.identifier} (the emulator does "
                                                      f"not move that role): delete its other instances first.")
        instance.status = "deleting"
        runtime = region.runtimes[cluster.identifier]
        self.jobs.start(f"delete {instance.identifier}", runtime.delete_instance, instance,
                        on_error=partial(runtime.deletion_failed, instance), deadline_s=DELETE_DEADLINE_S)
        return {"DBInstance": instance.describe(cluster)}

    def reboot_db_instance(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        cluster, instance = region.instance(p["DBInstanceIdentifier"])
        refuse_during_switchover(region, cluster.identifier, instance.identifier)
        if p.get("ForceFailover"):
            raise fault("InvalidParameterCombination", "ForceFailover does not apply to Aurora DB instances; "
                                                       "use FailoverDBCluster.")
        if instance.status != "available" or cluster.status != "available":
            raise fault("InvalidDBInstanceStateFault", "Instance cannot currently reboot due to an in-progress "
                                                       "management operation.")
        instance.status = "rebooting"
        runtime = region.runtimes[cluster.identifier]
        self.jobs.start(f"reboot {instance.identifier}", runtime.reboot, instance,
                        on_error=runtime.reboot_failed, deadline_s=REBOOT_DEADLINE_S)
        return {"DBInstance": instance.describe(cluster)}
