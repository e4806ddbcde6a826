"""One scenario of a game day: the cluster, the probes, the faults, the evidence, the verdicts.

Steps call these methods and nothing else, so a scenario reads as Given (a cluster and a
steady state) → When (a fault) → Then (judgements over what the probes recorded).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from harness.environments import ClusterRequirement, ClusterUnderTest, Environment
from harness.dialects import workload_dialect_for
from harness.faults import Fault
from harness.load.runner import Distribution, LoadRun, LoadSpec
from harness.load.settings import LoadSettings
from harness.measure import (ApplicationLoad, measure_all, measure_load, measure_read_availability, measure_rto,
                             measure_visibility_lag, metric_value)
from harness.measure.common import NotMeasured
from harness.measure.fault_window import (LagDuringFault, fault_window, longest_write_gap, measure_commit_latency,
                                          measure_lag_during_fault)
from harness.drivers import AWS_WRAPPER, DRIVER_TITLES, PLAIN
from harness.probes import (ProbeSet, ProbeSettings, ReadProbe, SurfaceProbe, Target, TopologyProbe,
                            WrapperWriteProbe, WriteProbe, record_ledger)
from harness.targets import Target as DocumentedTarget
from harness.targets import load_targets
from harness.aurora import promotion_rank
from harness.timeline import Record, Timeline, read_timeline
from harness.verdicts import BREACHED, Verdict, judge, judge_fact, judge_target, write_verdict_file

log = logging.getLogger("harness.gameday")
PROBE_SWITCH_INTERVAL_S = 0.0005


class ScenarioError(RuntimeError):
    """The scenario cannot go on (a step's precondition does not hold); the message says why."""


class GameDayAborted(ScenarioError):
    """A stop condition held the fault back: there is nothing after the fault to judge."""


Judgement = TypeVar("Judgement", bound=Callable[..., Any])


def after_the_fault(method: Judgement) -> Judgement:
    """Then-methods judge what followed the fault; after an abort they end the scenario instead."""
    @functools.wraps(method)
    def judged(self: GameDay, *args: Any, **kwargs: Any) -> Any:
        if self.aborted is not None:
            raise GameDayAborted(self.aborted)
        return method(self, *args, **kwargs)
    return judged  # type: ignore[return-value]


@dataclass
class GameDay:
    """The state of one scenario while it runs."""

    environment: Environment
    scenario: str
    directory: Path
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    cut: ClusterUnderTest | None = None
    probes: ProbeSet | None = None
    faults: list[tuple[Fault, dict[str, Any]]] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    observation_finished: bool = False
    initial_writer: str = ""
    initial_readers: list[str] = field(default_factory=list)
    members_at_fault: list[Any] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    loads: list[LoadRun] = field(default_factory=list)
    error_rate_ceiling: float | None = None  # stop condition: the loads' steady-state error rate, 0..1
    aborted: str | None = None  # why a stop condition held the fault back

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.timeline = Timeline(self.directory / "timeline.jsonl")
        self._measurements: dict[str, Any] | None = None

    # --- Given --------------------------------------------------------------------------------------
    def provide_cluster(self, requirement: ClusterRequirement) -> ClusterUnderTest:
        self.cut = self.environment.provide(requirement, self.scenario)
        topology = self.cut.cluster.topology()
        self.initial_writer, self.initial_readers = topology["writer"], topology["readers"]
        self.timeline.record("note", text=f"cluster {self.cut.identifier} on {self.environment.name}")
        self.timeline.record("topology", **topology)
        return self.cut

    @property
    def cluster(self) -> ClusterUnderTest:
        if self.cut is None:
            raise ScenarioError("the scenario has no cluster yet: start it with a 'Given ... cluster' step")
        return self.cut

    @property
    def dry_run(self) -> bool:
        return self.environment.dry_run

    def plan(self, action: str) -> None:
        """Dry run: say what would happen instead of doing it."""
        self.planned.append(action)
        self.timeline.record("note", text=f"plan: {action}")

    def start_probes(self) -> None:
        """Write probe on the cluster endpoint, a read probe per reader and on the reader endpoint."""
        if self.dry_run:
            self.plan(f"create table gameday_ledger on {self.cluster.identifier} and start the probes")
            return
        cut = self.cluster
        with cut.dialect.connect(*cut.endpoint(), cut.credentials, connect_timeout=5, statement_timeout=30) as conn:
            cut.dialect.create_ledger(conn)
        host, port = cut.endpoint()
        reader_host, reader_port = cut.reader_endpoint()
        args = (self.timeline, self.settings, cut.dialect)
        probes = [
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
        # The write probe is I/O-bound but shares the GIL with the other probes (and boto3's
        # parsing); a short switch interval keeps its blind spots after a failure to ~ms.
        sys.setswitchinterval(PROBE_SWITCH_INTERVAL_S)
        self.probes = ProbeSet(probes).start()

    @property
    def wrapper_run_id(self) -> str:
        """The ledger run id of the AWS Advanced Python Wrapper's write probe."""
        return f"{self.run_id}-wrapper"

    def _names_for_the_wrapper(self, directory: Path) -> tuple[Any, Path | None]:
        """The cluster's Aurora-style names and a hosts file holding them, for processes that run
        the AWS Advanced Python Wrapper in a private mount namespace; (None, None) where real DNS
        has the names (AWS)."""
        from harness.drivers.names import namespace_problem

        names = self.environment.aurora_names(self.cluster)
        if names is None:
            return None, None
        problem = namespace_problem()
        if problem:
            raise ScenarioError(f"the AWS Advanced Python Wrapper needs the cluster's names in a private "
                                f"/etc/hosts here: {problem}")
        directory.mkdir(parents=True, exist_ok=True)
        return names, names.write_hosts_file(directory / "hosts")

    def start_wrapper_probe(self) -> None:
        """A second write probe, through the AWS Advanced Python Wrapper (failover plugin).

        It runs in a child process; on the emulator, inside a private mount namespace whose
        /etc/hosts holds the cluster's Aurora-style names (nothing on the machine changes). Waits
        until its first write is acknowledged, so the steady state includes both drivers.
        """
        from harness.drivers import aws_wrapper
        from harness.drivers.names import namespace_command

        if self.dry_run:
            self.plan(f"start a write probe through the AWS Advanced Python Wrapper on {self.cluster.identifier}")
            return
        if self.probes is None:
            raise ScenarioError("the wrapper's write probe joins the others: start them first with "
                                "'the probes are watching the cluster'")
        if any(isinstance(p, WrapperWriteProbe) for p in self.probes.probes):
            return
        cut = self.cluster
        host, port = cut.endpoint()
        directory = self.directory / "aws-wrapper"
        directory.mkdir(parents=True, exist_ok=True)
        names, hosts = self._names_for_the_wrapper(directory)
        command = [sys.executable, "-m", "harness.drivers.aws_wrapper"]
        pattern = None
        if names is not None and hosts is not None:  # the emulator
            command = namespace_command(hosts, command)
            host, pattern = names.cluster_endpoint, names.instance_pattern
        settings = aws_wrapper.probe_settings(
            engine=cut.dialect.engine, host=host, port=port, user=cut.credentials.user,
            password=cut.credentials.password, database=cut.credentials.database, run_id=self.wrapper_run_id,
            connect_timeout=self.settings.connect_timeout, statement_timeout=self.settings.statement_timeout,
            retry_pause=self.settings.retry_pause, write_pause=self.settings.write_pause, instance_pattern=pattern,
            cluster_id=f"{cut.identifier}-gameday")
        probe = WrapperWriteProbe(self.timeline, self.settings, command, settings, self.wrapper_run_id, directory,
                                  cwd=Path(__file__).resolve().parents[1])
        self.probes.probes.append(probe)  # before it starts: stop() reaps it even if the start fails
        probe.start()
        self.timeline.record("note", text=f"aws-wrapper write probe on {host}:{port} (run id {self.wrapper_run_id})")
        probe.ready.wait(aws_wrapper.STARTUP_TIMEOUT_S)
        if probe.acknowledged == 0:
            why = probe.failure or f"no write acknowledged within {aws_wrapper.STARTUP_TIMEOUT_S:g} s"
            raise ScenarioError(f"the write probe through the AWS Advanced Python Wrapper did not start: {why}")

    def start_load(self, spec: LoadSpec, distribution: Distribution) -> None:
        """Locust users through the cluster and reader endpoints, their history joining the timeline."""
        if self.dry_run:
            client = ("through the AWS Advanced Python Wrapper" if spec.driver == AWS_WRAPPER
                      else f"with the {spec.behaviour} client")
            self.plan(f"start {spec.users} users running the {spec.workload} workload {client} "
                      f"on {self.cluster.identifier}")
            return
        if any(run.spec.name == spec.name for run in self.loads):
            raise ScenarioError(f"a load {spec.name} is already running in this scenario")
        if distribution.remote_workers and self.loads:
            raise ScenarioError("workers on other machines serve one load at a time: give this scenario one load")
        cut = self.cluster
        (host, port), (reader_host, reader_port) = cut.endpoint(), cut.reader_endpoint()
        directory = self.directory / "load" / spec.name.replace("/", "-")
        hosts_file, pattern = None, ""
        if spec.driver == AWS_WRAPPER:
            names, hosts_file = self._names_for_the_wrapper(directory)
            if names is not None:  # the emulator: Aurora-style names in the Locust processes' own /etc/hosts
                if distribution.remote_workers:
                    raise ScenarioError("a load through the AWS Advanced Python Wrapper on the emulator runs its "
                                        "workers on this machine only (the cluster's names exist only here)")
                host, reader_host, pattern = names.cluster_endpoint, names.reader_endpoint, names.instance_pattern
        settings = LoadSettings(cut.dialect.engine, host, port, reader_host, reader_port, cut.credentials.user,
                                cut.credentials.database, spec.behaviour, self.run_id, driver=spec.driver,
                                instance_pattern=pattern,
                                cluster_id=f"{cut.identifier}-gameday-load" if spec.driver == AWS_WRAPPER else "")
        run = LoadRun(spec, settings, cut.credentials.password, directory, self.timeline, distribution,
                      hosts_file=hosts_file)
        self.loads.append(run)  # before it starts: close() reaps it even if the start fails
        run.start()
        where = f"a master and {distribution.workers} local worker(s)" if distribution.distributed else "one process"
        self.timeline.record("note", text=f"load {spec.name}: {spec.users} users on {where}")

    def set_stop_condition(self, error_rate_ceiling: float) -> None:
        """Before the fault, every load's steady-state error rate must be at most the ceiling."""
        self.error_rate_ceiling = error_rate_ceiling
        condition = f"hold the fault back if the load's steady-state error rate exceeds {error_rate_ceiling:.2%}"
        if self.dry_run:
            self.plan(condition)
            return
        if not self.loads:
            raise ScenarioError("a stop condition on the load's error rate needs a load: start one first")
        self.timeline.record("note", text=f"stop condition: {condition}")

    def hold(self, phase: str, seconds: float) -> None:
        """Observe for a while (steady state, or recovery) with the probes running."""
        self.timeline.record("phase", name=phase)
        if self.dry_run:
            self.plan(f"observe the {phase} for {seconds:g} s")
            return
        time.sleep(seconds)

    def inject_condition(self, fault: Fault) -> None:
        """A standing condition set up before the steady state (not the fault under test)."""
        if self.dry_run:
            self.plan(f"set up {fault.describe()}")
            return
        detail = fault.inject(self.cluster, self.environment)
        self.timeline.record("note", text=f"condition: {fault.describe()}", detail=detail)

    def storage_status(self) -> dict[str, str]:
        controls = self.environment.controls()
        if controls is None:
            raise ScenarioError(f"storage nodes can only be observed on the emulator, not on {self.environment.name}")
        return controls.storage_status(cluster=self.cluster.identifier)

    def storage_nodes(self) -> list[str]:
        return list(self.storage_status())

    def stopped_storage_nodes(self) -> list[str]:
        return [node for node, state in self.storage_status().items() if state == "stopped"]

    def current_writer(self) -> str:
        return self.cluster.cluster.topology()["writer"]

    # --- When ---------------------------------------------------------------------------------------
    def inject(self, fault: Fault) -> dict[str, Any]:
        if self.dry_run:
            self.plan(f"inject {fault.describe()} on {self.cluster.identifier}")
            return {}
        if not self._steady_state_healthy(fault):
            return {}
        self.members_at_fault = self.cluster.members()
        self.timeline.record("phase", name="fault")
        start = time.monotonic()
        detail = fault.inject(self.cluster, self.environment)
        self.timeline.record("fault", name=fault.name, description=fault.describe(), start=start,
                             end=time.monotonic(), detail=detail)
        self.faults.append((fault, detail))
        return detail

    def _steady_state_healthy(self, fault: Fault) -> bool:
        """The stop condition: False (and the scenario aborted) when a load's steady state erred too much.

        Judged on the timeline like everything else, once it holds every request made so far.
        """
        if self.error_rate_ceiling is None:
            return True
        now = time.time()
        for run in self.loads:
            if not run.wait_reported(now):
                log.warning("the %s load's history did not catch up before the stop condition", run.spec.name)
        results = measure_load(read_timeline(self.timeline.path))
        for run in self.loads:
            result = None if isinstance(results, NotMeasured) else results.get(run.spec.name)
            rate = result.steady_state_error_rate if result is not None else None
            if rate is not None and rate <= self.error_rate_ceiling:
                continue
            seen = ("made no request, so its error rate is unknown" if rate is None
                    else f"erred on {rate:.1%} of requests")
            self.aborted = (f"the stop condition held back {fault.describe()}: in the steady state the {run.spec.name} "
                            f"load {seen}, above the ceiling of {self.error_rate_ceiling:.2%}")
            self.timeline.record("abort", reason=self.aborted, load=run.spec.name, error_rate=rate,
                                 ceiling=self.error_rate_ceiling, fault=fault.name)
            return False
        return True

    def await_recovery(self, timeout: float, acknowledged_after: int = 20) -> None:
        """Wait until the cluster has settled and the write probe commits again.

        Waiting is on state (the API and the probe's own successes), never a fixed sleep.
        """
        if self.dry_run or self.aborted is not None:
            return
        cut = self.cluster
        cut.cluster.wait_settled(timeout=timeout)
        for probe in self.probes.write_probes if self.probes else []:
            target = probe.acknowledged + acknowledged_after
            cut.cluster.wait_until(lambda: probe.acknowledged >= target, timeout,  # noqa: B023 - called here
                                   f"writes resuming ({probe.driver})")

    # --- Then ---------------------------------------------------------------------------------------
    def finish_observation(self, recovery_seconds: float = 2.0) -> None:
        """Stop the probes and loads after a recovery window and take the final ledger read."""
        if self.observation_finished:
            return
        self.observation_finished = True
        if self.probes is not None or self.loads:
            self.hold("recovery", recovery_seconds)
        self._stop_loads()
        if self.probes is not None:
            self.probes.stop()
            cut = self.cluster
            host, port = cut.endpoint()
            for probe in self.probes.write_probes:
                record_ledger(self.timeline, cut.dialect, Target("cluster-endpoint", host, port), cut.credentials,
                              probe.run_id, driver=probe.driver)

    def measurements(self) -> dict[str, Any]:
        if self._measurements is None:
            self.finish_observation()
            self._measurements = measure_all(read_timeline(self.timeline.path))
        return self._measurements

    def target(self, target_id: str) -> DocumentedTarget:
        targets = load_targets()
        if target_id not in targets:
            raise ScenarioError(f"no documented target {target_id!r}; see `gameday targets`")
        return targets[target_id]

    def _add(self, verdict: Verdict) -> Verdict:
        self.verdicts.append(verdict)
        self.timeline.record("note", text=f"verdict: {verdict.explanation} -> {verdict.status}")
        return verdict

    @after_the_fault
    def judge_fact(self, check: str, explanation: str, holds: bool) -> Verdict:
        return self._add(judge_fact(check, holds, explanation))

    @after_the_fault
    def judge_promotion_by_tier(self) -> Verdict:
        """The new writer is a reader Aurora would pick: the best promotion tier, then the largest."""
        readers = [m for m in self.members_at_fault if not m.is_writer]
        if not readers:
            raise ScenarioError("no reader was known when the fault was injected")
        rank = {m.identifier: promotion_rank(m.promotion_tier, m.instance_class) for m in readers}
        best = min(rank.values())
        eligible = sorted(name for name, key in rank.items() if key == best)
        actual = self.current_writer()
        tiers = ", ".join(f"{m.identifier} tier {m.promotion_tier}" for m in readers)
        return self.judge_fact("promoted reader", f"{actual} became the writer; by promotion tier ({tiers}) "
                                                  f"Aurora picks {' or '.join(eligible)}", actual in eligible)

    def _records_since_last_fault(self) -> list[Record]:
        """The timeline with only the last fault kept, so recovery is timed from that fault."""
        records = read_timeline(self.timeline.path)
        faults = [r for r in records if r["kind"] == "fault"]
        return [r for r in records if r["kind"] != "fault" or r is faults[-1]] if faults else records

    def drivers(self) -> list[str]:
        """The drivers whose write probes ran, the plain driver first."""
        return [probe.driver for probe in self.probes.write_probes] if self.probes else []

    @after_the_fault
    def judge_recovery(self, check: str, limit: float, target: DocumentedTarget | None = None,
                       driver: str = PLAIN) -> Verdict:
        self.finish_observation()
        if driver not in self.drivers():
            raise ScenarioError(f"no write probe ran through the {DRIVER_TITLES[driver]} in this scenario")
        result = measure_rto(self._records_since_last_fault(), driver=driver)
        value = None if isinstance(result, NotMeasured) else result.rto_s
        reason = result.reason if isinstance(result, NotMeasured) else (
            None if result.recovered else "writes did not recover before the observation ended")
        if target is not None:
            return self._add(judge_target(target, value, check=check, reason=reason))
        return self._add(judge("rto_s", value, limit, "<=", "s", check=check, reason=reason))

    @after_the_fault
    def judge_uninterrupted_writes(self) -> Verdict:
        self.finish_observation()
        result = measure_rto(self._records_since_last_fault())
        value = None if isinstance(result, NotMeasured) else result.outage_s
        return self._add(judge("outage_s", value, 0, "<=", "s", check="writes not interrupted",
                               reason=getattr(result, "reason", "writes did not recover")))

    @after_the_fault
    def judge_data_loss(self, target: DocumentedTarget) -> Verdict:
        """One verdict per driver that wrote (the plain driver's check keeps its name)."""
        measurements = self.measurements()
        value = metric_value(measurements, "lost_count")
        verdict = self._add(judge_target(target, value, check="data loss (RPO)",
                                         reason=measurements["data_loss"].get("reason")))
        for driver in self.drivers():
            if driver == PLAIN:
                continue
            loss = measurements.get("by_driver", {}).get("drivers", {}).get(driver, {}).get("data_loss", {})
            self._add(judge_target(target, loss.get("lost_count"), check=f"data loss (RPO), {DRIVER_TITLES[driver]}",
                                   reason=loss.get("reason")))
        return verdict

    @after_the_fault
    def judge_driver_comparison(self) -> Verdict:
        """Every driver's write probe saw the writes come back (its RTO was measured) and every
        driver's load was measured; the verdict says how they compare."""
        by_driver = self.measurements().get("by_driver", {}).get("drivers", {})
        if len(by_driver) < 2:
            raise ScenarioError("comparing drivers needs a write probe or a load through the AWS Advanced Python "
                                "Wrapper too")
        parts, holds = [], True
        for driver, seen in by_driver.items():
            said = []
            if driver in self.drivers():
                value = seen["rto"].get("rto_s")
                holds = holds and value is not None
                said.append("RTO not measured" if value is None
                            else f"RTO {value:.3f} s (outage {seen['rto'].get('outage_s'):.3f} s)")
            for name, load in seen["loads"].items():
                failed = load["failed_requests"]
                holds = holds and failed is not None
                said.append(f"load {name}: {failed} failed requests over {load['error_window_s']:.3f} s" if failed
                            else f"load {name}: no failed request" if failed == 0 else f"load {name}: not measured")
            parts.append(f"{DRIVER_TITLES[driver]}: {', '.join(said)}")
        return self._add(judge_fact("RTO by driver", holds, "; ".join(parts)))

    @after_the_fault
    def judge_lag_after_recovery(self, target: DocumentedTarget) -> Verdict:
        """Visibility lag of the writes acknowledged once the cluster had recovered."""
        self.finish_observation()
        records = read_timeline(self.timeline.path)
        phases = [r for r in records if r["kind"] == "phase" and r["name"] == "recovery"]
        since = phases[-1]["m"] if phases else 0.0
        window = [r for r in records if r["kind"] not in ("write", "read") or r["start"] >= since]
        lag = measure_visibility_lag(window)
        values = [] if isinstance(lag, NotMeasured) else [
            probe.lag_p99_s for name, probe in lag.items() if name.startswith("reader:")]
        value = None if not values or None in values else max(values)
        return self._add(judge_target(target, value, check="replica lag",
                                      reason="no reader saw the writes acknowledged after recovery"))

    @after_the_fault
    def judge_reads_available(self) -> Verdict:
        """Every reader answered every read since the first fault (or since the start)."""
        records = read_timeline(self.timeline.path)
        availability = measure_read_availability(records)
        values = [] if isinstance(availability, NotMeasured) else [
            probe.availability for name, probe in availability.items() if name.startswith("reader:")]
        value = None if not values else min(values)
        return self._add(judge("availability", value, 1.0, ">=", "", check="read availability",
                               reason="no read probe on a reader"))

    @after_the_fault
    def judge_writes_halted(self, observe_seconds: float, grace: float = 0.5) -> Verdict:
        """No write was acknowledged while the fault held (after a short grace for in-flight ones)."""
        fault_end = [r for r in read_timeline(self.timeline.path) if r["kind"] == "fault"][-1]["end"]
        self.hold("fault-held", observe_seconds)
        window_end = time.monotonic()
        acknowledged = [r for r in read_timeline(self.timeline.path) if r["kind"] == "write"
                        and r["outcome"] == "acknowledged" and fault_end + grace <= r["end"] <= window_end]
        return self._add(judge("acknowledged_while_halted", len(acknowledged), 0, "<=", "writes",
                               check="writes halted"))

    # --- Then, for timed faults (Aurora's fault-injection queries) ---------------------------------------
    @after_the_fault
    def judge_commit_latency_band(self, low_ms: float, high_ms: float) -> Verdict:
        """The median commit latency inside the fault's interval lies in [low, high] ms."""
        self.finish_observation()
        result = measure_commit_latency(read_timeline(self.timeline.path))
        if isinstance(result, NotMeasured):
            return self._add(judge("during_p50_ms", None, high_ms, "<=", "ms", check="commit latency during the fault",
                                   reason=result.reason))
        holds = result.during_p50_ms is not None and low_ms <= result.during_p50_ms <= high_ms
        return self._add(judge_fact(
            "commit latency during the fault", holds,
            f"median commit latency {result.during_p50_ms:g} ms during the fault (p95 {result.during_p95_ms:g} ms, "
            f"{result.samples_during} commits; {_ms(result.before_p50_ms)} before, {_ms(result.after_p50_ms)} after), "
            f"expected between {low_ms:g} and {high_ms:g} ms"))

    @after_the_fault
    def judge_commit_latency_after(self, limit_ms: float) -> Verdict:
        """Once the interval is over (and queued commits drained) the median commit is fast again."""
        self.finish_observation()
        result = measure_commit_latency(read_timeline(self.timeline.path))
        value = None if isinstance(result, NotMeasured) else result.after_p50_ms
        reason = result.reason if isinstance(result, NotMeasured) else "no commit after the fault's interval"
        return self._add(judge("after_p50_ms", value, limit_ms, "<=", "ms", check="commit latency after the fault",
                               reason=reason))

    def _lag_during_fault(self, reader: str) -> LagDuringFault | NotMeasured:
        self.finish_observation()
        results = measure_lag_during_fault(read_timeline(self.timeline.path))
        if isinstance(results, NotMeasured):
            return results
        probe = f"reader:{reader}"
        return results.get(probe) or NotMeasured(f"no read probe watched {reader}")

    @after_the_fault
    def judge_lag_peak(self, reader: str, at_least_s: float) -> Verdict:
        """The fault really held the reader back: its lag reached `at_least_s`."""
        result = self._lag_during_fault(reader)
        value = None if isinstance(result, NotMeasured) else result.peak_lag_s
        reason = result.reason if isinstance(result, NotMeasured) else f"{reader} never showed the writes of the fault"
        return self._add(judge("peak_lag_s", value, at_least_s, ">=", "s", check=f"lag of {reader} during the fault",
                               reason=reason))

    @after_the_fault
    def judge_catch_up(self, reader: str, within_s: float) -> Verdict:
        """After the interval the reader showed every write acknowledged during it, in time."""
        result = self._lag_during_fault(reader)
        value = None if isinstance(result, NotMeasured) else result.catch_up_s
        reason = result.reason if isinstance(result, NotMeasured) else f"{reader} did not catch up before the end"
        return self._add(judge("catch_up_s", value, within_s, "<=", "s", check=f"{reader} catches up",
                               reason=reason))

    @after_the_fault
    def judge_writes_stalled(self, fraction: float = 0.8) -> Verdict:
        """Writes stopped for most of the fault's interval (the quorum was lost, as intended)."""
        self.finish_observation()
        records = self._records_since_last_fault()
        window, gap = fault_window(records), longest_write_gap(records)
        if isinstance(window, NotMeasured) or isinstance(gap, NotMeasured):
            reason = window.reason if isinstance(window, NotMeasured) else gap.reason
            return self._add(judge("longest_write_gap_s", None, 0, ">=", "s", check="writes stalled", reason=reason))
        limit = round(fraction * (window.end - window.start), 3)
        return self._add(judge("longest_write_gap_s", gap, limit, ">=", "s", check="writes stalled"))

    # --- Then, for the load -----------------------------------------------------------------------------
    def load_results(self, behaviour: str | None) -> list[ApplicationLoad]:
        """What each load (or each using the `behaviour` client) saw, once the observation is over."""
        runs = [run for run in self.loads if behaviour in (None, run.spec.client)]
        if not runs:
            client = f" with the {behaviour} client" if behaviour else ""
            raise ScenarioError(f"no load{client} ran in this scenario: start one with 'Given a load of ...'")
        self.finish_observation()
        results = measure_load(read_timeline(self.timeline.path))
        if isinstance(results, NotMeasured):
            raise ScenarioError(f"the loads left nothing on the timeline: {results.reason}")
        return [results[run.spec.name] for run in runs if run.spec.name in results]

    def _judge_loads(self, behaviour: str | None, metric: str, limit: float, unit: str, check: str,
                     value: Callable[[ApplicationLoad], Any], reason: Callable[[ApplicationLoad], str | None]
                     ) -> list[Verdict]:
        """One verdict per load, its explanation naming the load."""
        verdicts = []
        for result in self.load_results(behaviour):
            verdict = judge(metric, value(result), limit, "<=", unit, check=check, reason=reason(result))
            named = dataclasses.replace(verdict, explanation=f"{result.load}: {verdict.explanation}")
            verdicts.append(self._add(named))
        return verdicts

    @after_the_fault
    def judge_application_errors(self, limit: float, behaviour: str | None = None) -> list[Verdict]:
        """Each load saw failed requests for at most `limit` seconds after the fault."""
        return self._judge_loads(behaviour, "error_window_s", limit, "s", "application errors",
                                 lambda r: r.error_window_s, lambda r: "no fault was injected")

    @after_the_fault
    def judge_no_application_errors(self, behaviour: str | None = None) -> list[Verdict]:
        """No request of the load failed after the fault."""
        return self._judge_loads(behaviour, "failed_requests", 0, "requests", "application errors",
                                 lambda r: r.failed_requests, lambda r: "no fault was injected")

    @after_the_fault
    def judge_latency_recovery(self, limit: float, behaviour: str | None = None) -> list[Verdict]:
        """Each load's p95 latency was back at its steady-state baseline within `limit` seconds of the fault."""
        return self._judge_loads(behaviour, "latency_recovery_s", limit, "s", "latency back to baseline",
                                 lambda r: r.latency_recovery_s, lambda r: r.latency_reason)

    def judge_stopped_before_the_fault(self) -> Verdict:
        """The stop condition held the fault back: no fault record, and the writer never changed."""
        faults = [r for r in read_timeline(self.timeline.path) if r["kind"] == "fault"]
        writer = self.current_writer()
        holds = self.aborted is not None and not faults and writer == self.initial_writer
        said = self.aborted or "the stop condition let the fault through"
        return self._add(judge_fact("stop condition", holds, f"{said}; faults injected: {len(faults)}; the writer "
                                                             f"is {writer} (was {self.initial_writer})"))

    def breached(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == BREACHED]

    # --- the end --------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop probes and loads, write verdict.json, release the cluster; safe to call after a failure."""
        if self.probes is not None and not self.observation_finished:
            self.probes.stop()
        self._stop_loads()
        measurements = self._measurements
        if measurements is None and (self.probes is not None or self.loads):
            measurements = measure_all(read_timeline(self.timeline.path))
        if not self.dry_run:
            write_verdict_file(self.directory / "verdict.json", self.scenario, self.verdicts, measurements or {},
                               aborted=self.aborted)
        self.timeline.close()
        if self.cut is not None and not self.cut.created and (self.probes is not None or self.loads):
            self._remove_ledger_rows()
        if self.cut is not None:
            try:
                self.environment.release(self.cut)
            except Exception:
                log.exception("releasing %s failed", self.cut.identifier)

    def _stop_loads(self) -> None:
        for run in self.loads:
            if run.exit_codes:
                continue  # stopped already
            try:
                run.stop()
            except Exception:
                log.exception("stopping the %s load failed", run.spec.name)
            failed = {role: code for role, code in run.exit_codes.items() if code != 0}
            if failed:
                self.timeline.record("note", text=f"load {run.spec.name}: Locust exited with {failed}")

    def _remove_ledger_rows(self) -> None:
        """On a cluster the harness did not create, leave nothing behind but empty ledger and orders tables."""
        cut = self.cluster
        try:
            with cut.dialect.connect(*cut.endpoint(), cut.credentials, connect_timeout=5,
                                     statement_timeout=60) as conn:
                if self.probes is not None:
                    for probe in self.probes.write_probes:
                        cut.dialect.delete_ledger_rows(conn, probe.run_id)
                if self.loads:
                    workload_dialect_for(cut.dialect.engine).delete_orders(conn, self.run_id)
        except Exception:
            log.exception("could not remove this run's ledger rows and orders from %s", cut.identifier)

    def events(self) -> list[dict[str, Any]]:
        return [r for r in read_timeline(self.timeline.path) if r["kind"] == "event"]

    def summary(self) -> str:
        return json.dumps({"scenario": self.scenario, "cluster": self.cut.identifier if self.cut else None,
                           "verdicts": [v.status for v in self.verdicts]})


def _ms(value: float | None) -> str:
    return "no commit" if value is None else f"{value:g} ms"
