"""Faults: the actions a game day is about (`harness.actions`): say it, do it, put it back.

API faults go through the public RDS API and run unchanged on real AWS. Emulator-only faults
(storage nodes, AZ loss, link toxics, unsafe promotion) need the emulator's controls and
refuse to run anywhere else. Each is applied through `GameDay.act()`, so a dry run only plans
it; its rollback puts back what a real cluster would otherwise keep (a failover leaves the
writer elsewhere: the rollback fails back to the writer the scenario started with).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.actions import Action, Context
from harness.dialects.base import Outcome
from harness.environments import ClusterUnderTest, Environment, TargetUnavailable
from harness.fault_queries import Crash, FaultQuery

Fault = Action  # a fault is an action whose effect the game day measures

FAILBACK_TIMEOUT_S = 600.0


def _controls(environment: Environment, fault: str) -> Any:
    controls = environment.controls()
    if controls is None:
        raise TargetUnavailable(f"{fault} needs the emulator's controls; it cannot run on {environment.name}")
    return controls


class EmulatorOnly(Action):
    """A fault only the emulator's controls can cause (no RDS API does it). Its `undo` runs as the
    rollback where the cluster outlives the scenario (a long-lived emulator cluster); one created
    for the scenario is deleted instead."""

    needs: ClassVar[str] = "this fault"  # names it in the refusal on a target without the controls

    def controls(self, context: Context) -> Any:
        return _controls(context.environment, self.needs)

    def rollback(self, context: Context) -> str | None:
        return self.undo(context, self.controls(context)) if context.keeps_cluster else None

    def undo(self, context: Context, controls: Any) -> str | None:
        """Put back what `apply` did; say what, or None when there is nothing to put back."""
        return None


@dataclass
class Failover(Action):
    """FailoverDBCluster, to a named reader or the one Aurora picks."""

    target: str | None = None
    old_writer: str | None = field(default=None, init=False)
    name: ClassVar[str] = "failover"

    def describe(self) -> str:
        return f"FailoverDBCluster to {self.target}" if self.target else "FailoverDBCluster (Aurora picks the reader)"

    def apply(self, context: Context) -> dict[str, Any]:
        before = context.cut.cluster.topology()
        self.old_writer = before["writer"]
        context.cut.cluster.failover(self.target)
        return {"old_writer": before["writer"], "requested_target": self.target}

    def rollback(self, context: Context) -> str | None:
        return fail_back(context, self.old_writer)


@dataclass
class Reboot(Action):
    """RebootDBInstance: a restart in place, never a failover on Aurora."""

    instance: str
    name: ClassVar[str] = "reboot"

    def describe(self) -> str:
        return f"RebootDBInstance {self.instance}"

    def apply(self, context: Context) -> dict[str, Any]:
        context.cut.cluster.reboot(self.instance)
        return {"instance": self.instance}


@dataclass
class StorageNodesDown(EmulatorOnly):
    """Emulator-only: stop storage nodes of the cluster volume."""

    nodes: list[str]
    name: ClassVar[str] = "storage-nodes-down"
    needs: ClassVar[str] = "stopping storage nodes"

    def describe(self) -> str:
        return f"stop storage nodes {', '.join(self.nodes)}"

    def apply(self, context: Context) -> dict[str, Any]:
        return _switch_storage_nodes(self.controls(context), context.cut.identifier, self.nodes, up=False)

    def undo(self, context: Context, controls: Any) -> str | None:
        cluster = context.cut.identifier
        down = [n for n, state in controls.storage_status(cluster=cluster).items()
                if n in self.nodes and state == "stopped"]
        for node in down:
            controls.start_storage_node(cluster=cluster, node=node)
        return f"restarted storage nodes {', '.join(down)}" if down else None


@dataclass
class StorageNodesUp(EmulatorOnly):
    nodes: list[str]
    name: ClassVar[str] = "storage-nodes-up"
    needs: ClassVar[str] = "restarting storage nodes"

    def describe(self) -> str:
        return f"restart storage nodes {', '.join(self.nodes)}"

    def apply(self, context: Context) -> dict[str, Any]:
        return _switch_storage_nodes(self.controls(context), context.cut.identifier, self.nodes, up=True)


def _switch_storage_nodes(controls: Any, cluster: str, nodes: list[str], *, up: bool) -> dict[str, Any]:
    """Start or stop storage nodes of the cluster volume; what was asked and the volume's state after."""
    for node in nodes:
        (controls.start_storage_node if up else controls.stop_storage_node)(cluster=cluster, node=node)
    return {"nodes": nodes, "storage": controls.storage_status(cluster=cluster)}


@dataclass
class AzDown(EmulatorOnly):
    """Emulator-only: lose a whole Availability Zone (its storage nodes and instances)."""

    az: str
    name: ClassVar[str] = "az-down"
    needs: ClassVar[str] = "an AZ outage"

    def describe(self) -> str:
        return f"take down Availability Zone {self.az}"

    def apply(self, context: Context) -> dict[str, Any]:
        self.controls(context).az_down(az=self.az, region=_region(context))
        return {"az": self.az}

    def undo(self, context: Context, controls: Any) -> str | None:
        controls.az_up(az=self.az, region=_region(context))
        return f"brought Availability Zone {self.az} back"


