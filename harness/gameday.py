"""One scenario of a game day: the cluster, the probes, the faults, the evidence, the verdicts.

Steps call these methods and nothing else, so a scenario reads as Given (a cluster and a
steady state) → When (a fault) → Then (judgements over what the probes recorded).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.environments import ClusterRequirement, ClusterUnderTest, Environment
from harness.faults import Fault
from harness.measure import measure_all, measure_read_availability, measure_rto, measure_visibility_lag, metric_value
from harness.measure.common import NotMeasured
from harness.probes import ProbeSet, ProbeSettings, ReadProbe, Target, TopologyProbe, WriteProbe, record_ledger
from harness.targets import Target as DocumentedTarget
from harness.targets import load_targets
from harness.aurora import promotion_rank
from harness.timeline import Record, Timeline, read_timeline
from harness.verdicts import BREACHED, Verdict, judge, judge_fact, judge_target, write_verdict_file

log = logging.getLogger("harness.gameday")
PROBE_SWITCH_INTERVAL_S = 0.0005


class ScenarioError(RuntimeError):
    """The scenario cannot go on (a step's precondition does not hold); the message says why."""


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
        # The write probe is I/O-bound but shares the GIL with the other probes (and boto3's
        # parsing); a short switch interval keeps its blind spots after a failure to ~ms.
        sys.setswitchinterval(PROBE_SWITCH_INTERVAL_S)
        self.probes = ProbeSet(probes).start()

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
        self.members_at_fault = self.cluster.members()
        self.timeline.record("phase", name="fault")
        start = time.monotonic()
        detail = fault.inject(self.cluster, self.environment)
        self.timeline.record("fault", name=fault.name, description=fault.describe(), start=start,
                             end=time.monotonic(), detail=detail)
        self.faults.append((fault, detail))
        return detail

    def await_recovery(self, timeout: float, acknowledged_after: int = 20) -> None:
        """Wait until the cluster has settled and the write probe commits again.

        Waiting is on state (the API and the probe's own successes), never a fixed sleep.
        """
        if self.dry_run:
            return
        cut = self.cluster
        cut.cluster.wait_settled(timeout=timeout)
        probe = self.probes.write_probe if self.probes else None
        if probe is not None:
            target = probe.acknowledged + acknowledged_after
            cut.cluster.wait_until(lambda: probe.acknowledged >= target, timeout, "writes resuming")

    # --- Then ---------------------------------------------------------------------------------------
    def finish_observation(self, recovery_seconds: float = 2.0) -> None:
        """Stop the probes after a recovery window and take the final ledger read."""
        if self.observation_finished:
            return
        self.observation_finished = True
        if self.probes is not None:
            self.hold("recovery", recovery_seconds)
            self.probes.stop()
            cut = self.cluster
            host, port = cut.endpoint()
            record_ledger(self.timeline, cut.dialect, Target("cluster-endpoint", host, port), cut.credentials,
                          self.run_id)

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

    def judge_fact(self, check: str, explanation: str, holds: bool) -> Verdict:
        return self._add(judge_fact(check, holds, explanation))

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

    def judge_recovery(self, check: str, limit: float, target: DocumentedTarget | None = None) -> Verdict:
        self.finish_observation()
        result = measure_rto(self._records_since_last_fault())
        value = None if isinstance(result, NotMeasured) else result.rto_s
        reason = result.reason if isinstance(result, NotMeasured) else (
            None if result.recovered else "writes did not recover before the observation ended")
        if target is not None:
            return self._add(judge_target(target, value, check=check, reason=reason))
        return self._add(judge("rto_s", value, limit, "<=", "s", check=check, reason=reason))

    def judge_uninterrupted_writes(self) -> Verdict:
        self.finish_observation()
        result = measure_rto(self._records_since_last_fault())
        value = None if isinstance(result, NotMeasured) else result.outage_s
        return self._add(judge("outage_s", value, 0, "<=", "s", check="writes not interrupted",
                               reason=getattr(result, "reason", "writes did not recover")))

    def judge_data_loss(self, target: DocumentedTarget) -> Verdict:
        measurements = self.measurements()
        value = metric_value(measurements, "lost_count")
        return self._add(judge_target(target, value, check="data loss (RPO)",
                                      reason=measurements["data_loss"].get("reason")))

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

    def judge_reads_available(self) -> Verdict:
        """Every reader answered every read since the first fault (or since the start)."""
        records = read_timeline(self.timeline.path)
        availability = measure_read_availability(records)
        values = [] if isinstance(availability, NotMeasured) else [
            probe.availability for name, probe in availability.items() if name.startswith("reader:")]
        value = None if not values else min(values)
        return self._add(judge("availability", value, 1.0, ">=", "", check="read availability",
                               reason="no read probe on a reader"))

    def judge_writes_halted(self, observe_seconds: float, grace: float = 0.5) -> Verdict:
        """No write was acknowledged while the fault held (after a short grace for in-flight ones)."""
        fault_end = [r for r in read_timeline(self.timeline.path) if r["kind"] == "fault"][-1]["end"]
        self.hold("fault-held", observe_seconds)
        window_end = time.monotonic()
        acknowledged = [r for r in read_timeline(self.timeline.path) if r["kind"] == "write"
                        and r["outcome"] == "acknowledged" and fault_end + grace <= r["end"] <= window_end]
        return self._add(judge("acknowledged_while_halted", len(acknowledged), 0, "<=", "writes",
                               check="writes halted"))

    def breached(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == BREACHED]

    # --- the end --------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop probes, write verdict.json, release the cluster; safe to call after a failure."""
        if self.probes is not None and not self.observation_finished:
            self.probes.stop()
        measurements = self._measurements
        if measurements is None and self.probes is not None:
            measurements = measure_all(read_timeline(self.timeline.path))
        if not self.dry_run:
            write_verdict_file(self.directory / "verdict.json", self.scenario, self.verdicts, measurements or {})
        self.timeline.close()
        if self.cut is not None and not self.cut.created and self.probes is not None:
            self._remove_ledger_rows()
        if self.cut is not None:
            try:
                self.environment.release(self.cut)
            except Exception:
                log.exception("releasing %s failed", self.cut.identifier)

    def _remove_ledger_rows(self) -> None:
        """On a cluster the harness did not create, leave nothing behind but an empty ledger table."""
        cut = self.cluster
        try:
            with cut.dialect.connect(*cut.endpoint(), cut.credentials, connect_timeout=5,
                                     statement_timeout=60) as conn:
                cut.dialect.delete_ledger_rows(conn, self.run_id)
        except Exception:
            log.exception("could not remove this run's ledger rows from %s", cut.identifier)

    def events(self) -> list[dict[str, Any]]:
        return [r for r in read_timeline(self.timeline.path) if r["kind"] == "event"]

    def summary(self) -> str:
        return json.dumps({"scenario": self.scenario, "cluster": self.cut.identifier if self.cut else None,
                           "verdicts": [v.status for v in self.verdicts]})
