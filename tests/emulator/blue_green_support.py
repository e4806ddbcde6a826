"""Taking down what a Blue/Green test made: its deployments, both environments' clusters, its parameter group."""

from __future__ import annotations

from typing import Any

from tests.emulator.support import wait_for


def delete_blue_green(rds: Any, blue: str, group: str) -> None:
    """Delete every deployment whose source is named `blue...` once it has settled, every cluster so
    named (blue, green, the old blue) with its instances, then the parameter group `group`."""
    def ours(deployments: list[dict[str, Any]]) -> list[str]:
        return [d["BlueGreenDeploymentIdentifier"] for d in deployments if d["Source"].split(":")[-1].startswith(blue)]

    def status(identifier: str) -> str:
        return rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=identifier)[
            "BlueGreenDeployments"][0]["Status"]

    def cluster(name: str) -> dict[str, Any]:
        return rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]

    for identifier in ours(rds.describe_blue_green_deployments()["BlueGreenDeployments"]):
        wait_for(lambda: status(identifier) not in ("PROVISIONING", "SWITCHOVER_IN_PROGRESS"),  # noqa: B023
                 timeout=300, what="the deployment settled")
        rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=identifier)
    wait_for(lambda: not ours(rds.describe_blue_green_deployments()["BlueGreenDeployments"]), timeout=120,
             what="deployments gone")
    names = [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]
             if c["DBClusterIdentifier"].startswith(blue)]
    for name in names:
        for member in cluster(name)["DBClusterMembers"]:
            rds.delete_db_instance(DBInstanceIdentifier=member["DBInstanceIdentifier"], SkipFinalSnapshot=True)
    for name in names:
        wait_for(lambda: not cluster(name)["DBClusterMembers"], timeout=300, what=f"{name} empty")  # noqa: B023
        rds.delete_db_cluster(DBClusterIdentifier=name, SkipFinalSnapshot=True)
    wait_for(lambda: not [c for c in rds.describe_db_clusters()["DBClusters"] if c["DBClusterIdentifier"] in names],
             timeout=300, what="clusters deleted")
    rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=group)