@dataclass
class AzUp(EmulatorOnly):
    az: str
    name: ClassVar[str] = "az-up"
    needs: ClassVar[str] = "an AZ recovery"

    def describe(self) -> str:
        return f"bring Availability Zone {self.az} back"

    def apply(self, context: Context) -> dict[str, Any]:
        self.controls(context).az_up(az=self.az, region=_region(context))
        return {"az": self.az}


@dataclass
class ReaderLag(EmulatorOnly):
    """Emulator-only: a reader holds the writer's commits `lag_ms` late.

    How depends on the engine, as the emulator decides: Aurora PostgreSQL's readers get the
    writer's changes late (a latency toxic on the replication link); Aurora MySQL's emulated
    readers acknowledge commits on receipt (semi-sync), so they apply them late instead.
    """

    reader: str
    lag_ms: int
    name: ClassVar[str] = "reader-lag"
    needs: ClassVar[str] = "a lagging reader"

    def describe(self) -> str:
        return f"make {self.reader} hold the writer's commits {self.lag_ms} ms late"

    def apply(self, context: Context) -> dict[str, Any]:
        self.controls(context).lag_reader(cluster=context.cut.identifier, reader=self.reader,
                                          milliseconds=self.lag_ms)
        return {"reader": self.reader, "lag_ms": self.lag_ms}

    def undo(self, context: Context, controls: Any) -> str | None:
        controls.unlag_reader(cluster=context.cut.identifier, reader=self.reader)
        return f"{self.reader} no longer held back"


class FaultQueryRejected(RuntimeError):
    """The cluster refused a fault-injection query; the message is the engine's own error."""


@dataclass
class FaultInjectionQueries(Action):
    """Aurora's fault-injection queries, run on `instance` through its instance endpoint.

    The same on real Aurora and on the emulator: the dialect spells each query as the engine
    documents it. A crash ends the session that asked for it (the engine or its dispatcher goes
    down under it), so for a crash a lost connection is the expected answer.
    """

    instance: str
    queries: list[FaultQuery]
    name: ClassVar[str] = "fault-injection"
    statements: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"on {self.instance}: " + "; ".join(self.statements or [type(q).__name__ for q in self.queries])

    def render(self, cut: ClusterUnderTest) -> None:
        """Spell the queries for the cluster's engine (done before the plan is shown)."""
        self.statements = [cut.dialect.fault_injection_sql(q) for q in self.queries]

    def apply(self, context: Context) -> dict[str, Any]:
        cut = context.cut
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
class UnsafeFailover(EmulatorOnly):
    """Emulator-only negative control: promote `target` without letting it catch up.

    Aurora never does this; the emulator can, so a game day can prove that the harness
    really detects and reports lost writes.
    """

    target: str
    name: ClassVar[str] = "unsafe-failover"
    needs: ClassVar[str] = "an unsafe promotion"
    detail: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"promote {self.target} without catching up (negative control)"

    def apply(self, context: Context) -> dict[str, Any]:
        self.controls(context).set_unsafe_promotion(cluster=context.cut.identifier, enabled=True)
        before = context.cut.cluster.topology()
        context.cut.cluster.failover(self.target)
        return {"old_writer": before["writer"], "requested_target": self.target, "unsafe": True}

    def undo(self, context: Context, controls: Any) -> str | None:
        controls.set_unsafe_promotion(cluster=context.cut.identifier, enabled=False)
        return "failovers catch up again"


@dataclass
class RestoreLandsEarly(EmulatorOnly):
    """Emulator-only negative control: the next restore (or backtrack) of the cluster lands
    `seconds` earlier than asked, so the game day must find the writes it misses."""

    seconds: float
    name: ClassVar[str] = "restore-lands-early"
    needs: ClassVar[str] = "a restore landing early"

    def describe(self) -> str:
        return f"make the next restore land {self.seconds:g} s earlier than asked (negative control)"

    def apply(self, context: Context) -> dict[str, Any]:
        self.controls(context).set_restore_offset(cluster=context.cut.identifier, seconds=self.seconds)
        return {"seconds": self.seconds}

    def undo(self, context: Context, controls: Any) -> str | None:
        controls.set_restore_offset(cluster=context.cut.identifier, seconds=0)
        return "restores land where asked again"


def _region(context: Context) -> str:
    return str(context.cut.cluster.rds.meta.region_name)


def fail_back(context: Context, writer: str | None) -> str | None:
    """After a failover on a cluster that outlives the scenario, make `writer` the writer again
    (once the cluster has settled), so the application's writer is where it was before."""
    if writer is None or not context.keeps_cluster:
        return None
    cluster = context.cut.cluster
    cluster.wait_settled(timeout=FAILBACK_TIMEOUT_S)
    if cluster.topology()["writer"] == writer:
        return None
    cluster.failover(writer)
    cluster.wait_until(lambda: cluster.settled() and cluster.topology()["writer"] == writer, FAILBACK_TIMEOUT_S,
                       f"failing back to {writer}")
    return f"failed back to {writer}"
