"""Judgements of a global game day: cross-Region lag, what a switchover or failover lost, how long
writes were refused, which Region writes afterwards, and managed RPO.

Pure functions over the recorded history (`harness.global_probes` says what is recorded):
`write` records of the write probe through the global writer endpoint (each acknowledged one
names the instance that served it), `read` records of the probes named `secondary:<instance>`,
`global-topology` records (the writer Region and each Region's role and synchronization status),
the one `global-database` record (each Region's instances), the loads' per-second records (each
client's error window), and the faults and actions.

The RPO of a failover is measured, not estimated: the acknowledged writes the new primary does
not hold (`harness.measure.data_loss`), the window their acknowledgements span, and `rpo_s`,
how much recent data, measured in time, the failover gave up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from harness.drivers import DRIVER_TITLES, PLAIN
from harness.errors import ScenarioError
from harness.judgements import Evidence
from harness.judgements.load import load_results
from harness.judgements.writes import write_outages
from harness.measure import measure_data_loss, measure_rto, measure_visibility_lag
from harness.measure.common import NotMeasured, ack_times, drivers_in, writes_of
from harness.measure.faults import FaultRecord, faults_of
from harness.measure.metrics import Metric, declare
from harness.targets import Target
from harness.timeline import Record, of_kind
from harness.verdicts import Verdict, judge, judge_fact, judge_target

__all__ = ["commits_held", "failover_rpo", "no_write_lost", "recovery", "rejoined", "replication_lag",
           "roles_swapped", "writes_refused"]

declare("global_database", Metric("commit_hold_after_s", "commits held from the link cut after", "s"))

SECONDARY_READER = "secondary:"  # harness.global_probes.SECONDARY_READER, repeated: judgements import no probe
LOST_NAMED = 20  # lost writes named in a verdict's explanation (verdict.json counts and lists them all)
FAULTS = {"failover": "global-failover", "switchover": "global-switchover", "outage": "region-outage",
          "link cut": "region-link-cut"}


def replication_lag(evidence: Evidence, *, target: Target) -> list[Verdict]:
    """Cross-Region visibility lag on the secondary Region's instances, before any fault: the worst
    instance's p50 and p99 against the documented "typically under a second"."""
    records = _before_faults(evidence.records)
    lag = measure_visibility_lag(records)
    probes = {} if isinstance(lag, NotMeasured) else {n: p for n, p in lag.items() if n.startswith(SECONDARY_READER)}
    reason = "no read probe on the secondary Region saw an acknowledged write"
    verdicts = []
    for metric, percentile in (("lag_p50_s", "p50"), ("lag_p99_s", "p99")):
        values = [getattr(p, metric) for p in probes.values()]
        value = None if not values or None in values else max(values)
        check = f"cross-Region visibility lag {percentile}"
        # "typically under a second" read at the median and at the p99: the same documented limit
        verdicts.append(judge_target(dataclasses.replace(target, metric=metric), value, check=check, reason=reason))
    samples = sum(p.samples for p in probes.values())
    return [dataclasses.replace(v, explanation=f"{v.explanation}; {samples} writes timed on {len(probes)} "
                                               f"instance(s) of the secondary Region") for v in verdicts]


def writes_refused(evidence: Evidence, *, limit_s: float, loads: Sequence[str] = ()) -> list[Verdict]:
    """How long each client could not write through the global writer endpoint in the switchover
    or failover: each write probe's outage (first refused attempt to the first acknowledged one
    after, per driver) and each named load's error window (one verdict per client)."""
    verdicts = [judge("outage_s", value, limit_s, "<=", check=_per_driver("writes refused", driver), reason=reason)
                for driver, value, reason in write_outages(evidence)]
    for load in load_results(evidence, loads) if loads else []:
        reason = None if load.error_window_s is not None else "no fault was injected"
        verdicts.append(judge("error_window_s", load.error_window_s, limit_s, "<=",
                              check=f"writes refused, load {load.load}", reason=reason))
    return verdicts


