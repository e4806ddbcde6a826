"""Judgements of commit latency around a timed fault (Aurora's disk-congestion query, say)."""

from __future__ import annotations

from harness.judgements import Evidence
from harness.measure.common import NotMeasured
from harness.measure.fault_window import measure_commit_latency
from harness.verdicts import Verdict, judge, judge_fact

__all__ = ["commit_latency_after", "commit_latency_band"]


def commit_latency_band(evidence: Evidence, *, low_ms: float, high_ms: float) -> Verdict:
    """The median commit latency inside the fault's interval lies in [low, high] ms."""
    result = measure_commit_latency(evidence.records, evidence.fault)
    if isinstance(result, NotMeasured):
        return judge("during_p50_ms", None, high_ms, "<=", check="commit latency during the fault",
                     reason=result.reason)
    holds = result.during_p50_ms is not None and low_ms <= result.during_p50_ms <= high_ms
    return judge_fact(
        "commit latency during the fault", holds,
        f"median commit latency {result.during_p50_ms:g} ms during the fault (p95 {result.during_p95_ms:g} ms, "
        f"{result.samples_during} commits; {_ms(result.before_p50_ms)} before, {_ms(result.after_p50_ms)} after), "
        f"expected between {low_ms:g} and {high_ms:g} ms")


def commit_latency_after(evidence: Evidence, *, limit_ms: float) -> Verdict:
    """Once the interval is over (and queued commits drained) the median commit is fast again."""
    result = measure_commit_latency(evidence.records, evidence.fault)
    value = None if isinstance(result, NotMeasured) else result.after_p50_ms
    reason = result.reason if isinstance(result, NotMeasured) else "no commit after the fault's interval"
    return judge("after_p50_ms", value, limit_ms, "<=", check="commit latency after the fault", reason=reason)


def _ms(value: float | None) -> str:
    return "no commit" if value is None else f"{value:g} ms"
