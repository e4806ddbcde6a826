"""Watching a global database: probes per Region, the way an application spread over Regions sees it.

- the write probe writes through the **global writer endpoint**, which follows the primary Region
  through a switchover or failover (with its DNS TTL), so the RTO is the application's own;
- a read probe on every instance of the secondary Region (`secondary:<instance>`) times when each
  acknowledged write became visible there: the cross-Region visibility lag;
- the topology probe of the primary cluster (as for one cluster), and a global topology probe that
  records the writer Region, any `FailoverState` and each Region's role and synchronization status
  (`global-topology` records) and the secondary cluster's events.

Probes only record; `harness.judgements.global_database` judges afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from harness.actions import Context
from harness.cluster import AuroraCluster
from harness.drivers import wrapper_connection
from harness.environments import PRIMARY, SECONDARY, GlobalUnderTest
from harness.errors import ScenarioError
from harness.global_database import GlobalDatabase
from harness.observation import StartProbes
from harness.probes import Probe, ProbeSettings, ReadProbe, Target, TopologyProbe, WriteProbe
from harness.timeline import Timeline

__all__ = ["GLOBAL_WRITER", "SECONDARY_READER", "GlobalTopologyProbe", "GlobalWrapperTarget", "StartGlobalProbes",
           "global_wrapper_names", "global_wrapper_target", "record_global"]

GLOBAL_WRITER = "global-writer-endpoint"
SECONDARY_READER = "secondary:"  # read probes on the secondary Region's instances: secondary:<instance>


def record_global(timeline: Timeline, database: GlobalDatabase) -> dict[str, Any]:
    """One `global-topology` record of the global database as the API shows it now."""
    topology = database.topology()
    timeline.record("global-topology", **topology)
    return topology


class GlobalTopologyProbe(Probe):
    """DescribeGlobalClusters on change, and the secondary cluster's RDS events (with its Region)."""

    def __init__(self, timeline: Timeline, settings: ProbeSettings, database: GlobalDatabase,
                 secondary: AuroraCluster, region: str):
        super().__init__("global-topology", timeline, settings)
        self.database, self.secondary, self.region = database, secondary, region
        self.since = datetime.now(timezone.utc)
        self.seen: set[tuple[str, str]] = set()

    def run(self) -> None:
        last: dict[str, Any] | None = None
        next_events = 0.0
        while not self.halt.is_set():
            try:
                topology = self.database.topology()
                if topology != last:
                    self.timeline.record("global-topology", **topology)
                    last = topology
                if time.monotonic() >= next_events:
                    self.poll_events()
                    next_events = time.monotonic() + self.settings.events_interval
            except Exception as error:  # an API hiccup (a Region out) is a fact, not a crash
                self.timeline.record("note", text=f"global topology probe: {type(error).__name__}: {error}")
            self.halt.wait(self.settings.topology_interval)
        try:  # the events of the last interval too
            self.poll_events()
        except Exception as error:
            self.timeline.record("note", text=f"global topology probe: {type(error).__name__}: {error}")

    def poll_events(self) -> None:
        for event in self.secondary.events(self.since, source_type="db-cluster"):
            key = (event["Date"].isoformat(), event["Message"])
            if key not in self.seen:
                self.seen.add(key)
                self.timeline.record("event", date=event["Date"].timestamp(), source=event["SourceIdentifier"],
                                     source_type=event["SourceType"], message=event["Message"], region=self.region,
                                     categories=event.get("EventCategories", []))