def recovery(evidence: Evidence, *, target: Target, since: str = "failover", new_region: str) -> list[Verdict]:
    """RTO per driver, from the fault named by `since` ("failover": the FailoverGlobalCluster call,
    "outage": the Region outage, "switchover") to the first write acknowledged by an instance in
    `new_region`; a write the old Region still acknowledged is not the application writing again."""
    fault = _fault(evidence.records, since)
    instances = set(_instances(evidence.records).get(new_region, []))
    if not instances:
        raise ScenarioError(f"the timeline names no instance in {new_region}")
    records = [r for r in evidence.records if not (r["kind"] == "write" and r["outcome"] == "acknowledged"
                                                   and r.get("server") and r["server"] not in instances)]
    verdicts = []
    for driver in drivers_in(records) or [PLAIN]:
        result = measure_rto(records, fault, driver=driver)
        value = None if isinstance(result, NotMeasured) else result.rto_s
        reason = result.reason if isinstance(result, NotMeasured) else (
            None if result.recovered else f"writes did not come back in {new_region}")
        check = f"writes back in {new_region} (RTO from the {since})"
        verdicts.append(judge_target(target, value, check=_per_driver(check, driver), reason=reason))
    return verdicts


def failover_rpo(evidence: Evidence, *, target: Target | None = None, limit_s: float | None = None,
                 check: str = "data loss (RPO)") -> list[Verdict]:
    """Per driver: the acknowledged writes the new primary does not hold, the window they span and
    `rpo_s`, judged against a target (RPO "measured in seconds") or a limit in seconds."""
    verdicts = []
    for driver in drivers_in(evidence.records) or [PLAIN]:
        result = measure_data_loss(evidence.records, evidence.fault, driver=driver)
        value = None if isinstance(result, NotMeasured) else result.rpo_s
        reason = result.reason if isinstance(result, NotMeasured) else None
        named = _per_driver(check, driver)
        if target is not None:
            verdict = judge_target(target, value, check=named, reason=reason)
        elif limit_s is not None:
            verdict = judge("rpo_s", value, limit_s, "<=", check=named, reason=reason)
        else:
            raise ValueError("failover_rpo needs a target or a limit")
        if not isinstance(result, NotMeasured):
            verdict = dataclasses.replace(verdict, explanation=f"{verdict.explanation}; {_lost(result)}")
        verdicts.append(verdict)
    return verdicts


def no_write_lost(evidence: Evidence) -> list[Verdict]:
    """Per driver: not one acknowledged write missing from the new primary; a breach names them."""
    verdicts = []
    for driver in drivers_in(evidence.records) or [PLAIN]:
        result = measure_data_loss(evidence.records, evidence.fault, driver=driver)
        value = None if isinstance(result, NotMeasured) else result.lost_count
        reason = result.reason if isinstance(result, NotMeasured) else None
        verdict = judge("lost_count", value, 0, "<=", check=_per_driver("no acknowledged write lost", driver),
                        reason=reason)
        if not isinstance(result, NotMeasured) and result.lost_count:
            verdict = dataclasses.replace(verdict, explanation=f"{verdict.explanation}; {_lost(result)}")
        verdicts.append(verdict)
    return verdicts


def roles_swapped(evidence: Evidence, *, writer_region: str, secondary_region: str) -> Verdict:
    """The last recorded global topology has the writer in `writer_region` and `secondary_region`'s
    cluster a secondary (no switchover or failover under way)."""
    last = _last_topology(evidence.records)
    regions = last.get("regions", {})
    old = regions.get(secondary_region, {})
    holds = (last.get("writer_region") == writer_region and not last.get("failover_state")
             and old.get("writer") is False)
    said = (f"the writer is in {last.get('writer_region')}; {secondary_region}'s cluster {old.get('cluster')} is "
            f"{'a secondary' if old.get('writer') is False else 'the writer' if old.get('writer') else 'missing'} "
            f"({old.get('sync') or 'no status'})")
    return judge_fact("roles swapped", holds, said)


