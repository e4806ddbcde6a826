"""Faults: small objects that say what they will do and then do it.

API faults go through the public RDS API and run unchanged on real AWS. Emulator-only faults
(storage nodes, AZ loss, link toxics, unsafe promotion) need the emulator's controls and
refuse to run anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.dialects.base import Outcome
from harness.environments import ClusterUnderTest, Environment, TargetUnavailable
from harness.fault_queries import Crash, FaultQuery


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
class ReaderLag:
    """Emulator-only: a reader holds the writer's commits `lag_ms` late.

    How depends on the engine, as the emulator decides: Aurora PostgreSQL's readers get the
    writer's changes late (a latency toxic on the replication link); Aurora MySQL's emulated
    readers acknowledge commits on receipt (semi-sync), so they apply them late instead.
    """

    reader: str
    lag_ms: int
    name: str = "reader-lag"

    def describe(self) -> str:
        return f"make {self.reader} hold the writer's commits {self.lag_ms} ms late"

    def inject(self, cut: ClusterUnderTest, environment: Environment) -> dict[str, Any]:
        _controls(environment, "a lagging reader").lag_reader(cluster=cut.identifier, reader=self.reader,
                                                               milliseconds=self.lag_ms)
        return {"reader": self.reader, "lag_ms": self.lag_ms}


class FaultQueryRejected(RuntimeError):
    """The cluster refused a fault-injection query; the message is the engine's own error."""


@dataclass
class FaultInjectionQueries:
    """Aurora's fault-injection queries, run on `instance` through its instance endpoint.

    The same on real Aurora and on the emulator: the dialect spells each query as the engine
    documents it. A crash ends the session that asked for it (the engine or its dispatcher goes
    down under it), so for a crash a lost connection is the expected answer.
    """

    instance: str
    queries: list[FaultQuery]
    name: str = "fault-injection"
    statements: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"on {self.instance}: " + "; ".join(self.statements or [type(q).__name__ for q in self.queries])

    def render(self, cut: ClusterUnderTest) -> None:
        """Spell the queries for the cluster's engine (done before the plan is shown)."""
        self.statements = [cut.dialect.fault_injection_sql(q) for q in self.queries]

    def inject(self, cut: ClusterUnderTest, environment: Environment) -> dict[str, Any]:
        self.render(cut)
        member = next((m for m in cut.members() if m.identifier == self.instance), None)
        if member is None:
            raise TargetUnavailable(f"{self.instance} is not an instance of {cut.identifier}")
        conn = cut.dialect.connect(member.address, member.port, cut.credentials, connect_timeout=5,
                                   statement_timeout=30, application_name="aurora-gameday-fault")
        answers: list[str] = []
        try:
            for query, statement in zip(self.queries, self.statements, strict=True):
                try:
                    cursor = conn.cursor()
                    cursor.execute(statement)
                    answers.append("ok")
                except Exception as error:
                    expected = isinstance(query, Crash) and cut.dialect.classify(error, sent=True) is Outcome.UNKNOWN
                    if not expected:
                        raise FaultQueryRejected(f"{statement} was refused by {self.instance}: "
                                                 f"{cut.dialect.describe_error(error)}") from None
                    answers.append(f"connection lost, as a crash does: {cut.dialect.describe_error(error)}")
        finally:
            try:
                conn.close()
            except Exception:
                pass  # a crashed instance's connection is already gone
        return {"instance": self.instance, "statements": self.statements, "answers": answers,
                "interval_s": max(q.interval_s for q in self.queries)}


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
