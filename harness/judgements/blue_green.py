"""Judgements of a Blue/Green game day: did the switchover lose a write, how long was each client
down, did the application's endpoints stay the same, does the old blue refuse writes, which engine
version production runs, and, when a switchover must not happen (a guardrail, the timeout, DDL on
blue), that nothing changed.

Pure functions over the recorded history (`harness.blue_green` says what is recorded): the
`blue-green` record (the deployment when it was AVAILABLE: its clusters' names, endpoints,
instances and engine versions), `blue-green-status` records (each status seen), the
`blue-green-after` record, the `old-blue-write` record, the `blue-green-switchover` fault (its
detail says whether AWS started it or refused it, and why), the probes' `write` records (each
acknowledged one names the instance that served it) and the loads' seconds.
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
from harness.measure import measure_data_loss
from harness.measure.common import NotMeasured, drivers_in
from harness.targets import Target
from harness.timeline import Record, of_kind
from harness.verdicts import Verdict, judge, judge_fact, judge_target

__all__ = ["downtime", "endpoints_unchanged", "nothing_changed", "no_write_lost", "not_switchable",
           "old_blue_refuses_writes", "production_engine_version", "rolled_back", "switched_over"]

SWITCHOVER = "blue-green-switchover"
LOST_NAMED = 20  # lost writes named in a verdict's explanation


def _one(records: list[Record], kind: str, step: str) -> Record:
    found = list(of_kind(records, kind))
    if not found:
        raise ScenarioError(f"the timeline has no {kind} record: {step}")
    return found[-1]


def _deployment(records: list[Record]) -> Record:
    return _one(records, "blue-green", "start with 'Given a Blue/Green deployment of the cluster'")


def _after(records: list[Record]) -> Record:
    return _one(records, "blue-green-after", "the switchover's When step records the deployment once it settled")


def _switchover(evidence: Evidence) -> dict[str, Any]:
    """The switchover's fault record's detail: outcome "started" or "refused" (code, message)."""
    found = [f for f in of_kind(evidence.records, "fault") if f["name"] == SWITCHOVER]
    if not found:
        raise ScenarioError("no switchover on the timeline: 'When the deployment switches over ...'")
    return dict(found[-1].get("detail") or {})


def switched_over(evidence: Evidence) -> Verdict:
    """The switchover was started and the deployment reached SWITCHOVER_COMPLETED."""
    detail, after = _switchover(evidence), _after(evidence.records)
    holds = detail.get("outcome") == "started" and after["status"] == "SWITCHOVER_COMPLETED"
    said = (f"refused: {detail.get('message')}" if detail.get("outcome") == "refused"
            else f"the deployment is {after['status']}" + (f" ({after['details']})" if after.get("details") else ""))
    return judge_fact("switchover completed", holds, said)


def no_write_lost(evidence: Evidence, *, target: Target) -> list[Verdict]:
    """Acknowledged writes missing from the production cluster afterwards, per write probe,
    the first of them named (a switchover waits for green to catch up: RPO 0)."""
    verdicts = []
    for driver in drivers_in(evidence.records) or [PLAIN]:
        result = measure_data_loss(evidence.records, evidence.fault, driver=driver)
        check = "data loss (RPO)" if driver == PLAIN else f"data loss (RPO), {DRIVER_TITLES[driver]}"
        if isinstance(result, NotMeasured):
            verdicts.append(judge_target(target, None, check=check, reason=result.reason))
            continue
        verdict = judge_target(target, result.lost_count, check=check)
        if result.lost_count:
            named = ", ".join(str(seq) for seq in result.lost[:LOST_NAMED])
            more = f" and {result.lost_count - LOST_NAMED} more" if result.lost_count > LOST_NAMED else ""
            verdict = _explained(verdict, f"{verdict.explanation}; lost: seq {named}{more} (acknowledged within "
                                          f"{result.lost_window_s:.2f} s before the switchover)")
        verdicts.append(verdict)
    return verdicts


def downtime(evidence: Evidence, *, loads: Sequence[str], target: Target | None = None,
             limit_s: float | None = None, check: str = "switchover downtime") -> list[Verdict]:
    """How long each client could not write: each write probe's outage (first refused write to the
    first acknowledged after it) and each load's error window, against the documented "under a
    minute" (`target`) or a limit the scenario names."""
    verdicts = [_against(value, target, limit_s, f"{check}, write probe ({DRIVER_TITLES[driver]})", reason, "outage_s")
                for driver, value, reason in write_outages(evidence)]
    for result in load_results(evidence, loads) if loads else []:
        reason = None if result.error_window_s is not None else "no fault was injected"
        load_target = dataclasses.replace(target, metric="error_window_s") if target is not None else None
        verdicts.append(_against(result.error_window_s, load_target, limit_s, f"{check}, load {result.load}",
                                 reason, "error_window_s"))
    return verdicts


def endpoints_unchanged(evidence: Evidence) -> Verdict:
    """The production cluster keeps blue's name, cluster endpoint and reader endpoint: the
    application changes nothing (AWS: "no need for application changes")."""
    before, after = _deployment(evidence.records)["source"], _after(evidence.records)["production"]
    same = [k for k in ("cluster", "endpoint", "reader_endpoint") if before.get(k) == after.get(k)]
    holds = len(same) == 3
    return judge_fact("application endpoints unchanged", holds,
                      f"production is {after['cluster']} at {after['endpoint']} (reader {after['reader_endpoint']}); "
                      f"before the switchover {before['cluster']} at {before['endpoint']} "
                      f"(reader {before['reader_endpoint']})")


