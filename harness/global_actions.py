"""What a global game day does to a global database, as actions (`harness.actions`).

Switchover and failover go through the public RDS API and run on real AWS, where the global
database outlives the scenario: their rollback switches the writer back to the Region it began
in (after a failover, once the old primary has rejoined as a secondary). A Region outage and the
inter-Region link (cut, slowed) are emulator-only controls; they are always put back, because
the emulator's clusters cannot be taken apart while their Region is out. Managed RPO
(`rds.global_db_rpo`, Aurora PostgreSQL) is a DB cluster parameter group the harness creates,
attaches, and removes again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.actions import Action, Context
from harness.environments import GlobalUnderTest
from harness.errors import ScenarioError
from harness.faults import EmulatorOnly

__all__ = ["GlobalFailover", "GlobalSwitchover", "LinkCut", "LinkSlowed", "ManagedRpo", "RegionOutage",
           "RegionReturns"]

SWITCH_BACK_TIMEOUT_S = 900.0
RPO_PARAMETER = "rds.global_db_rpo"


def _global(context: Context) -> GlobalUnderTest:
    if context.global_database is None:
        raise ScenarioError("this needs a global database: start with 'Given an Aurora global database ...'")
    return context.global_database


def switch_back(context: Context, region: str | None) -> str | None:
    """On a global database that outlives the scenario, the writer back in `region` (RPO 0)."""
    if region is None or not context.keeps_cluster:
        return None
    database = _global(context).database
    database.wait_until(database.settled, SWITCH_BACK_TIMEOUT_S, "settling before the switch back")
    if database.writer_region() == region:
        return None
    database.switchover(region)
    database.wait_writer(region, SWITCH_BACK_TIMEOUT_S)
    return f"switched the writer back to {region}"


@dataclass
class GlobalSwitchover(Action):
    """SwitchoverGlobalCluster: the target catches up first (RPO 0), then the roles swap."""

    database: str
    to_region: str
    from_region: str | None = field(default=None, init=False)
    name: ClassVar[str] = "global-switchover"

    def describe(self) -> str:
        return f"SwitchoverGlobalCluster {self.database} to its cluster in {self.to_region}"

    def apply(self, context: Context) -> dict[str, Any]:
        database = _global(context).database
        self.from_region = database.writer_region()
        answer = database.switchover(self.to_region)
        return {"from_region": self.from_region, "to_region": self.to_region,
                "failover_state": (answer.get("FailoverState") or {}).get("Status")}

    def rollback(self, context: Context) -> str | None:
        return switch_back(context, self.from_region)


@dataclass
class GlobalFailover(Action):
    """FailoverGlobalCluster with AllowDataLoss: the target is promoted with what it has received."""

    database: str
    to_region: str
    from_region: str | None = field(default=None, init=False)
    name: ClassVar[str] = "global-failover"

    def describe(self) -> str:
        return f"FailoverGlobalCluster {self.database} with AllowDataLoss to its cluster in {self.to_region}"

    def apply(self, context: Context) -> dict[str, Any]:
        database = _global(context).database
        self.from_region = database.writer_region()
        answer = database.failover(self.to_region)
        return {"from_region": self.from_region, "to_region": self.to_region,
                "failover_state": (answer.get("FailoverState") or {}).get("Status")}

    def rollback(self, context: Context) -> str | None:
        return switch_back(context, self.from_region)


@dataclass
class RegionOutage(EmulatorOnly):
    """Every instance, endpoint and link of a Region unreachable (emulator-only), until it returns."""

    region: str
    out: bool = field(default=False, init=False)
    name: ClassVar[str] = "region-outage"
    needs: ClassVar[str] = "a Region outage"

    def describe(self) -> str:
        return f"take {self.region} out (every instance, endpoint and link of the Region)"

    def apply(self, context: Context) -> dict[str, Any]:
        controls = self.controls(context)
        self.out = True
        return {"region": self.region, "clusters": controls.region_down(region=self.region)}

    def bring_back(self, controls: Any) -> list[str]:
        self.out = False
        return list(controls.region_up(region=self.region))

    def rollback(self, context: Context) -> str | None:
        """Always: a Region left out would hold the scenario's clusters hostage."""
        if not self.out:
            return None
        self.bring_back(self.controls(context))
        return f"{self.region} back"


@dataclass
class RegionReturns(EmulatorOnly):
    """The Region of an outage comes back; a failed-over primary there rejoins as a secondary."""

    outage: RegionOutage
    name: ClassVar[str] = "region-returns"
    needs: ClassVar[str] = "a Region outage"

    def describe(self) -> str:
        return f"bring {self.outage.region} back"

    def apply(self, context: Context) -> dict[str, Any]:
        return {"region": self.outage.region, "clusters": self.outage.bring_back(self.controls(context))}


