"""An API family: the operations on one kind of resource, one method per operation.

A family declares the operations it answers (`operations`, by their API names); each is
answered by the method of the same name in snake case, which takes the region and the parsed
request parameters and returns the result members, or raises the `ApiError` AWS answers with.
Long operations return at once with a transitional status and finish in a job, whose error
handler leaves a truthful status if it fails.

Families are built from `Parts`, never from the whole emulator: a family can only reach what
its parts give it, and a test can give it fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from harness.emulator.addresses import ClusterAddresses, first_free
from harness.emulator.interregion import InterRegionNetwork
from harness.emulator.jobs import Jobs
from harness.emulator.models import DBCluster
from harness.emulator.operations.state import Region, RegionStore
from harness.emulator.runtime import ClusterRuntime

MAX_CLUSTERS = 255  # one /24 of loopback addresses each

# Starts the data plane of a new cluster: its engine cluster, on its block of loopback addresses.
RuntimeFactory = Callable[[DBCluster, ClusterAddresses], ClusterRuntime]


@dataclass(frozen=True)
class Parts:
    """What the control plane is built from; `emulator.py` wires them."""

    store: RegionStore
    net: int  # loopback addresses are 127.<net>.<cluster slot>.x
    new_runtime: RuntimeFactory
    jobs: Jobs
    backup_root: Path | None = None  # where snapshots keep their data (None: no storage, a control plane under test)
    network: InterRegionNetwork = field(default_factory=lambda: InterRegionNetwork(None))  # between Regions


class Family:
    """Base of the API families: the parts every one of them uses."""

    operations: ClassVar[tuple[str, ...]] = ()

    def __init__(self, parts: Parts):
        self.store = parts.store
        self.jobs = parts.jobs
        self.net = parts.net
        self.new_runtime = parts.new_runtime
        self.backup_root = parts.backup_root

    def addresses(self, cluster: DBCluster) -> ClusterAddresses:
        return ClusterAddresses(self.net, cluster.slot)

    def launch_cluster(self, region: Region, identifier: str, **fields: Any) -> tuple[DBCluster, ClusterRuntime]:
        """A new cluster (created, or restored) on its own block of addresses, with its data plane,
        listed in `region`; `fields` are the DBCluster's."""
        slot = first_free(self.store.used_cluster_slots(), MAX_CLUSTERS)
        addresses = ClusterAddresses(self.net, slot)
        cluster = DBCluster(identifier=identifier, region=region.name, slot=slot,
                            cluster_address=addresses.cluster_endpoint, reader_address=addresses.reader_endpoint,
                            **fields)
        runtime = self.new_runtime(cluster, addresses)
        region.clusters[identifier] = cluster
        region.runtimes[identifier] = runtime
        return cluster, runtime