def old_blue_refuses_writes(evidence: Evidence) -> Verdict:
    """The old blue (renamed `-old1`) is read-only: the application's write there is refused."""
    attempt = _one(evidence.records, "old-blue-write", "'Then the old blue refuses writes' tries one")
    holds = attempt["outcome"] == "refused"
    said = (f"{attempt['cluster']} refused the write: {attempt.get('error')}" if holds
            else f"{attempt['cluster']} acknowledged a write (on {attempt.get('server')})")
    return judge_fact("old blue refuses writes", holds, said)


def production_engine_version(evidence: Evidence) -> Verdict:
    """After the switchover the production cluster reports the engine version the green
    environment was created on."""
    green = _deployment(evidence.records)["target"]["engine_version"]
    after = _after(evidence.records)
    now, blue = after["production"]["engine_version"], _deployment(evidence.records)["source"]["engine_version"]
    return judge_fact("production runs the green engine version", now == green,
                      f"production {after['production']['cluster']} reports {now}; green was created on {green}, "
                      f"blue ran {blue}")


def nothing_changed(evidence: Evidence, *, refused: bool = True) -> list[Verdict]:
    """After a switchover that must not happen (refused by a guardrail, or past its timeout):
    blue is still production under its own names and endpoints, green keeps its own, and (when
    `refused`) AWS refused it with a reason."""
    verdicts = []
    detail = _switchover(evidence)
    if refused:
        verdicts.append(judge_fact("switchover refused", detail.get("outcome") == "refused",
                                   f"AWS said: {detail.get('message')}" if detail.get("outcome") == "refused"
                                   else "the switchover was started"))
    before, after = _deployment(evidence.records), _after(evidence.records)
    changed = [f"{role} {key}: {before[role].get(key)} -> {after[role].get(key)}"
               for role in ("source", "target") for key in ("cluster", "endpoint", "reader_endpoint", "instances")
               if before[role].get(key) != after[role].get(key)]
    if after["production"].get("instances") != before["source"].get("instances"):
        changed.append(f"production instances: {before['source'].get('instances')} -> "
                       f"{after['production'].get('instances')}")
    verdicts.append(judge_fact("nothing renamed", not changed and after["status"] != "SWITCHOVER_COMPLETED",
                               "; ".join(changed) if changed else
                               f"{after['source']['cluster']} is still production at {after['source']['endpoint']}; "
                               f"the deployment is {after['status']}"))
    return verdicts


def rolled_back(evidence: Evidence) -> list[Verdict]:
    """A switchover past its timeout: SWITCHOVER_FAILED, nothing renamed, and writes acknowledged
    again by blue's instances after it was rolled back."""
    after = _after(evidence.records)
    verdicts = [judge_fact("switchover rolled back", after["status"] == "SWITCHOVER_FAILED",
                           f"the deployment is {after['status']}" + (f": {after['details']}" if after.get("details")
                                                                     else ""))]
    verdicts += nothing_changed(evidence, refused=False)
    failed = [r for r in of_kind(evidence.records, "blue-green-status") if r["status"] == "SWITCHOVER_FAILED"]
    blue = set(_deployment(evidence.records)["source"]["instances"])
    since = failed[0]["at"] if failed else None
    back = [w for w in of_kind(evidence.records, "write") if since is not None and w["outcome"] == "acknowledged"
            and w["start"] >= since and w.get("server") in blue]
    verdicts.append(judge_fact("writes back on blue", bool(back),
                               f"{len(back)} writes acknowledged by blue's instances after the rollback"
                               if since is not None else "the deployment was never seen SWITCHOVER_FAILED"))
    return verdicts


def not_switchable(evidence: Evidence) -> Verdict:
    """The game day saw the deployment could not switch over (INVALID_CONFIGURATION, with the
    reason) before any switchover was asked for."""
    statuses = list(of_kind(evidence.records, "blue-green-status"))
    invalid = next((r for r in statuses if r["status"] == "INVALID_CONFIGURATION"), None)
    attempted = [f for f in of_kind(evidence.records, "fault") if f["name"] == SWITCHOVER]
    holds = invalid is not None and not attempted
    said = (f"reported INVALID_CONFIGURATION: {invalid['details']}" if invalid is not None
            else f"the deployment stayed {statuses[-1]['status'] if statuses else 'unobserved'}")
    if attempted:
        said += "; a switchover was attempted first"
    return judge_fact("deployment reported not switchable", holds, said)


def _against(value: float | None, target: Target | None, limit_s: float | None, check: str, reason: str | None,
             metric: str) -> Verdict:
    if target is not None:
        return judge_target(target, value, check=check, reason=reason)
    if limit_s is None:
        raise ValueError("downtime needs a target or a limit")
    return judge(metric, value, limit_s, "<=", check=check, reason=reason)


def _explained(verdict: Verdict, explanation: str) -> Verdict:
    return dataclasses.replace(verdict, explanation=explanation)