@dataclass
class LinkCut(EmulatorOnly):
    """The replication link between two Regions cut (emulator-only): the secondary falls behind."""

    region_a: str
    region_b: str
    cut: bool = field(default=False, init=False)
    name: ClassVar[str] = "region-link-cut"
    needs: ClassVar[str] = "cutting the inter-Region link"

    def describe(self) -> str:
        return f"cut the replication link between {self.region_a} and {self.region_b}"

    def apply(self, context: Context) -> dict[str, Any]:
        self.controls(context).cut_region_link(region_a=self.region_a, region_b=self.region_b)
        self.cut = True
        return {"regions": [self.region_a, self.region_b]}

    def rollback(self, context: Context) -> str | None:
        if not self.cut:
            return None
        self.controls(context).restore_region_link(region_a=self.region_a, region_b=self.region_b)
        self.cut = False
        return f"the link between {self.region_a} and {self.region_b} restored"


@dataclass
class LinkSlowed(EmulatorOnly):
    """The inter-Region link's round trip set to `milliseconds` (emulator-only); put back afterwards."""

    region_a: str
    region_b: str
    milliseconds: float
    previous: float | None = field(default=None, init=False)
    name: ClassVar[str] = "region-link-slowed"
    needs: ClassVar[str] = "slowing the inter-Region link"

    def describe(self) -> str:
        return f"slow the link between {self.region_a} and {self.region_b} to {self.milliseconds:g} ms round trip"

    def apply(self, context: Context) -> dict[str, Any]:
        controls = self.controls(context)
        pair = {self.region_a, self.region_b}
        for link in controls.region_network().get("links", {}).values():
            if {link.get("from"), link.get("to")} == pair:
                self.previous = link.get("rtt_ms")
        self.previous = self.previous if self.previous is not None else 70.0
        controls.set_region_rtt(region_a=self.region_a, region_b=self.region_b, milliseconds=self.milliseconds)
        return {"regions": [self.region_a, self.region_b], "rtt_ms": self.milliseconds, "previous_ms": self.previous}

    def rollback(self, context: Context) -> str | None:
        if self.previous is None:
            return None
        self.controls(context).set_region_rtt(region_a=self.region_a, region_b=self.region_b,
                                              milliseconds=self.previous)
        return f"the link between {self.region_a} and {self.region_b} back to {self.previous:g} ms"


@dataclass
class ManagedRpo(Action):
    """rds.global_db_rpo on the primary cluster (Aurora PostgreSQL), through a DB cluster parameter
    group the harness creates; rolled back to the cluster's previous group, and the group deleted."""

    seconds: int
    group: str | None = field(default=None, init=False)
    previous: str | None = field(default=None, init=False)
    name: ClassVar[str] = "managed-rpo"

    def describe(self) -> str:
        return f"set {RPO_PARAMETER} = {self.seconds} on the primary cluster (a new DB cluster parameter group)"

    def apply(self, context: Context) -> dict[str, Any]:
        cut = context.cut
        rds, described = cut.cluster.rds, cut.cluster.describe()
        self.previous = described["DBClusterParameterGroup"]
        family = rds.describe_db_cluster_parameter_groups(DBClusterParameterGroupName=self.previous)[
            "DBClusterParameterGroups"][0]["DBParameterGroupFamily"]
        group = context.environment.creation_policy().name(cut.identifier, "rpo")
        rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group, DBParameterGroupFamily=family,
                                              Description="aurora-gameday: managed RPO")
        self.group = group
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
            {"ParameterName": RPO_PARAMETER, "ParameterValue": str(self.seconds), "ApplyMethod": "immediate"}])
        rds.modify_db_cluster(DBClusterIdentifier=cut.identifier, DBClusterParameterGroupName=group)
        cut.cluster.wait_until(lambda: _shown(context) == str(self.seconds), 120,
                               f"the writer showing {RPO_PARAMETER} = {self.seconds}")
        return {"group": group, "previous_group": self.previous, "seconds": self.seconds}

    def rollback(self, context: Context) -> str | None:
        if self.group is None:
            return None
        rds = context.cut.cluster.rds
        if self.previous is not None:
            rds.modify_db_cluster(DBClusterIdentifier=context.cut.identifier,
                                  DBClusterParameterGroupName=self.previous)
        rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=self.group)
        return f"parameter group {self.group} detached and deleted"


def _shown(context: Context) -> str:
    """`SHOW rds.global_db_rpo` on the primary's writer."""
    cut = context.cut
    with cut.dialect.connect(*cut.endpoint(), cut.credentials, connect_timeout=5, statement_timeout=10) as conn:
        return str(conn.execute(f"SHOW {RPO_PARAMETER}").fetchone()[0])
