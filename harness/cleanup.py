"""`gameday cleanup`: delete what an interrupted game day created, found by its tag.

Everything the harness creates (restored clusters and their instances, snapshots, green
environments) carries `gameday:created-by = aurora-gameday` and `gameday:run-id`. A run deletes
its own at the end of each scenario; a run that was killed cannot, so this finds them by tag, in
every Region the profile names, and deletes them: instances first, then their clusters (without a
final snapshot: they were copies), then snapshots; a Blue/Green deployment before them, with its
green cluster. Nothing without the tag is ever touched, and
`--dry-run` only lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.blue_green import SETTLED, SLOW_POLL_S, Deployment
from harness.cluster import AuroraCluster
from harness.environments import CREATED_BY, CREATED_BY_TAG, RUN_TAG

__all__ = ["Leftovers", "delete_leftovers", "find_leftovers"]

DELETE_TIMEOUT_S = 1800.0


@dataclass
class Leftovers:
    region: str
    clusters: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    deployments: list[str] = field(default_factory=list)  # Blue/Green deployments (with their green clusters)

    def __bool__(self) -> bool:
        return bool(self.clusters or self.snapshots or self.deployments)

    def lines(self) -> list[str]:
        return ([f"{self.region}  blue/green  {name}" for name in self.deployments]
                + [f"{self.region}  cluster   {name}" for name in self.clusters]
                + [f"{self.region}  snapshot  {name}" for name in self.snapshots])


def _ours(tags: list[dict[str, str]], run_id: str | None) -> bool:
    found = {t["Key"]: t.get("Value", "") for t in tags or []}
    return found.get(CREATED_BY_TAG) == CREATED_BY and (run_id is None or found.get(RUN_TAG) == run_id)


def find_leftovers(rds: Any, run_id: str | None = None) -> Leftovers:
    """The harness's own clusters and manual cluster snapshots in the client's Region (of one run)."""
    found = Leftovers(rds.meta.region_name)
    for page in rds.get_paginator("describe_db_clusters").paginate():
        found.clusters += [c["DBClusterIdentifier"] for c in page["DBClusters"]
                           if _ours(c.get("TagList", []), run_id) and c["Status"] != "deleting"]
    for page in rds.get_paginator("describe_blue_green_deployments").paginate():
        found.deployments += [d["BlueGreenDeploymentIdentifier"] for d in page["BlueGreenDeployments"]
                              if _ours(d.get("TagList", []), run_id) and d["Status"] != "DELETING"]
    for page in rds.get_paginator("describe_db_cluster_snapshots").paginate(SnapshotType="manual"):
        found.snapshots += [s["DBClusterSnapshotIdentifier"] for s in page["DBClusterSnapshots"]
                            if _ours(s.get("TagList", []), run_id)]
    return found


def delete_leftovers(rds: Any, leftovers: Leftovers) -> list[str]:
    """Delete them; returns what was deleted, one line each. A deployment goes first, with its green
    cluster unless it had switched over (AWS refuses DeleteTarget then: green is production)."""
    done = []
    for identifier in leftovers.deployments:
        deployment = Deployment(rds, identifier)
        status, _ = deployment.watch(None, SETTLED, DELETE_TIMEOUT_S, interval=SLOW_POLL_S)
        switched = status == "SWITCHOVER_COMPLETED"
        rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=identifier,
                                         **({} if switched else {"DeleteTarget": True}))
        done.append(f"deleted blue/green deployment {identifier}" + ("" if switched else " and its green cluster"))
    for name in leftovers.clusters:
        AuroraCluster(rds, name).delete_with_instances(timeout=DELETE_TIMEOUT_S)
        done.append(f"deleted cluster {name} and its instances")
    for name in leftovers.snapshots:
        rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=name)
        done.append(f"deleted snapshot {name}")
    return done
