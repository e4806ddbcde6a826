"""Blue/Green deployments: CreateBlueGreenDeployment, DescribeBlueGreenDeployments,
SwitchoverBlueGreenDeployment, DeleteBlueGreenDeployment.

Deployments are regional (the Region's `blue_green_deployments`); their data planes are driven by
`blue_green.BlueGreenRuntime`. A guardrail that fails refuses the switchover with the reason, as
the API does before it changes anything; past the timeout the job rolls everything back.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from harness.emulator.api import fault
from harness.emulator.blue_green import (
    DEFAULT_SWITCHOVER_TIMEOUT_S,
    SWITCHOVER_TIMEOUT_RANGE,
    WAITING_STATUSES,
    BlueGreenDeployment,
    BlueGreenRuntime,
    RegionNames,
    deployment_identifier,
    green_name,
)
from harness.emulator.event_messages import CLUSTER_DELETED
from harness.emulator.models import DBInstance
from harness.emulator.operations.catalog import VERSIONS
from harness.emulator.operations.common import apply_filters, paginate, tags_of
from harness.emulator.operations.engine_specs import ENGINES
from harness.emulator.operations.family import Family
from harness.emulator.operations.parameter_groups import blue_green_ready, check_parameter_group
from harness.emulator.operations.state import Region

PROVISION_DEADLINE_S = 900.0
NAME = re.compile(r"[a-zA-Z](?:-?[a-zA-Z0-9])*")

DEPLOYMENT_FILTERS = {
    "blue-green-deployment-identifier": lambda d: d.model.identifier,
    "blue-green-deployment-name": lambda d: d.model.name,
    "source": lambda d: d.blue.cluster.arn,
    "target": lambda d: d.green.cluster.arn,
}


class BlueGreenDeployments(Family):
    operations = ("CreateBlueGreenDeployment", "DescribeBlueGreenDeployments", "SwitchoverBlueGreenDeployment",
                  "DeleteBlueGreenDeployment")

    # --- create ----------------------------------------------------------------------------------------
    def create_blue_green_deployment(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        name = p["BlueGreenDeploymentName"]
        if not (1 <= len(name) <= 60 and NAME.fullmatch(name)):
            raise fault("InvalidParameterValue", "The parameter BlueGreenDeploymentName must be 1 to 60 letters, "
                                                 "digits or hyphens, begin with a letter, and not end with a hyphen "
                                                 "or contain two consecutive hyphens.")
        if any(d.model.name == name.lower() for d in region.blue_green_deployments.values()):
            raise fault("BlueGreenDeploymentAlreadyExistsFault", f"A blue/green deployment named {name} already "
                                                                 f"exists.")
        source = region.cluster(_cluster_name(p["Source"], region))
        if p.get("TargetDBInstanceClass"):
            raise fault("InvalidParameterCombination", "TargetDBInstanceClass doesn't apply to a blue/green "
                                                       "deployment from an Aurora DB cluster.")
        for key in ("TargetIops", "TargetStorageType", "TargetAllocatedStorage", "TargetStorageThroughput"):
            if p.get(key) is not None:
                raise fault("InvalidParameterCombination", f"{key} doesn't apply to Amazon Aurora.")
        if any(d.blue.cluster is source or d.green.cluster is source for d in region.blue_green_deployments.values()
               if d.model.status != "SWITCHOVER_COMPLETED"):
            raise fault("InvalidDBClusterStateFault", f"DB cluster {source.identifier} is already part of a "
                                                      f"blue/green deployment.")
        if source.read_only:
            raise fault("SourceClusterNotSupportedFault", f"DB cluster {source.identifier} is a secondary cluster "
                                                          f"of a global database: it cannot be a blue/green source.")
        if source.status != "available" or source.writer_id is None \
                or source.instances[source.writer_id].status != "available":
            raise fault("InvalidDBClusterStateFault", f"DB cluster {source.identifier} must be available with an "
                                                      f"available writer instance.")
        if any(i.status != "available" for i in source.instances.values()):
            raise fault("InvalidDBInstanceStateFault", f"Every DB instance of {source.identifier} must be "
                                                       f"available.")
        missing = blue_green_ready(self.store, source)
        if missing:
            raise fault("SourceClusterNotSupportedFault", f"The source DB cluster {source.identifier} isn't "
                                                          f"supported for a blue/green deployment: {missing}.")
        version = p.get("TargetEngineVersion") or source.engine_version
        if version not in VERSIONS[source.engine]:
            raise fault("InvalidParameterCombination", f"Cannot find upgrade target {version} for "
                                                       f"{source.engine}; the emulator serves "
                                                       f"{', '.join(VERSIONS[source.engine])}.")
        if version < source.engine_version:
            raise fault("InvalidParameterCombination", f"The target engine version {version} is older than the "
                                                       f"source's ({source.engine_version}).")
        parameter_group = source.parameter_group
        if p.get("TargetDBClusterParameterGroupName"):
            parameter_group = check_parameter_group(region, p["TargetDBClusterParameterGroupName"], source.engine)
        instance_group = p.get("TargetDBParameterGroupName")
        if instance_group and instance_group != ENGINES[source.engine].parameter_group:
            raise fault("DBParameterGroupNotFoundFault", f"DBParameterGroup not found: {instance_group} (the "
                                                         f"emulator has only the default DB parameter groups).")
        blue_runtime = region.runtimes[source.identifier]
        green, green_runtime = self.launch_cluster(
            region, green_name(source.identifier), engine=source.engine, engine_version=version,
            master_username=source.master_username, master_password=source.master_password,
            database_name=source.database_name, availability_zones=list(source.availability_zones),
            parameter_group=parameter_group, storage_encrypted=source.storage_encrypted,
            subnet_group=source.subnet_group, port=source.port, deletion_protection=False,
            backup_retention_period=source.backup_retention_period,
            vpc_security_groups=list(source.vpc_security_groups), tags=dict(source.tags))
        addresses = self.addresses(green)
        pairs, hosts = [], {}
        for index, blue in enumerate(sorted(source.instances.values(), key=lambda i: i.identifier != source.writer_id)):
            identifier = green_name(blue.identifier)
            instance = DBInstance(identifier=identifier, cluster_id=green.identifier, region=region.name,
                                  engine=green.engine, engine_version=version, instance_class=blue.instance_class,
                                  availability_zone=blue.availability_zone, promotion_tier=blue.promotion_tier,
                                  slot=index, address=addresses.instance_endpoint(index), port=green.port,
                                  tags=dict(blue.tags))
            green.instances[identifier] = instance
            hosts[identifier] = addresses.engine(index)
            pairs.append((blue, instance))
        model = BlueGreenDeployment(identifier=deployment_identifier(), name=name.lower(), region=region.name,
                                    blue=blue_runtime, green=green_runtime, pairs=pairs, tags=tags_of(p),
                                    target_engine_version=version)
        deployment = BlueGreenRuntime(model, blue_runtime.fabric, region.events, addresses.global_link, self.store.lock,
                                      RegionNames(region), names_changed=lambda: self.store.names_changed())
        region.blue_green_deployments[model.identifier] = deployment
        answer = {"BlueGreenDeployment": model.describe()}
        self.jobs.start(f"blue/green {model.identifier}", deployment.provision, hosts,
                        on_error=deployment.provisioning_failed, deadline_s=PROVISION_DEADLINE_S)
        return answer

    # --- describe ----------------------------------------------------------------------------------------
    def describe_blue_green_deployments(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        deployments = list(region.blue_green_deployments.values())
        if p.get("BlueGreenDeploymentIdentifier"):
            deployments = [self._deployment(region, p["BlueGreenDeploymentIdentifier"])]
        deployments = apply_filters(deployments, p.get("Filters"), DEPLOYMENT_FILTERS)
        page, marker = paginate(deployments, p)
        return {"BlueGreenDeployments": [d.model.describe() for d in page], "Marker": marker}

    # --- switchover -----------------------------------------------------------------------------------------
    def switchover_blue_green_deployment(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        deployment = self._deployment(region, p["BlueGreenDeploymentIdentifier"])
        timeout = p.get("SwitchoverTimeout", DEFAULT_SWITCHOVER_TIMEOUT_S)
        low, high = SWITCHOVER_TIMEOUT_RANGE
        if not low <= timeout <= high:
            raise fault("InvalidParameterValue", f"SwitchoverTimeout must be between {low} and {high} seconds "
                                                 f"(got {timeout}).")
        model = deployment.model
        if model.status not in WAITING_STATUSES:
            raise fault("InvalidBlueGreenDeploymentStateFault", f"The blue/green deployment {model.identifier} "
                                                                f"can't be switched over: it is {model.status}"
                                                                + (f" ({model.status_details})"
                                                                   if model.status_details else "") + ".")
        reasons = deployment.guardrails(timeout)
        if reasons:
            raise fault("InvalidBlueGreenDeploymentStateFault", f"The blue/green deployment {model.identifier} "
                                                                f"can't be switched over: " + "; ".join(reasons) + ".")
        deployment.begin_switchover()
        self.jobs.start(f"blue/green switchover {model.identifier}", deployment.switchover, timeout,
                        on_error=deployment.switchover_failed, deadline_s=timeout + 600.0)
        return {"BlueGreenDeployment": model.describe()}

    # --- delete ------------------------------------------------------------------------------------------------
    def delete_blue_green_deployment(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        deployment = self._deployment(region, p["BlueGreenDeploymentIdentifier"])
        model = deployment.model
        delete_target = bool(p.get("DeleteTarget"))
        if model.status in ("SWITCHOVER_IN_PROGRESS", "PROVISIONING", "DELETING"):
            raise fault("InvalidBlueGreenDeploymentStateFault", f"The blue/green deployment {model.identifier} "
                                                                f"can't be deleted while it is {model.status}.")
        if delete_target and model.status == "SWITCHOVER_COMPLETED":
            raise fault("InvalidBlueGreenDeploymentStateFault", "You can't specify DeleteTarget when the blue/green "
                                                                "deployment status is SWITCHOVER_COMPLETED.")
        green = deployment.green.cluster
        if delete_target and green.deletion_protection:
            raise fault("InvalidBlueGreenDeploymentStateFault", f"DB cluster {green.identifier} of the green "
                                                                f"environment has deletion protection enabled.")
        model.status = "DELETING"
        answer = {"BlueGreenDeployment": model.describe()}
        self.jobs.start(f"delete blue/green {model.identifier}", self._delete, region, deployment, delete_target,
                        on_error=partial(self._delete_failed, region, deployment), deadline_s=600.0)
        return answer

    def _delete(self, region: Region, deployment: BlueGreenRuntime, delete_target: bool) -> None:
        """Job: the deployment goes; with DeleteTarget, so does the green cluster (instances first)."""
        deployment.delete(delete_target)
        green = deployment.green
        if delete_target:
            green.destroy()
            green.cluster_event(CLUSTER_DELETED, "deletion")
            with self.store.lock:
                self.store.retiring_slots.discard(green.cluster.slot)
                if region.clusters.get(green.cluster.identifier) is green.cluster:
                    del region.clusters[green.cluster.identifier]
                if region.runtimes.get(green.cluster.identifier) is green:
                    del region.runtimes[green.cluster.identifier]
        with self.store.lock:
            region.blue_green_deployments.pop(deployment.model.identifier, None)

    def _delete_failed(self, region: Region, deployment: BlueGreenRuntime, exc: BaseException) -> None:
        with self.store.lock:
            region.blue_green_deployments.pop(deployment.model.identifier, None)

    # --- helpers --------------------------------------------------------------------------------------------
    def _deployment(self, region: Region, identifier: str) -> BlueGreenRuntime:
        found = region.blue_green_deployments.get(identifier.lower())
        if found is None:
            raise fault("BlueGreenDeploymentNotFoundFault", f"BlueGreenDeployment {identifier} not found.")
        return found


def _cluster_name(value: str, region: Region) -> str:
    """A Source ARN names a cluster of this Region (a DB instance ARN is RDS, not Aurora)."""
    if not value.startswith("arn:"):
        return value
    parts = value.split(":")
    if len(parts) < 7 or parts[3] != region.name:
        raise fault("DBClusterNotFoundFault", f"DBCluster {value} not found.")
    if parts[5] == "db":
        raise fault("SourceDatabaseNotSupportedFault", "The emulator runs Aurora DB clusters only: give the DB "
                                                       "cluster's ARN as Source.")
    if parts[5] != "cluster":
        raise fault("DBClusterNotFoundFault", f"DBCluster {value} not found.")
    return parts[6]


def refuse_during_switchover(region: Region, cluster_id: str, instance: str | None = None) -> None:
    """"During a switchover, you can't modify any DB cluster included in the switchover" (User Guide):
    the changes the API would make to such a cluster or its instances are refused meanwhile."""
    for deployment in region.blue_green_deployments.values():
        if deployment.model.status != "SWITCHOVER_IN_PROGRESS":
            continue
        if cluster_id in (deployment.blue.cluster.identifier, deployment.green.cluster.identifier):
            if instance is not None:
                raise fault("InvalidDBInstanceStateFault", f"DB instance {instance} is in blue/green deployment "
                                                           f"{deployment.model.identifier}, which is switching over.")
            raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster_id} is in blue/green deployment "
                                                      f"{deployment.model.identifier}, which is switching over: it "
                                                      f"can't be modified now.")


def backtrack_breaks_deployments(region: Region, cluster_id: str) -> None:
    """A forced backtrack of a deployment's blue cluster: "the blue/green deployment breaks and
    switchover is blocked" (the green environment holds changes blue no longer has)."""
    for deployment in region.blue_green_deployments.values():
        if deployment.model.status in WAITING_STATUSES and deployment.blue.cluster.identifier == cluster_id:
            deployment.model.status = "INVALID_CONFIGURATION"
            deployment.model.status_details = (f"Replication degraded: DB cluster {cluster_id} of the blue "
                                               f"environment was backtracked. Delete and recreate the blue/green "
                                               f"deployment.")
