"""One scenario of a game day: the cluster, what it does to it, what it saw, the verdicts.

Steps call these methods and nothing else, so a scenario reads as Given (a cluster and a
steady state) → When (a fault) → Then (judgements over what the probes recorded).

- Every change to the cluster (a fault, a promotion tier, the probes' ledger, a load) is an
  `Action` applied through `act()`: the one place that decides dry run, and the record of what
  `close()` rolls back, newest first.
- Every verdict comes from a pure judgement (`harness.judgements`) run by `judge()` over the
  timeline and the fault picked by one rule (`harness.measure.faults`: the last one injected);
  `verdict.json` records each call (`harness.judgements.replay`), so it can be recomputed.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.actions import Action, Context
from harness.environments import (ENGINE_TITLES, PRIMARY, ClusterRequirement, ClusterUnderTest, Environment,
                                  GlobalUnderTest)
from harness.errors import GameDayAborted, ScenarioError
from harness.judgements import Evidence
from harness.judgements.replay import judgement_call
from harness.load.runner import Distribution, LoadRun, LoadSpec
from harness.measure import measure_all, measure_load
from harness.measure.common import NotMeasured
from harness.measure.load import LATENCY_WINDOW_S
from harness.observation import Observe, StartLoad, StartProbes, StartWrapperProbe
from harness.probes import ProbeSet, ProbeSettings, Target, record_ledger
from harness.targets import Target as DocumentedTarget
from harness.targets import load_targets
from harness.timeline import Timeline, read_timeline
from harness.verdicts import BREACHED, Verdict, write_verdict_file

__all__ = ["GameDay", "GameDayAborted", "RollbackFailed", "ScenarioError"]

log = logging.getLogger("harness.gameday")


class RollbackFailed(RuntimeError):
    """A change the game day made could not be put back: the cluster is not as it was found."""


@dataclass
class GameDay:
    """The state of one scenario while it runs."""

    environment: Environment
    scenario: str
    directory: Path
    engine: str = "aurora-postgresql"
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    cut: ClusterUnderTest | None = None
    global_cut: GlobalUnderTest | None = None  # a global game day: `cut` is its primary Region's cluster
    probes: ProbeSet | None = None
    loads: list[LoadRun] = field(default_factory=list)
    load_specs: list[LoadSpec] = field(default_factory=list)
    requested: list[Action] = field(default_factory=list)  # every action asked for, applied or planned
    applied: list[Action] = field(default_factory=list)  # to roll back, newest last
    planned: list[str] = field(default_factory=list)  # what the scenario did, or would do on a dry run
    faults: list[Action] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    provenance: list[dict[str, Any]] = field(default_factory=list)  # per verdict: the judge() call that made it
    observation_finished: bool = False
    initial_writer: str = ""
    initial_readers: list[str] = field(default_factory=list)
    members_at_fault: list[Any] = field(default_factory=list)
    error_rate_ceiling: float | None = None  # stop condition: the loads' steady-state error rate, 0..1
    aborted: str | None = None  # why a stop condition held the fault back

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.timeline = Timeline(self.directory / "timeline.jsonl")
        self._measurements: dict[str, Any] | None = None

    # --- Given --------------------------------------------------------------------------------------
    def provide_cluster(self, readers: int, backtrack_window_s: int = 0, blue_green: bool = False) -> ClusterUnderTest:
        """A cluster of this scenario's engine with a writer and `readers` readers (and Backtrack on,
        or ready to be a Blue/Green source)."""
        self.cut = self.environment.provide(ClusterRequirement(engine=self.engine, readers=readers,
                                                               backtrack_window_s=backtrack_window_s,
                                                               blue_green=blue_green), self.scenario)
        topology = self.cut.cluster.topology()
        self.initial_writer, self.initial_readers = topology["writer"], topology["readers"]
        self.timeline.record("note", text=f"cluster {self.cut.identifier} ({ENGINE_TITLES[self.engine]}) on "
                                          f"{self.environment.name}")
        self.timeline.record("topology", **topology)
        return self.cut

    def provide_global(self, readers: int, secondary_instances: int) -> GlobalUnderTest:
        """A global database of this scenario's engine: a primary cluster with a writer and `readers`
        readers, and a secondary Region's cluster with `secondary_instances` instances."""
        from harness.global_probes import record_global

        self.global_cut = self.environment.provide_global(
            ClusterRequirement(engine=self.engine, readers=readers, secondary_instances=secondary_instances),
            self.scenario)
        self.cut = self.global_cut.roles[PRIMARY]
        topology = self.cut.cluster.topology()
        self.initial_writer, self.initial_readers = topology["writer"], topology["readers"]
        gut = self.global_cut
        self.timeline.record("note", text=f"global database {gut.identifier} ({ENGINE_TITLES[self.engine]}) on "
                                          f"{self.environment.name}: " + ", ".join(
                                              f"{role} {cut.identifier} in {gut.regions[role]}"
                                              for role, cut in gut.roles.items()))
        self.timeline.record("global-database", identifier=gut.identifier, regions=gut.regions,
                             clusters={role: cut.identifier for role, cut in gut.roles.items()},
                             instances=gut.instances())
        self.timeline.record("topology", **topology)
        record_global(self.timeline, gut.database)
        return gut

    @property
    def global_database(self) -> GlobalUnderTest:
        if self.global_cut is None:
            raise ScenarioError("the scenario has no global database: start it with 'Given an Aurora global "
                                "database ...'")
        return self.global_cut

    @property
    def cluster(self) -> ClusterUnderTest:
        if self.cut is None:
            raise ScenarioError("the scenario has no cluster yet: start it with a 'Given ... cluster' step")
        return self.cut

    @property
    def dry_run(self) -> bool:
        return self.environment.dry_run

    def act(self, action: Action, *, fault: bool = False) -> dict[str, Any] | None:
        """Apply `action` to the cluster: the only place that decides dry run.

        On a dry run the action is planned, never applied. A fault (`fault=True`) is first held to
        the stop condition, then recorded as the fault the scenario's figures are timed from.
        Every applied action is rolled back by `close()`. Returns the action's details, or None
        when it was only planned or held back.
        """
        cut = self.cluster
        sentence = f"{'inject ' if fault else ''}{action.describe()} on {cut.identifier}"
        self.planned.append(sentence)
        self.requested.append(action)
        if self.dry_run:
            self.timeline.record("note", text=f"plan: {sentence}")
            return None
        if fault and not self._steady_state_healthy(action):
            return None
        if fault:
            self.members_at_fault = cut.members()
            self.timeline.record("phase", name="fault")
        start = time.monotonic()
        self.applied.append(action)  # before apply: a half-done change is rolled back too
        detail = action.apply(Context(cut, self.environment, self.global_cut))
        if fault:
            self.timeline.record("fault", name=action.name, description=action.describe(), start=start,
                                 end=time.monotonic(), detail=detail)
            self.faults.append(action)
        elif action.changes_cluster:
            self.timeline.record("action", name=action.name, description=action.describe(), start=start,
                                 end=time.monotonic(), detail=detail)
        return detail

    def inject(self, fault: Action) -> dict[str, Any] | None:
        """The fault under test."""
        return self.act(fault, fault=True)

    def start_probes(self) -> None:
        from harness.global_probes import StartGlobalProbes

        kind = StartGlobalProbes if self.global_cut is not None else StartProbes
        action = kind(self.timeline, self.settings, self.run_id)
        try:
            self.act(action)
        finally:  # kept even when the start failed half-way, so close() stops what did start
            self.probes = action.probes

    @property
    def wrapper_run_id(self) -> str:
        """The ledger run id of the AWS Advanced Python Wrapper's write probe."""
        return f"{self.run_id}-wrapper"

    def start_wrapper_probe(self) -> None:
        if not any(isinstance(action, StartProbes) for action in self.requested):
            raise ScenarioError("the wrapper's write probe joins the others: start them first with "
                                "'the probes are watching the cluster'")
        self.act(StartWrapperProbe(self.timeline, self.settings, self.probes or ProbeSet([]), self.wrapper_run_id,
                                   self.directory / "aws-wrapper"))

    def start_load(self, spec: LoadSpec, distribution: Distribution) -> None:
        if any(known.name == spec.name for known in self.load_specs):
            raise ScenarioError(f"a load {spec.name} is already running in this scenario")
        if distribution.remote_workers and self.load_specs:
            raise ScenarioError("workers on other machines serve one load at a time: give this scenario one load")
        self.load_specs.append(spec)
        action = StartLoad(spec, distribution, self.timeline, self.run_id,
                           self.directory / "load" / spec.name.replace("/", "-"),
                           global_database=self.global_cut is not None)
        try:
            self.act(action)
        finally:  # kept even when the start failed half-way, so close() reaps what did start
            if action.run is not None:
                self.loads.append(action.run)

    def set_stop_condition(self, error_rate_ceiling: float) -> None:
        """Before the fault, every load's steady-state error rate must be at most the ceiling."""
        if not self.load_specs:
            raise ScenarioError("a stop condition on the load's error rate needs a load: start one first")
        self.error_rate_ceiling = error_rate_ceiling
        condition = f"hold the fault back if the load's steady-state error rate exceeds {error_rate_ceiling:.2%}"
        self.planned.append(condition)
        self.timeline.record("note", text=f"stop condition: {condition}")

    def hold(self, phase: str, seconds: float) -> None:
        """Observe for a while (steady state, recovery) with the probes running."""
        self.act(Observe(self.timeline, phase, seconds))

    def recorded(self, kind: str) -> list[dict[str, Any]]:
        """The timeline's records of one kind so far (a bad change, a snapshot, the clock offset)."""
        return [r for r in read_timeline(self.timeline.path) if r["kind"] == kind]

    def current_writer(self) -> str:
        return self.cluster.cluster.topology()["writer"] or "(no writer)"

    def storage_status(self) -> dict[str, str]:
        controls = self.environment.controls()
        if controls is None:
            raise ScenarioError(f"storage nodes can only be observed on the emulator, not on {self.environment.name}")
        return dict(controls.storage_status(cluster=self.cluster.identifier))

    def storage_nodes(self) -> list[str]:
        return list(self.storage_status())

    def stopped_storage_nodes(self) -> list[str]:
        return [node for node, state in self.storage_status().items() if state == "stopped"]

    # --- When ---------------------------------------------------------------------------------------
    def _steady_state_healthy(self, fault: Action) -> bool:
        """The stop condition: False (and the scenario aborted) when a load's steady state erred too much.

        Judged on the timeline like everything else, once it holds every request made so far.
        """
        if self.error_rate_ceiling is None:
            return True
        now = time.time()
        for run in self.loads:
            if not run.wait_reported(now):
                log.warning("the %s load's history did not catch up before the stop condition", run.spec.name)
        results = measure_load(read_timeline(self.timeline.path), None)
        for spec in self.load_specs:
            result = None if isinstance(results, NotMeasured) else results.get(spec.name)
            rate = result.steady_state_error_rate if result is not None else None
            if rate is not None and rate <= self.error_rate_ceiling:
                continue
            seen = ("made no request, so its error rate is unknown" if rate is None
                    else f"erred on {rate:.1%} of requests")
            self.aborted = (f"the stop condition held back {fault.describe()}: in the steady state the {spec.name} "
                            f"load {seen}, above the ceiling of {self.error_rate_ceiling:.2%}")
            self.timeline.record("abort", reason=self.aborted, load=spec.name, error_rate=rate,
                                 ceiling=self.error_rate_ceiling, fault=fault.name)
            return False
        return True

    def await_recovery(self, timeout: float, acknowledged_after: int = 20) -> None:
        """Wait until the cluster has settled and every write probe commits again.

        Waiting is on state (the API and the probes' own successes), never a fixed sleep; it only
        reads, so on a dry run (nothing injected, no probe) it returns at once.
        """
        if self.aborted is not None:
            return
        cut = self.cluster
        cut.cluster.wait_settled(timeout=timeout)
        for probe in self.probes.write_probes if self.probes else []:
            target = probe.acknowledged + acknowledged_after
            cut.cluster.wait_until(lambda: probe.acknowledged >= target, timeout,  # noqa: B023 - called here
                                   f"writes resuming ({probe.driver})")

    def await_global_writer(self, region: str, timeout: float, acknowledged_after: int = 20) -> None:
        """Wait until the global database's writer is in `region` (no switchover or failover under
        way) and every write probe commits again through the global writer endpoint, on an instance
        of `region` (an old primary may acknowledge writes until it is fenced, or while the endpoint's
        DNS is stale: those are not writes coming back). Only reads: on a dry run, or after a stop
        condition, it returns at once."""
        if self.aborted is not None or self.dry_run:
            return
        from harness.global_probes import record_global

        database = self.global_database.database
        database.wait_writer(region, timeout)
        record_global(self.timeline, database)
        instances = set(self.global_database.instances()[region])
        for probe in self.probes.write_probes if self.probes else []:
            database.wait_until(lambda: getattr(probe, "last_server", "") in instances or not hasattr(  # noqa: B023
                probe, "last_server"), timeout, f"a write acknowledged in {region} ({probe.driver})")
            target = probe.acknowledged + acknowledged_after
            database.wait_until(lambda: probe.acknowledged >= target, timeout,  # noqa: B023 - called here
                                f"writes resuming in {region} ({probe.driver})")

    def await_writes_refused(self, timeout: float, refused: int = 3) -> None:
        """Wait until every write probe has been refused a few times since now (the fault has bitten)."""
        if self.aborted is not None or self.dry_run:
            return
        for probe in self.probes.write_probes if self.probes else []:
            if not hasattr(probe, "refused"):
                continue
            target = probe.refused + refused
            self.cluster.cluster.wait_until(lambda: probe.refused >= target, timeout,  # noqa: B023 - called here
                                            f"writes refused ({probe.driver})")

    def await_commits_held(self, quiet_s: float, timeout: float) -> None:
        """Wait until no write probe has had a commit acknowledged for `quiet_s` (commits are held)."""
        if self.aborted is not None or self.dry_run:
            return
        probes = self.probes.write_probes if self.probes else []
        deadline = time.monotonic() + timeout
        seen, since = None, time.monotonic()
        while True:
            now_seen = tuple(p.acknowledged for p in probes)
            if now_seen != seen:
                seen, since = now_seen, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                self.timeline.record("note", text=f"commits held: none acknowledged for {quiet_s:g} s")
                return
            if time.monotonic() > deadline:
                raise ScenarioError(f"commits were still acknowledged {timeout:.0f} s on")
            time.sleep(0.1)

    def await_global_settled(self, timeout: float) -> dict[str, Any] | None:
        """Wait until no member is resyncing and no switchover or failover is under way, then record
        the global topology (the evidence a Then step judges the roles on)."""
        from harness.global_probes import record_global

        if self.aborted is not None or self.dry_run:
            return None
        database = self.global_database.database
        database.wait_until(database.settled, timeout, "every secondary connected")
        return record_global(self.timeline, database)

    # --- Then ---------------------------------------------------------------------------------------
    def finish_observation(self, recovery_seconds: float = 2.0) -> None:
        """Stop the probes and loads after a recovery window and take the final ledger read.

        With a load the window spans two latency windows at least: whether the p95 came back to
        its baseline is judged on what followed the recovery, and one short, noisy tail on a busy
        machine must not decide it."""
        if self.observation_finished:
            return
        self.observation_finished = True
        if self.loads:
            recovery_seconds = max(recovery_seconds, 2 * LATENCY_WINDOW_S)
        if self.probes is not None or self.loads:
            self.hold("recovery", recovery_seconds)
        self._stop_loads()
        if self.probes is not None:
            self.probes.stop()
            cut = self.cluster
            host, port = Context(cut, self.environment, self.global_cut).writer_endpoint()
            where = "global-writer-endpoint" if self.global_cut is not None else "cluster-endpoint"
            for probe in self.probes.write_probes:
                record_ledger(self.timeline, cut.dialect, Target(where, host, port), cut.credentials,
                              probe.run_id, driver=probe.driver)

    def judge(self, judgement: Callable[..., Verdict | list[Verdict]], *, finish: bool = True,
              even_if_aborted: bool = False, **arguments: Any) -> list[Verdict]:
        """Run a judgement (`harness.judgements`) over the timeline and keep its verdicts.

        The observation ends first (probes and loads stop, the ledger is read) unless `finish` is
        False, for judgements of a fault still holding. After a stop condition held the fault
        back there is nothing to judge, and the scenario ends there.
        """
        if self.aborted is not None and not even_if_aborted:
            raise GameDayAborted(self.aborted)
        if finish:
            self.finish_observation()
        records = read_timeline(self.timeline.path)
        result = judgement(Evidence.of(records), **arguments)
        verdicts = result if isinstance(result, list) else [result]
        call = judgement_call(judgement, arguments, timeline_records=len(records),
                              call=self.provenance[-1]["call"] + 1 if self.provenance else 0)
        for verdict in verdicts:
            self.verdicts.append(verdict)
            self.provenance.append(call)
            self.timeline.record("note", text=f"verdict: {verdict.explanation} -> {verdict.status}")
        return verdicts

    def target(self, target_id: str) -> DocumentedTarget:
        targets = load_targets()
        if target_id not in targets:
            raise ScenarioError(f"no documented target {target_id!r}; see `gameday targets`")
        return targets[target_id]

    def load_names(self, behaviour: str | None = None) -> list[str]:
        """The loads of this scenario (or those with the `behaviour` client), by name."""
        names = [spec.name for spec in self.load_specs if behaviour in (None, spec.client)]
        if not names:
            client = f" with the {behaviour} client" if behaviour else ""
            raise ScenarioError(f"no load{client} ran in this scenario: start one with 'Given a load of ...'")
        return names

    def breached(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == BREACHED]

    def measurements(self) -> dict[str, Any]:
        if self._measurements is None:
            self.finish_observation()
            self._measurements = measure_all(read_timeline(self.timeline.path))
        return self._measurements

    # --- the end --------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop probes and loads, write verdict.json, roll back what the scenario changed (newest
        first), release the cluster; safe to call after a failure. A rollback that fails is
        recorded and raised once everything else is done."""
        if self.probes is not None and not self.observation_finished:
            self.probes.stop()
        self._stop_loads()
        measurements = self._measurements
        if measurements is None and (self.probes is not None or self.loads):
            measurements = measure_all(read_timeline(self.timeline.path))
        if not self.dry_run:
            write_verdict_file(self.directory / "verdict.json", self.scenario, self.verdicts, measurements or {},
                               aborted=self.aborted, provenance=self.provenance)
        failures = self._roll_back()
        self.timeline.close()
        if self.global_cut is not None:
            try:
                self.environment.release_global(self.global_cut)
            except Exception:
                log.exception("releasing %s failed", self.global_cut.identifier)
        elif self.cut is not None:
            try:
                self.environment.release(self.cut)
            except Exception:
                log.exception("releasing %s failed", self.cut.identifier)
        if failures:
            raise RollbackFailed("could not put back: " + "; ".join(failures))

    def _roll_back(self) -> list[str]:
        failures = []
        context = Context(self.cut, self.environment, self.global_cut) if self.cut is not None else None
        while self.applied and context is not None:
            action = self.applied.pop()
            try:
                done = action.rollback(context)
            except Exception as error:
                log.exception("rolling back %s failed", action.describe())
                failures.append(f"{action.describe()}: {error}")
                self.timeline.record("rollback", name=action.name, description=action.describe(), error=str(error))
                continue
            if done:
                self.timeline.record("rollback", name=action.name, description=action.describe(), done=done)
        return failures

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

    def events(self) -> list[dict[str, Any]]:
        return [r for r in read_timeline(self.timeline.path) if r["kind"] == "event"]

    def summary(self) -> str:
        return json.dumps({"scenario": self.scenario, "cluster": self.cut.identifier if self.cut else None,
                           "verdicts": [v.status for v in self.verdicts]})