@dataclass
class StartGlobalProbes(StartProbes):
    """The probes of a global game day (see the module docstring); the ledger is created on the primary."""

    name: ClassVar[str] = "probes"

    def describe(self) -> str:
        return "create table gameday_ledger and start the probes in each Region"

    def watchers(self, context: Context) -> list[Probe]:
        gut = _global(context)
        cut, secondary = context.cut, gut.roles[SECONDARY]
        host, port = gut.writer_endpoint()
        args = (self.timeline, self.settings, cut.dialect)
        probes: list[Probe] = [WriteProbe(*args, Target(GLOBAL_WRITER, host, port), cut.credentials, self.run_id)]
        for member in secondary.members():
            probes.append(ReadProbe(*args, Target(f"{SECONDARY_READER}{member.identifier}", member.address,
                                                  member.port), cut.credentials, self.run_id))
        probes.append(TopologyProbe(self.timeline, self.settings, cut.cluster))
        probes.append(GlobalTopologyProbe(self.timeline, self.settings, gut.database, secondary.cluster,
                                          gut.regions[SECONDARY]))
        return probes


@dataclass(frozen=True)
class GlobalWrapperTarget:
    """Where the AWS Advanced Python Wrapper reaches a global database, and how (plugin gdb_failover):
    writes through the global writer endpoint, reads through the secondary Region's reader
    endpoint, by the names the wrapper recognises; `hosts` holds those names on the emulator."""

    writer: str  # the global writer endpoint's name
    reader: str  # the secondary Region's reader endpoint's name
    port: int
    home_region: str  # the primary's: the global writer endpoint's name carries no Region
    patterns: str  # "<region>:?.<domain>,...": each Region's instance names
    hosts: Path | None  # a hosts file for a private /etc/hosts (the emulator), None on AWS (real DNS)

    @property
    def properties(self) -> dict[str, Any]:
        return wrapper_connection.global_properties(self.home_region, self.patterns)


def global_wrapper_names(context: Context, directory: Path) -> GlobalWrapperTarget:
    """The global database's names for the wrapper (see `GlobalWrapperTarget`). On the emulator the
    names (the global writer endpoint's AWS shape among them) go in a hosts file under `directory`;
    on AWS they are the real ones, the patterns read off the instances' endpoints
    ("<instance>.<hash>.<region>.rds.amazonaws.com" → "?.<hash>...")."""
    from harness.drivers.names import AuroraNames, global_writer_name, namespace_problem

    gut = _global(context)
    described = gut.database.describe()
    port = gut.roles[PRIMARY].endpoint()[1]
    home = gut.regions[PRIMARY]
    if context.environment.aurora_names(context.cut) is None:  # real DNS
        patterns = {gut.regions[role]: "?." + cut.members()[0].address.split(".", 1)[1]
                    for role, cut in gut.roles.items()}
        return GlobalWrapperTarget(str(described["Endpoint"]), gut.roles[SECONDARY].reader_endpoint()[0], port, home,
                                   ",".join(f"{r}:{p}" for r, p in patterns.items()), None)
    problem = namespace_problem()
    if problem:
        raise ScenarioError(f"the AWS Advanced Python Wrapper needs the global database's names in a private "
                            f"/etc/hosts here: {problem}")
    per_region = {gut.regions[role]: AuroraNames.of(cut.cluster.rds, cut.identifier, gut.regions[role])
                  for role, cut in gut.roles.items()}
    name = global_writer_name(described)
    addresses = {name: str(described["Endpoint"])}
    for names in per_region.values():
        addresses.update(names.addresses)
    directory.mkdir(parents=True, exist_ok=True)
    hosts = AuroraNames(gut.identifier, home, addresses=addresses).write_hosts_file(directory / "hosts")
    return GlobalWrapperTarget(name, per_region[gut.regions[SECONDARY]].reader_endpoint, port, home,
                               ",".join(f"{region}:{names.instance_pattern}" for region, names in per_region.items()),
                               hosts)


def global_wrapper_target(context: Context, directory: Path) -> tuple[str, int, dict[str, Any], Path | None]:
    """Where the wrapper's write probe connects on a global database: (host, port, wrapper
    properties, hosts file or None), from `global_wrapper_names`."""
    target = global_wrapper_names(context, directory)
    return target.writer, target.port, target.properties, target.hosts


def _global(context: Context) -> GlobalUnderTest:
    if context.global_database is None:
        raise ScenarioError("this needs a global database: start with 'Given an Aurora global database ...'")
    return context.global_database
