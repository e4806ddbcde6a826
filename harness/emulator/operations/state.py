"""The control plane's state: every region of one emulator, its clusters and their runtimes.

One `RegionStore` per emulator. Its `lock` serialises API operations (each runs whole under
it) and guards the dictionaries for the monitor, the controls and the jobs, which take
snapshots under it and then work on a runtime without it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.emulator.api import fault
from harness.emulator.models import DBCluster, DBClusterSnapshot, DBInstance, EventLog
from harness.emulator.runtime import ClusterRuntime


@dataclass
class Region:
    """One region's resources. Instances are looked up by name across clusters."""

    name: str
    clusters: dict[str, DBCluster] = field(default_factory=dict)
    runtimes: dict[str, ClusterRuntime] = field(default_factory=dict)
    events: EventLog = field(default_factory=EventLog)
    subnet_groups: dict[str, Any] = field(default_factory=dict)  # name -> catalog.SubnetGroup
    # Manual cluster snapshots; automated ones belong to their cluster's continuous backup.
    snapshots: dict[str, DBClusterSnapshot] = field(default_factory=dict)
    cluster_parameter_groups: dict[str, Any] = field(default_factory=dict)  # name -> parameter_groups.ClusterParameterGroup
    blue_green_deployments: dict[str, Any] = field(default_factory=dict)  # identifier -> blue_green.BlueGreenRuntime

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

    def cluster_snapshots(self) -> list[DBClusterSnapshot]:
        """Every cluster snapshot of the region, manual and automated, oldest first."""
        automated = [s for runtime in self.runtimes.values() for s in runtime.backups.snapshots()]
        return sorted([*self.snapshots.values(), *automated], key=lambda s: s.created)

    def cluster_snapshot(self, identifier: str) -> DBClusterSnapshot:
        """A snapshot by identifier or ARN (automated ones are named `rds:<cluster>-<time>`)."""
        name = identifier
        if identifier.startswith("arn:"):
            prefix, _, name = identifier.partition(":cluster-snapshot:")
            if prefix.split(":")[3:4] != [self.name]:
                name = ""  # another region's: cross-Region copies are not emulated
        name = name.lower()
        for snapshot in self.cluster_snapshots():
            if snapshot.identifier == name:
                return snapshot
        raise fault("DBClusterSnapshotNotFoundFault", f"DBClusterSnapshot {identifier} not found.")

    @property
    def availability_zones(self) -> list[str]:
        return [f"{self.name}{suffix}" for suffix in "abc"]


class RegionStore:
    """All regions of one emulator, created on first use (any region name SigV4 carries)."""

    def __init__(self) -> None:
        self.regions: dict[str, Region] = {}
        self.lock = threading.RLock()
        self.retiring_slots: set[int] = set()  # deleted clusters whose teardown is still running
        # Global clusters are not regional: identifier -> global_database.GlobalDatabase.
        self.global_clusters: dict[str, Any] = {}
        # Called when names or addresses move at once (a Blue/Green switchover's rename): the
        # emulator's DNS (harness.emulator.dns) is rewritten then, not at its next refresh.
        self.names_changed: Callable[[], Any] = lambda: None

    def region(self, name: str) -> Region:
        with self.lock:
            if name not in self.regions:
                self.regions[name] = Region(name)
            return self.regions[name]

    def runtime(self, region: str, cluster: str) -> ClusterRuntime:
        """The runtime of a cluster (DBClusterNotFoundFault if there is none)."""
        with self.lock:
            found = self.region(region)
            return found.runtimes[found.cluster(cluster).identifier]

    def instance_runtime(self, region: str, instance: str) -> tuple[ClusterRuntime, DBInstance]:
        """The runtime an instance belongs to, and the instance (DBInstanceNotFoundFault if none)."""
        with self.lock:
            found = self.region(region)
            cluster, inst = found.instance(instance)
            return found.runtimes[cluster.identifier], inst

    def runtimes(self) -> list[ClusterRuntime]:
        """Every live cluster's runtime, a snapshot (for the monitor and for stopping)."""
        with self.lock:
            return [rt for region in self.regions.values() for rt in region.runtimes.values()]

    def used_cluster_slots(self) -> set[int]:
        """A slot names the cluster's addresses, listeners and sockets: reuse it only once the
        previous owner's teardown has finished, and no cluster serves an endpoint address of its
        block (a Blue/Green switchover moves endpoint addresses between clusters); slot 0 is never used."""
        with self.lock:
            listed = {slot for r in self.regions.values() for c in r.clusters.values() for slot in _blocks(c)}
            return listed | self.retiring_slots | {0}

    def clear(self) -> list[ClusterRuntime]:
        """Forget every cluster; returns their runtimes for the caller to tear down."""
        with self.lock:
            for database in self.global_clusters.values():
                database.close()
            self.global_clusters.clear()
            runtimes = self.runtimes()
            for region in self.regions.values():
                for deployment in region.blue_green_deployments.values():
                    deployment.close()
                region.blue_green_deployments.clear()
                region.clusters.clear()
                region.runtimes.clear()
            return runtimes


def _blocks(cluster: DBCluster) -> set[int]:
    """The address blocks (127.<net>.<block>.x) a cluster holds: its own, and those of the endpoint
    addresses it serves (after a Blue/Green switchover, its blue predecessor's)."""
    addresses = [cluster.cluster_address, cluster.reader_address, *(i.address for i in cluster.instances.values())]
    blocks = {cluster.slot}
    for address in addresses:
        parts = address.split(".") if address else []
        if len(parts) == 4 and parts[2].isdigit():
            blocks.add(int(parts[2]))
    return blocks
