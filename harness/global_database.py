"""One Aurora global database, as the harness sees it: through the RDS API of each Region it spans.

DescribeGlobalClusters answers in any Region, so the global database is read through the
clients of every Region it knows, the secondary Region's first: when the primary Region is
lost, its API may be lost with it. botocore has no waiter for a switchover or a failover, so
the end of one is observed by polling (no `FailoverState` any more, the writer where asked).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.cluster import ClusterStateTimeout

__all__ = ["GlobalDatabase", "region_of_arn"]


def region_of_arn(arn: str) -> str:
    """arn:aws:rds:<region>:<account>:cluster:<name> → <region>."""
    return arn.split(":")[3]


@dataclass
class GlobalDatabase:
    """DescribeGlobalClusters, SwitchoverGlobalCluster and FailoverGlobalCluster, by Region."""

    identifier: str
    clients: dict[str, Any]  # Region → boto3 RDS client
    clusters: dict[str, str]  # Region → the member cluster's identifier
    poll_interval: float = 0.2

    # --- describing ----------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The global cluster, from the first Region whose API answers (the last error otherwise)."""
        error: Exception | None = None
        for region in reversed(list(self.clients)):  # the primary Region is first: asked last
            try:
                return self.clients[region].describe_global_clusters(
                    GlobalClusterIdentifier=self.identifier)["GlobalClusters"][0]
            except Exception as exc:  # that Region's API is out: ask the next one
                error = exc
        assert error is not None
        raise error

    def members(self) -> dict[str, dict[str, Any]]:
        """Region → its member as DescribeGlobalClusters shows it."""
        return {region_of_arn(m["DBClusterArn"]): m for m in self.describe()["GlobalClusterMembers"]}

    def writer_region(self) -> str | None:
        return next((region for region, m in self.members().items() if m["IsWriter"]), None)

    def arn(self, region: str) -> str:
        return self.members()[region]["DBClusterArn"]

    def writer_endpoint(self) -> str:
        """The global writer endpoint (it follows the primary Region, with its DNS TTL)."""
        return str(self.describe()["Endpoint"])

    def topology(self) -> dict[str, Any]:
        """A compact picture for the timeline: the writer Region, any FailoverState, each Region's role."""
        described = self.describe()
        failover = described.get("FailoverState") or {}
        regions = {region_of_arn(m["DBClusterArn"]): {"cluster": m["DBClusterArn"].rsplit(":", 1)[-1],
                                                      "writer": bool(m["IsWriter"]),
                                                      "sync": m.get("SynchronizationStatus", "")}
                   for m in described["GlobalClusterMembers"]}
        return {"writer_region": next((r for r, m in regions.items() if m["writer"]), None),
                "failover_state": failover.get("Status"), "regions": regions}

    def settled(self) -> bool:
        """No switchover or failover under way and every member `connected` (none resyncing)."""
        described = self.describe()
        return "FailoverState" not in described and all(
            m.get("SynchronizationStatus", "connected") == "connected" for m in described["GlobalClusterMembers"]
            if not m["IsWriter"])

    # --- waiting -----------------------------------------------------------------------------------
    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise ClusterStateTimeout(f"global database {self.identifier}: {what} did not happen within "
                                          f"{timeout:.0f} s (it is {self.topology()})")
            time.sleep(self.poll_interval)

    def wait_writer(self, region: str, timeout: float) -> None:
        """Until the switchover or failover is over and `region` holds the writer."""
        def done() -> bool:
            described = self.describe()
            writer = next((m for m in described["GlobalClusterMembers"] if m["IsWriter"]), None)
            return "FailoverState" not in described and writer is not None and \
                region_of_arn(writer["DBClusterArn"]) == region
        self.wait_until(done, timeout, f"the writer moving to {region}")

    # --- acting --------------------------------------------------------------------------------------
    def switchover(self, to_region: str) -> dict[str, Any]:
        """SwitchoverGlobalCluster to `to_region`'s member (RPO 0: it waits for the secondary to catch up)."""
        return self.clients[to_region].switchover_global_cluster(
            GlobalClusterIdentifier=self.identifier, TargetDbClusterIdentifier=self.arn(to_region))["GlobalCluster"]

    def failover(self, to_region: str) -> dict[str, Any]:
        """FailoverGlobalCluster with AllowDataLoss, called in the target Region (the primary's may be gone)."""
        return self.clients[to_region].failover_global_cluster(
            GlobalClusterIdentifier=self.identifier, TargetDbClusterIdentifier=self.arn(to_region),
            AllowDataLoss=True)["GlobalCluster"]
