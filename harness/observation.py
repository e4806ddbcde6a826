"""What a game day sets up to watch a cluster, as actions: the probes, the loads, holding still.

Starting the probes creates the ledger table and writes rows into it; a load creates its orders
table and places orders: both change the cluster, so both are actions (`harness.actions`),
applied through `GameDay.act()` like a fault. A dry run plans them and starts nothing; their
rollback removes the rows this run wrote from a cluster the harness does not own.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from harness.actions import Action, Context
from harness.dialects import workload_dialect_for
from harness.drivers import AWS_WRAPPER
from harness.errors import ScenarioError
from harness.load.runner import Distribution, LoadRun, LoadSpec
from harness.load.settings import LoadSettings
from harness.probes import (Probe, ProbeSet, ProbeSettings, ReadProbe, SurfaceProbe, Target, TopologyProbe,
                            WrapperWriteProbe, WriteProbe)
from harness.timeline import Timeline

__all__ = ["Observe", "StartLoad", "StartProbes", "StartWrapperProbe"]

log = logging.getLogger("harness.gameday")
PROBE_SWITCH_INTERVAL_S = 0.0005
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Observe(Action):
    """Hold still for a while (steady state, recovery) with the probes and loads running."""

    timeline: Timeline
    phase: str
    seconds: float
    name: ClassVar[str] = "observe"
    changes_cluster: ClassVar[bool] = False

    def describe(self) -> str:
        return f"observe the {self.phase} for {self.seconds:g} s"

    def apply(self, context: Context) -> dict[str, Any]:
        self.timeline.record("phase", name=self.phase)
        time.sleep(self.seconds)
        return {}


@dataclass
class StartProbes(Action):
    """Create the ledger and start the write probe (cluster endpoint), a read probe per reader and
    on the reader endpoint, the topology probe (RDS API) and the surface probe (Aurora's SQL)."""

    timeline: Timeline
    settings: ProbeSettings
    run_id: str
    probes: ProbeSet | None = field(default=None, init=False)
    name: ClassVar[str] = "probes"

    def describe(self) -> str:
        return "create table gameday_ledger and start the probes"

    def apply(self, context: Context) -> dict[str, Any]:
        cut = context.cut
        with cut.dialect.connect(*cut.endpoint(), cut.credentials, connect_timeout=5, statement_timeout=30) as conn:
            cut.dialect.create_ledger(conn)
            offset, uncertainty = clock_offset(cut.dialect, conn)
        self.timeline.record("clock", offset_s=offset, uncertainty_s=uncertainty)
        probes = self.watchers(context)
        # The write probe is I/O-bound but shares the GIL with the other probes (and boto3's
        # parsing); a short switch interval keeps its blind spots after a failure to ~ms.
        sys.setswitchinterval(PROBE_SWITCH_INTERVAL_S)
        self.probes = ProbeSet(probes)
        self.probes.start()
        return {"probes": [p.name for p in probes]}

    def watchers(self, context: Context) -> list[Probe]:
        """The probes of one cluster: writes through its cluster endpoint, reads on every reader."""
        cut = context.cut
        host, port = cut.endpoint()
        reader_host, reader_port = cut.reader_endpoint()
        args = (self.timeline, self.settings, cut.dialect)
        probes: list[Probe] = [
            WriteProbe(*args, Target("cluster-endpoint", host, port), cut.credentials, self.run_id),
            ReadProbe(*args, Target("reader-endpoint", reader_host, reader_port), cut.credentials, self.run_id),
        ]
        for member in cut.members():
            if not member.is_writer:
                probes.append(ReadProbe(*args, Target(f"reader:{member.identifier}", member.address, member.port),
                                        cut.credentials, self.run_id))
        probes.append(TopologyProbe(self.timeline, self.settings, cut.cluster))
        probes.append(SurfaceProbe(self.timeline, self.settings, cut.dialect, Target("cluster-endpoint", host, port),
                                   cut.credentials))
        return probes

    def rollback(self, context: Context) -> str | None:
        """On a cluster the harness does not own, leave the ledger table but none of this run's rows."""
        if self.probes is None or not context.keeps_cluster:
            return None
        cut = context.cut
        with cut.dialect.connect(*cut.endpoint(), cut.credentials, connect_timeout=5, statement_timeout=60) as conn:
            for probe in self.probes.write_probes:
                cut.dialect.delete_ledger_rows(conn, probe.run_id)
        return "removed this run's ledger rows"


@dataclass
class StartWrapperProbe(Action):
    """A second write probe, through the AWS Advanced Python Wrapper (failover plugin).

    It runs in a child process; on the emulator, inside a private mount namespace whose
    /etc/hosts holds the cluster's Aurora-style names (nothing on the machine changes). Waits
    until its first write is acknowledged, so the steady state includes both drivers. Its rows
    are removed with the other probes' (it joins their `ProbeSet`).
    """

    timeline: Timeline
    settings: ProbeSettings
    probes: ProbeSet
    run_id: str
    directory: Path
    probe: WrapperWriteProbe | None = field(default=None, init=False)
    name: ClassVar[str] = "wrapper-probe"

    def describe(self) -> str:
        return "start a write probe through the AWS Advanced Python Wrapper"

    def apply(self, context: Context) -> dict[str, Any]:
        from harness.drivers import aws_wrapper
        from harness.drivers.names import namespace_command

        cut = context.cut
        host, port = cut.endpoint()
        command = [sys.executable, "-m", "harness.drivers.aws_wrapper"]
        pattern, overrides = None, {}
        if context.global_database is not None:  # plugin gdb_failover through the global writer endpoint
            from harness.global_probes import global_wrapper_target

            host, port, overrides, hosts = global_wrapper_target(context, self.directory)
        else:
            names, hosts = names_for_the_wrapper(context, self.directory)
            if names is not None:  # the emulator
                host, pattern = names.cluster_endpoint, names.instance_pattern
        if hosts is not None:  # the emulator: the names in a private /etc/hosts
            command = namespace_command(hosts, command)
        child = aws_wrapper.probe_settings(
            engine=cut.dialect.engine, host=host, port=port, user=cut.credentials.user,
            password=cut.credentials.password, database=cut.credentials.database, run_id=self.run_id,
            connect_timeout=self.settings.connect_timeout, statement_timeout=self.settings.statement_timeout,
            retry_pause=self.settings.retry_pause, write_pause=self.settings.write_pause, instance_pattern=pattern,
            cluster_id=f"{cut.identifier}-gameday")
        child["wrapper"].update(overrides)
        self.probe = WrapperWriteProbe(self.timeline, self.settings, command, child, self.run_id, self.directory,
                                       cwd=PROJECT_ROOT)
        self.probes.probes.append(self.probe)  # before it starts: stop() reaps it even if the start fails
        self.probe.start()
        self.probe.ready.wait(aws_wrapper.STARTUP_TIMEOUT_S)
        if self.probe.acknowledged == 0:
            why = self.probe.failure or f"no write acknowledged within {aws_wrapper.STARTUP_TIMEOUT_S:g} s"
            raise ScenarioError(f"the write probe through the AWS Advanced Python Wrapper did not start: {why}")
        return {"endpoint": f"{host}:{port}", "run_id": self.run_id}


@dataclass
class StartLoad(Action):
    """Locust users through the cluster and reader endpoints, their history joining the timeline.

    The load creates its orders table and places orders tagged with the run id; on a cluster the
    harness does not own, the rollback deletes them."""

    spec: LoadSpec
    distribution: Distribution
    timeline: Timeline
    run_id: str
    directory: Path
    global_database: bool = False  # the cluster under test is a global database's primary
    run: LoadRun | None = field(default=None, init=False)
    name: ClassVar[str] = "load"

    def describe(self) -> str:
        client = f"with the {self.spec.behaviour} client"
        if self.spec.driver == AWS_WRAPPER:
            client = ("through the AWS Advanced Python Wrapper (plugin gdb_failover, global writer endpoint)"
                      if self.global_database else "through the AWS Advanced Python Wrapper")
        return f"start {self.spec.users} users running the {self.spec.workload} workload {client}"

    def apply(self, context: Context) -> dict[str, Any]:
        cut = context.cut
        (host, port), (reader_host, reader_port) = context.writer_endpoint(), context.reader_endpoint()
        hosts_file, pattern, home_region, global_patterns = None, "", "", ""
        if self.spec.driver == AWS_WRAPPER and context.global_database is not None:  # plugin gdb_failover
            from harness.global_probes import global_wrapper_names

            target = global_wrapper_names(context, self.directory)
            host, reader_host, hosts_file = target.writer, target.reader, target.hosts
            home_region, global_patterns = target.home_region, target.patterns
        elif self.spec.driver == AWS_WRAPPER:
            names, hosts_file = names_for_the_wrapper(context, self.directory)
            if names is not None:  # the emulator: Aurora-style names in the Locust processes' own /etc/hosts
                host, reader_host, pattern = names.cluster_endpoint, names.reader_endpoint, names.instance_pattern
        if hosts_file is not None and self.distribution.remote_workers:
            raise ScenarioError("a load through the AWS Advanced Python Wrapper on the emulator runs its "
                                "workers on this machine only (the cluster's names exist only here)")
        settings = LoadSettings(cut.dialect.engine, host, port, reader_host, reader_port, cut.credentials.user,
                                cut.credentials.database, self.spec.behaviour, self.run_id, driver=self.spec.driver,
                                instance_pattern=pattern,
                                cluster_id=f"{cut.identifier}-gameday-load" if self.spec.driver == AWS_WRAPPER
                                else "", home_region=home_region, global_patterns=global_patterns)
        self.run = LoadRun(self.spec, settings, cut.credentials.password, self.directory, self.timeline,
                           self.distribution, hosts_file=hosts_file)
        self.run.start()
        where = (f"a master and {self.distribution.workers} local worker(s)" if self.distribution.distributed
                 else "one process")
        return {"load": self.spec.name, "users": self.spec.users, "where": where}

    def rollback(self, context: Context) -> str | None:
        if self.run is None or not context.keeps_cluster:
            return None
        cut = context.cut
        with cut.dialect.connect(*cut.endpoint(), cut.credentials, connect_timeout=5, statement_timeout=60) as conn:
            workload_dialect_for(cut.dialect.engine).delete_orders(conn, self.run_id)
        return f"deleted the orders the {self.spec.name} load placed"


def clock_offset(dialect: Any, conn: Any, samples: int = 5) -> tuple[float, float]:
    """The server's wall clock minus ours, and its uncertainty (half the round trip), from the
    quickest of a few round trips: restore points are on the server's clock, write times on ours."""
    best: tuple[float, float] | None = None
    for _ in range(samples):
        before = time.time()
        server = dialect.server_time(conn)
        after = time.time()
        measured = (server - (before + after) / 2, (after - before) / 2)
        if best is None or measured[1] < best[1]:
            best = measured
    assert best is not None
    return round(best[0], 6), round(best[1], 6)


def names_for_the_wrapper(context: Context, directory: Path) -> tuple[Any, Path | None]:
    """The cluster's Aurora-style names and a hosts file holding them, for processes that run the
    AWS Advanced Python Wrapper in a private mount namespace; (None, None) where real DNS has
    the names (AWS)."""
    from harness.drivers.names import namespace_problem

    names = context.environment.aurora_names(context.cut)
    if names is None:
        return None, None
    problem = namespace_problem()
    if problem:
        raise ScenarioError(f"the AWS Advanced Python Wrapper needs the cluster's names in a private "
                            f"/etc/hosts here: {problem}")
    directory.mkdir(parents=True, exist_ok=True)
    return names, names.write_hosts_file(directory / "hosts")
