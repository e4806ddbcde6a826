"""What a Blue/Green game day does, as actions (`harness.actions`): applied only through
`GameDay.act()`, so a dry run plans them and touches nothing.

- `CreateGreen`: CreateBlueGreenDeployment from the cluster under test (a green environment is
  billable: on AWS only where the profile's [create] table allows creating, named under its
  prefix and tagged as the harness's own, so `gameday cleanup` finds one a killed run left), or
  the existing deployment the profile names for the cluster (`blue_green_deployment`), which is
  taken as it is and never deleted. Its rollback always deletes what it created: the deployment
  with its green cluster, or, after a switchover, the deployment and (on a cluster the
  environment created) the old blue.
- `Switchover`: SwitchoverBlueGreenDeployment with a timeout. On AWS only where the profile lets
  the harness switch the cluster over (`may_switch_over`): a completed switchover cannot be
  undone, only rolled forward. A refusal (a guardrail) is recorded, not raised: it is evidence.
- `LongRunningWrite`, `DdlOnBlue`: what a team does on blue that a switchover must respect.
- `StallGreenLink`, `UnsafeSwitchover`: emulator-only controls (replication from blue held; a
  switchover that does not wait for green to catch up, the negative control).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from harness.actions import Action, Context
from harness.blue_green import SETTLED, SLOW_POLL_S, Deployment, cluster_name
from harness.cluster import AuroraCluster
from harness.errors import ScenarioError
from harness.faults import EmulatorOnly

__all__ = ["CreateGreen", "DdlOnBlue", "LongRunningWrite", "StallGreenLink", "Switchover", "UnsafeSwitchover"]

PROVISION_TIMEOUT_S = 3600.0  # AWS: minutes to hours (a copy of the cluster); the emulator: seconds
DELETE_TIMEOUT_S = 1800.0
DDL_TABLE = "gameday_bg_ddl"
LINK = "blue-green"  # the emulator's link from blue into the green cluster
STALL = "gameday-stall"


def _next_version(rds: Any, engine: str, version: str) -> str:
    """The newest minor upgrade target of `version` (the cluster's own version when there is none):
    a Blue/Green deployment is how teams ship one."""
    found = rds.describe_db_engine_versions(Engine=engine, EngineVersion=version)["DBEngineVersions"]
    targets = [t["EngineVersion"] for v in found for t in v.get("ValidUpgradeTarget", [])
               if not t.get("IsMajorVersionUpgrade")]
    return max(targets, key=_version_key, default=version)


def _version_key(version: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in version.replace("_", ".").split("."))


@dataclass
class CreateGreen(Action):
    """CreateBlueGreenDeployment (to the next minor engine version), waited for until AVAILABLE;
    or the deployment the profile names for this cluster. Deleted at the end if created."""

    run_id: str
    upgrade: bool = True
    identifier: str | None = field(default=None, init=False)
    created: bool = field(default=False, init=False)
    name: ClassVar[str] = "blue-green-create"

    def describe(self) -> str:
        what = self.identifier or "(named when created)"
        return (f"CreateBlueGreenDeployment {what}: a green environment"
                f"{' on the next engine version' if self.upgrade else ''}, deleted at the end")

    def deployment(self, context: Context) -> Deployment:
        if self.identifier is None:
            raise ScenarioError("no Blue/Green deployment yet: 'Given a Blue/Green deployment of the cluster'")
        return Deployment(context.cut.cluster.rds, self.identifier)

    def apply(self, context: Context) -> dict[str, Any]:
        cut, rds = context.cut, context.cut.cluster.rds
        existing = context.environment.blue_green_deployment(cut)
        if existing is not None:
            self.identifier = existing
        else:
            policy = context.environment.creation_policy()  # TargetUnavailable where creating is not allowed
            described = cut.cluster.describe()
            version = (_next_version(rds, described["Engine"], described["EngineVersion"]) if self.upgrade
                       else described["EngineVersion"])
            answer = rds.create_blue_green_deployment(
                BlueGreenDeploymentName=policy.name(cut.identifier, "bg", self.run_id[:8]),
                Source=described["DBClusterArn"], TargetEngineVersion=version, Tags=policy.tags(self.run_id))
            self.identifier, self.created = answer["BlueGreenDeployment"]["BlueGreenDeploymentIdentifier"], True
        status, details = self.deployment(context).watch(
            None, ("AVAILABLE", "INVALID_CONFIGURATION", "SWITCHOVER_FAILED"), PROVISION_TIMEOUT_S,
            interval=SLOW_POLL_S)
        if status == "INVALID_CONFIGURATION" and self.created:
            raise ScenarioError(f"the green environment could not be created: {details}")
        return {"deployment": self.identifier, "created": self.created, "status": status}

    def rollback(self, context: Context) -> str | None:
        """Always, for what it created: the deployment and its green cluster, or after a
        switchover the deployment and the old blue (when the environment owns the cluster)."""
        if self.identifier is None or not self.created:
            return None
        deployment = self.deployment(context)
        if not deployment.exists():
            return None
        status, _ = deployment.watch(None, SETTLED, DELETE_TIMEOUT_S,
                                     interval=SLOW_POLL_S)
        source = cluster_name(deployment.describe()["Source"])
        switched = status == "SWITCHOVER_COMPLETED"
        rds = context.cut.cluster.rds
        rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=self.identifier,
                                         **({} if switched else {"DeleteTarget": True}))
        context.cut.cluster.wait_until(lambda: not deployment.exists(), DELETE_TIMEOUT_S,
                                       f"blue/green deployment {self.identifier} deleted")
        if not switched:
            return f"deleted blue/green deployment {self.identifier} and its green environment"
        if not context.cut.created:
            return (f"deleted blue/green deployment {self.identifier}; the old blue {source} is kept (delete it "
                    f"when the new production cluster has proved itself)")
        for member in AuroraCluster(rds, source).members():
            rds.delete_db_instance(DBInstanceIdentifier=member.identifier, SkipFinalSnapshot=True)
        return f"deleted blue/green deployment {self.identifier} and the old blue {source}'s instances"


@dataclass
class Switchover(Action):
    """SwitchoverBlueGreenDeployment with `timeout_s` (30-3,600 s, AWS's default 300). A guardrail
    that refuses it is recorded (outcome "refused", the reason AWS gave) and changes nothing."""

    create: CreateGreen
    timeout_s: int = 300
    name: ClassVar[str] = "blue-green-switchover"

    def describe(self) -> str:
        return (f"SwitchoverBlueGreenDeployment {self.create.identifier or '(the scenario deployment)'} "
                f"with a {self.timeout_s} s timeout")

    def apply(self, context: Context) -> dict[str, Any]:
        context.environment.check_may_switch_over(context.cut)
        deployment = self.create.deployment(context)
        try:
            answer = context.cut.cluster.rds.switchover_blue_green_deployment(
                BlueGreenDeploymentIdentifier=deployment.identifier, SwitchoverTimeout=self.timeout_s)
        except ClientError as error:
            code, message = error.response["Error"]["Code"], error.response["Error"]["Message"]
            if code != "InvalidBlueGreenDeploymentStateFault":
                raise
            return {"deployment": deployment.identifier, "outcome": "refused", "code": code, "message": message,
                    "timeout_s": self.timeout_s}
        return {"deployment": deployment.identifier, "outcome": "started", "timeout_s": self.timeout_s,
                "status": answer["BlueGreenDeployment"]["Status"]}


@dataclass
class LongRunningWrite(Action):
    """A write transaction held open on blue's writer (one ledger row, never committed): the
    "long-running active writes" guardrail. Rolled back (and its session closed) at the end."""

    run_id: str
    conn: Any = field(default=None, init=False, repr=False)
    opened: float | None = field(default=None, init=False)
    name: ClassVar[str] = "long-running-write"

    def describe(self) -> str:
        return "hold a write transaction open on the blue writer (an uncommitted ledger row)"

    def apply(self, context: Context) -> dict[str, Any]:
        cut = context.cut
        self.conn = cut.dialect.connect(*cut.endpoint(), cut.credentials, connect_timeout=5, statement_timeout=0,
                                        application_name="gameday-long-write")
        _execute(self.conn, "BEGIN")
        server = cut.dialect.insert(self.conn, f"{self.run_id}-held", 1)
        self.opened = time.monotonic()
        return {"server": server}

    def age_s(self) -> float:
        return 0.0 if self.opened is None else time.monotonic() - self.opened

    def rollback(self, context: Context) -> str | None:
        if self.conn is None:
            return None
        try:
            _execute(self.conn, "ROLLBACK")
        finally:
            self.conn.close()
            self.conn = None
        return "rolled back the long-running write transaction"


@dataclass
class DdlOnBlue(Action):
    """CREATE TABLE on blue (a schema change): Aurora PostgreSQL's logical replication does not
    replay DDL, so the deployment can no longer switch over. The table is dropped at the end."""

    created: bool = field(default=False, init=False)
    name: ClassVar[str] = "ddl-on-blue"

    def describe(self) -> str:
        return f"DDL on blue: CREATE TABLE {DDL_TABLE}"

    def apply(self, context: Context) -> dict[str, Any]:
        cut = context.cut
        with cut.dialect.connect(*cut.endpoint(), cut.credentials, connect_timeout=5, statement_timeout=30,
                                 application_name="gameday-ddl") as conn:
            _execute(conn, f"CREATE TABLE {DDL_TABLE} (id int PRIMARY KEY)")
        self.created = True
        return {"statement": f"CREATE TABLE {DDL_TABLE} (id int PRIMARY KEY)"}

    def rollback(self, context: Context) -> str | None:
        if not self.created or not context.keeps_cluster:
            return None
        cut = context.cut
        with cut.dialect.connect(*cut.endpoint(), cut.credentials, connect_timeout=5, statement_timeout=30,
                                 application_name="gameday-ddl") as conn:
            _execute(conn, f"DROP TABLE IF EXISTS {DDL_TABLE}")
        return f"dropped {DDL_TABLE}"


@dataclass
class StallGreenLink(EmulatorOnly):
    """Replication from blue into green held (emulator-only: a stall on the link, which buffers, so
    green catches up once it is lifted). Always lifted at the end, unless the switchover took the
    link away."""

    create: CreateGreen
    green: str | None = field(default=None, init=False)
    name: ClassVar[str] = "green-link-stalled"
    needs: ClassVar[str] = "holding replication into green"

    def describe(self) -> str:
        return "hold replication from blue into the green environment"

    def apply(self, context: Context) -> dict[str, Any]:
        self.green = cluster_name(self.create.deployment(context).describe()["Target"])
        self.controls(context).add_toxic(cluster=self.green, link=LINK, toxic={
            "type": "stall", "name": STALL, "stream": "downstream", "attributes": {"percent": 100.0}})
        return {"green": self.green}

    def lift(self, context: Context) -> str | None:
        if self.green is None:
            return None
        deployment = self.create.deployment(context)
        if deployment.exists() and deployment.status()[0] == "SWITCHOVER_COMPLETED":
            self.green = None
            return None  # the link went with the switchover
        self.controls(context).remove_toxic(cluster=self.green, link=LINK, name=STALL)
        green, self.green = self.green, None
        return f"replication into {green} flows again"

    def rollback(self, context: Context) -> str | None:
        return self.lift(context)


@dataclass
class UnsafeSwitchover(EmulatorOnly):
    """Negative control (emulator-only): the deployment's switchover does not wait for green to
    catch up, so what blue had not replicated is lost."""

    create: CreateGreen
    name: ClassVar[str] = "unsafe-switchover"
    needs: ClassVar[str] = "an unsafe switchover"

    def describe(self) -> str:
        return "let the switchover skip waiting for green to catch up (negative control)"

    def apply(self, context: Context) -> dict[str, Any]:
        deployment = self.create.deployment(context).identifier
        self.controls(context).set_unsafe_switchover(deployment=deployment, enabled=True)
        return {"deployment": deployment}


def _execute(conn: Any, statement: str) -> None:
    """One statement on a psycopg or a PyMySQL connection."""
    if hasattr(conn, "execute"):
        conn.execute(statement)
        return
    with conn.cursor() as cursor:
        cursor.execute(statement)
