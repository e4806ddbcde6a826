"""Judgements of the readers: replica lag, read availability, a reader held back by a fault."""

from __future__ import annotations

from harness.judgements import Evidence
from harness.measure import measure_read_availability, measure_visibility_lag
from harness.measure.common import NotMeasured
from harness.measure.fault_window import LagDuringFault, measure_lag_during_fault
from harness.targets import Target
from harness.verdicts import Verdict, judge, judge_target

__all__ = ["catch_up", "lag_after_recovery", "lag_peak", "reads_available"]

READER = "reader:"  # read probes on an instance are named reader:<instance>


def lag_after_recovery(evidence: Evidence, *, target: Target) -> Verdict:
    """Visibility lag on every reader of the writes acknowledged once the cluster had recovered
    (from the last `recovery` phase on): the worst reader's p99 against the target."""
    records = evidence.records
    phases = [r for r in records if r["kind"] == "phase" and r["name"] == "recovery"]
    since = phases[-1]["m"] if phases else 0.0
    window = [r for r in records if r["kind"] not in ("write", "read") or r["start"] >= since]
    lag = measure_visibility_lag(window)
    values = [] if isinstance(lag, NotMeasured) else [
        probe.lag_p99_s for name, probe in lag.items() if name.startswith(READER)]
    value = None if not values or None in values else max(values)
    return judge_target(target, value, check="replica lag",
                        reason="no reader saw the writes acknowledged after recovery")


def reads_available(evidence: Evidence) -> Verdict:
    """Every reader answered every read from the fault on (or from the start, without one)."""
    availability = measure_read_availability(evidence.records, evidence.fault)
    values = [] if isinstance(availability, NotMeasured) else [
        probe.availability for name, probe in availability.items() if name.startswith(READER)]
    value = None if not values or None in values else min(values)
    return judge("availability", value, 1.0, ">=", check="read availability", reason="no read probe on a reader")


def lag_peak(evidence: Evidence, *, reader: str, at_least_s: float) -> Verdict:
    """The fault really held the reader back: its lag reached `at_least_s` during the interval."""
    result = _lag_during_fault(evidence, reader)
    value = None if isinstance(result, NotMeasured) else result.peak_lag_s
    reason = result.reason if isinstance(result, NotMeasured) else f"{reader} never showed the writes of the fault"
    return judge("peak_lag_s", value, at_least_s, ">=", check=f"lag of {reader} during the fault", reason=reason)


def catch_up(evidence: Evidence, *, reader: str, within_s: float) -> Verdict:
    """After the interval the reader showed every write acknowledged during it, within `within_s`."""
    result = _lag_during_fault(evidence, reader)
    value = None if isinstance(result, NotMeasured) else result.catch_up_s
    reason = result.reason if isinstance(result, NotMeasured) else f"{reader} did not catch up before the end"
    return judge("catch_up_s", value, within_s, "<=", check=f"{reader} catches up", reason=reason)


def _lag_during_fault(evidence: Evidence, reader: str) -> LagDuringFault | NotMeasured:
    results = measure_lag_during_fault(evidence.records, evidence.fault)
    if isinstance(results, NotMeasured):
        return results
    return results.get(f"{READER}{reader}") or NotMeasured(f"no read probe watched {reader}")
