"""Faults: small objects that say what they will do and then do it.

API faults go through the public RDS API and run unchanged on real AWS. Emulator-only faults
(storage nodes, AZ loss, link toxics, unsafe promotion) need the emulator's controls and
refuse to run anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.environments import ClusterUnderTest, Environment, TargetUnavailable


class Fault(Protocol):
    name: str

    def describe(self) -> str:
        """One sentence for the plan (dry run) and the report."""

    def inject(self, cut: ClusterUnderTest, environment: Environment) -> dict[str, Any]:
        """Do it; return details worth keeping on the timeline."""


def _controls(environment: Environment, fault: str) -> Any:
    controls = environment.controls()
    if controls is None:
        raise TargetUnavailable(f"{fault} needs the emulator's controls; it cannot run on {environment.name}")
    return controls


@dataclass
class Failover:
    """FailoverDBCluster, to a named reader or the one Aurora picks."""

    target: str | None = None
    name: str = "failover"

    def describe(self) -> str:
        return f"FailoverDBCluster to {self.target}" if self.target else "FailoverDBCluster (Aurora picks the reader)"

    def inject(self, cut: ClusterUnderTest, environment: Environment) -> dict[str, Any]:
        before = cut.cluster.topology()
        cut.cluster.failover(self.target)
        return {"old_writer": before["writer"], "requested_target": self.target}


@dataclass
class Reboot:
    """RebootDBInstance: a restart in place, never a failover on Aurora."""

    instance: str
    name: str = "reboot"

    def describe(self) -> str:
        return f"RebootDBInstance {self.instance}"

    def inject(self, cut: ClusterUnderTest, environment: Environment) -> dict[str, Any]:
        cut.cluster.reboot(self.instance)
        return {"instance": self.instance}


@dataclass
class StorageNodesDown:
    """Emulator-only: stop storage nodes of the cluster volume."""

    nodes: list[str]
    name: str = "storage-nodes-down"

    def describe(self) -> str:
        return f"stop storage nodes {', '.join(self.nodes)}"

    def inject(self, cut: ClusterUnderTest, environment: Environment) -> dict[str, Any]:
        controls = _controls(environment, "stopping storage nodes")
        for node in self.nodes:
            controls.stop_storage_node(cluster=cut.identifier, node=node)
        return {"nodes": self.nodes, "storage": controls.storage_status(cluster=cut.identifier)}


@dataclass
class StorageNodesUp:
    nodes: list[str]
    name: str = "storage-nodes-up"

    def describe(self) -> str:
        return f"restart storage nodes {', '.join(self.nodes)}"

    def inject(self, cut: ClusterUnderTest, environment: Environment) -> dict[str, Any]:
        controls = _controls(environment, "restarting storage nodes")
        for node in self.nodes:
            controls.start_storage_node(cluster=cut.identifier, node=node)
        return {"nodes": self.nodes, "storage": controls.storage_status(cluster=cut.identifier)}


@dataclass
class AzDown:
    """Emulator-only: lose a whole Availability Zone (its storage nodes and instances)."""

    az: str
    name: str = "az-down"

    def describe(self) -> str:
        return f"take down Availability Zone {self.az}"

    def inject(self, cut: ClusterUnderTest, environment: Environment) -> dict[str, Any]:
        _controls(environment, "an AZ outage").az_down(az=self.az, region=cut.cluster.rds.meta.region_name)
        return {"az": self.az}


@dataclass
class AzUp:
    az: str
    name: str = "az-up"

    def describe(self) -> str:
        return f"bring Availability Zone {self.az} back"

    def inject(self, cut: ClusterUnderTest, environment: Environment) -> dict[str, Any]:
        _controls(environment, "an AZ recovery").az_up(az=self.az, region=cut.cluster.rds.meta.region_name)
        return {"az": self.az}


@dataclass
class LinkLatency:
    """Emulator-only: delay a replication link (writer to reader) by a fixed latency."""

    reader: str
    latency_ms: int
    jitter_ms: int = 0
    name: str = "link-latency"

    def describe(self) -> str:
        return f"add {self.latency_ms} ms latency on the replication link to {self.reader}"

    def inject(self, cut: ClusterUnderTest, environment: Environment) -> dict[str, Any]:
        _controls(environment, "a replication-link toxic").add_toxic(
            cluster=cut.identifier, link=f"reader:{self.reader}",
            toxic={"type": "latency", "name": "gameday-latency", "stream": "downstream",
                   "attributes": {"latency_ms": self.latency_ms, "jitter_ms": self.jitter_ms}})
        return {"reader": self.reader, "latency_ms": self.latency_ms}


@dataclass
class UnsafeFailover:
    """Emulator-only negative control: promote `target` without letting it catch up.

    Aurora never does this; the emulator can, so a game day can prove that the harness
    really detects and reports lost writes.
    """

    target: str
    name: str = "unsafe-failover"
    detail: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"promote {self.target} without catching up (negative control)"

    def inject(self, cut: ClusterUnderTest, environment: Environment) -> dict[str, Any]:
        controls = _controls(environment, "an unsafe promotion")
        controls.set_unsafe_promotion(cluster=cut.identifier, enabled=True)
        before = cut.cluster.topology()
        cut.cluster.failover(self.target)
        return {"old_writer": before["writer"], "requested_target": self.target, "unsafe": True}