def rejoined(evidence: Evidence, *, region: str) -> Verdict:
    """After its Region returned, the old primary's cluster is a secondary again, `connected`."""
    returns = [a for a in of_kind(evidence.records, "action") if a["name"] == "region-returns"]
    if not returns:
        raise ScenarioError("'rejoins as a secondary' needs the Region to come back first")
    after = [r for r in of_kind(evidence.records, "global-topology") if r["m"] >= returns[-1]["start"]]
    if not after:
        return judge_fact("old primary rejoined", False, f"no global topology was recorded after {region} returned")
    member = after[-1].get("regions", {}).get(region, {})
    holds = member.get("writer") is False and member.get("sync") == "connected"
    return judge_fact("old primary rejoined", holds,
                      f"{region}'s cluster {member.get('cluster')} is "
                      f"{'a secondary' if member.get('writer') is False else 'not a secondary'}, "
                      f"{member.get('sync') or 'no status'}, after its Region returned")


def commits_held(evidence: Evidence, *, rpo_s: float, tolerance_s: float) -> Verdict:
    """With the inter-Region link cut, commits stop once the RPO lag passes `rpo_s` (managed RPO):
    the last acknowledgement before the longest pause comes `rpo_s` after the cut, give or take
    `tolerance_s` (how often the engine checks the lag)."""
    cut = _fault(evidence.records, "link cut")
    acks = sorted(a for a in ack_times(evidence.records).values() if a >= cut.start)
    writes = [w for w in writes_of(evidence.records) if w["end"] >= cut.start]
    if len(acks) < 2 or not writes:
        return judge("commit_hold_after_s", None, rpo_s + tolerance_s, "<=", check="commits held",
                     reason="too few acknowledged writes after the link was cut")
    last_write = max(w["end"] for w in writes)
    gaps = [(later - earlier, earlier) for earlier, later in zip(acks, [*acks[1:], last_write])]
    _, held_from = max(gaps)
    value = round(held_from - cut.start, 3)
    if value < rpo_s - tolerance_s:
        return judge_fact("commits held", False, f"commits stopped {value:.3f} s after the link was cut, before "
                                                 f"the RPO lag could pass rds.global_db_rpo = {rpo_s:g} s")
    return judge("commit_hold_after_s", value, rpo_s + tolerance_s, "<=", check="commits held")


# --- helpers --------------------------------------------------------------------------------------------
def _before_faults(records: list[Record]) -> list[Record]:
    faults = faults_of(records)
    if not faults:
        return records
    first = faults[0].start
    return [r for r in records if r["kind"] not in ("write", "read") or r["start"] < first]


def _fault(records: list[Record], since: str) -> FaultRecord:
    """The last fault of the kind `since` names, its window open to the end of the observation."""
    name = FAULTS.get(since)
    if name is None:
        raise ScenarioError(f"unknown moment {since!r}; say one of {', '.join(FAULTS)}")
    found = [f for f in faults_of(records) if f.name == name]
    if not found:
        raise ScenarioError(f"no {since} in this scenario")
    return dataclasses.replace(found[-1], until=None)


def _instances(records: list[Record]) -> dict[str, list[str]]:
    database = next(of_kind(records, "global-database"), None)
    return dict(database["instances"]) if database else {}


def _last_topology(records: list[Record]) -> dict[str, Any]:
    topologies = list(of_kind(records, "global-topology"))
    if not topologies:
        raise ScenarioError("no global topology was recorded: this needs a global database")
    return topologies[-1]


def _lost(result: Any) -> str:
    if not result.lost_count:
        return f"no acknowledged write lost of {result.acknowledged}"
    shown = ", ".join(str(seq) for seq in result.lost[:LOST_NAMED])
    more = f" and {result.lost_count - LOST_NAMED} more" if result.lost_count > LOST_NAMED else ""
    return (f"{result.lost_count} of {result.acknowledged} acknowledged writes lost (seq {shown}{more}), "
            f"acknowledged over {result.lost_window_s:.3f} s")


def _per_driver(check: str, driver: str) -> str:
    return check if driver == PLAIN else f"{check}, {DRIVER_TITLES[driver]}"
