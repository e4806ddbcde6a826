"""Judgements of the write path: are writes back in time, were they interrupted, was any lost."""

from __future__ import annotations

from harness.drivers import DRIVER_TITLES, PLAIN
from harness.errors import ScenarioError
from harness.judgements import Evidence
from harness.measure import measure_data_loss, measure_rto
from harness.measure.common import NotMeasured, drivers_in, writes_of
from harness.measure.fault_window import fault_window, longest_write_gap
from harness.measure.metrics import Metric, declare
from harness.targets import Target
from harness.verdicts import Verdict, judge, judge_target

__all__ = ["data_loss", "halted", "recovery", "stalled", "uninterrupted", "write_outages"]

declare("writes-halted", Metric("acknowledged_while_halted", "writes acknowledged while halted", "writes"),
        Metric("longest_write_gap_s", "longest time without an acknowledged write", "s"))

HALT_GRACE_S = 0.5  # writes already in flight when the quorum went may still return


def recovery(evidence: Evidence, *, limit: float | None = None, target: Target | None = None,
             driver: str = PLAIN, check: str = "writes back (RTO)") -> Verdict:
    """RTO of `driver`'s write probe from the fault, against a limit in seconds or a target."""
    if driver not in drivers_in(evidence.records):
        raise ScenarioError(f"no write probe ran through the {DRIVER_TITLES[driver]} in this scenario")
    result = measure_rto(evidence.records, evidence.fault, driver=driver)
    value = None if isinstance(result, NotMeasured) else result.rto_s
    reason = result.reason if isinstance(result, NotMeasured) else (
        None if result.recovered else "writes did not recover before the observation ended")
    if target is not None:
        return judge_target(target, value, check=check, reason=reason)
    if limit is None:
        raise ValueError("recovery needs a limit or a target")
    return judge("rto_s", value, limit, "<=", check=check, reason=reason)


def uninterrupted(evidence: Evidence) -> Verdict:
    """No write attempt failed after the fault: the write outage is 0 s."""
    result = measure_rto(evidence.records, evidence.fault)
    value = None if isinstance(result, NotMeasured) else result.outage_s
    reason = result.reason if isinstance(result, NotMeasured) else "writes did not recover"
    return judge("outage_s", value, 0, "<=", check="writes not interrupted", reason=reason)


def data_loss(evidence: Evidence, *, target: Target) -> list[Verdict]:
    """Acknowledged writes missing after recovery, one verdict per driver that wrote (the plain
    driver's first, its check keeping the plain name)."""
    verdicts = []
    for driver in drivers_in(evidence.records) or [PLAIN]:
        result = measure_data_loss(evidence.records, evidence.fault, driver=driver)
        value = None if isinstance(result, NotMeasured) else result.lost_count
        reason = result.reason if isinstance(result, NotMeasured) else None
        check = "data loss (RPO)" if driver == PLAIN else f"data loss (RPO), {DRIVER_TITLES[driver]}"
        verdicts.append(judge_target(target, value, check=check, reason=reason))
    return verdicts


def halted(evidence: Evidence, *, until: float, grace: float = HALT_GRACE_S) -> Verdict:
    """No write was acknowledged between the fault's return (plus a grace for writes in flight)
    and `until` (monotonic): the cluster refused to commit without its write quorum."""
    if evidence.fault is None:
        raise ScenarioError("'writes halt' needs a fault before it")
    since = evidence.fault.end + grace
    acknowledged = [w for w in writes_of(evidence.records)
                    if w["outcome"] == "acknowledged" and since <= w["end"] <= until]
    return judge("acknowledged_while_halted", len(acknowledged), 0, "<=", check="writes halted")


def stalled(evidence: Evidence, *, fraction: float = 0.8) -> Verdict:
    """Writes stopped for most of the fault's interval: the longest time without an acknowledged
    write is at least `fraction` of it (a stalled commit waits, it does not fail)."""
    window, gap = fault_window(evidence.fault), longest_write_gap(evidence.records, evidence.fault)
    if isinstance(window, NotMeasured) or isinstance(gap, NotMeasured):
        reason = window.reason if isinstance(window, NotMeasured) else getattr(gap, "reason", None)
        return judge("longest_write_gap_s", None, 0, ">=", check="writes stalled", reason=reason)
    limit = round(fraction * (window.end - window.start), 3)
    return judge("longest_write_gap_s", gap, limit, ">=", check="writes stalled")


def write_outages(evidence: Evidence) -> list[tuple[str, float | None, str | None]]:
    """Each write probe's outage in the fault (first refused write to the first acknowledged one after
    it), by driver: (driver, seconds, None) or (driver, None, why there is no figure)."""
    outages: list[tuple[str, float | None, str | None]] = []
    for driver in drivers_in(evidence.records) or [PLAIN]:
        result = measure_rto(evidence.records, evidence.fault, driver=driver)
        if isinstance(result, NotMeasured):
            outages.append((driver, None, result.reason))
        else:
            outages.append((driver, result.outage_s, None if result.recovered
                            else "writes did not come back before the observation ended"))
    return outages
