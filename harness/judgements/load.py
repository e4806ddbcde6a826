"""Judgements of what the application saw: the loads' errors and latency, and the stop condition.

Each load is judged on its own (one verdict per load, its explanation naming it); which loads a
step means (all, or those on one client) the caller says by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from harness.errors import ScenarioError
from harness.judgements import Evidence
from harness.measure import ApplicationLoad, measure_load
from harness.measure.common import NotMeasured
from harness.timeline import of_kind
from harness.verdicts import Verdict, judge, judge_fact

__all__ = ["application_errors", "latency_recovery", "no_application_errors", "stopped_before_the_fault"]


def application_errors(evidence: Evidence, *, loads: Sequence[str], limit_s: float) -> list[Verdict]:
    """Each load saw failed requests for at most `limit_s` seconds after the fault."""
    return _per_load(evidence, loads, "error_window_s", limit_s, "application errors",
                     lambda r: r.error_window_s, lambda r: "no fault was injected")


def no_application_errors(evidence: Evidence, *, loads: Sequence[str]) -> list[Verdict]:
    """No request of the load failed after the fault."""
    return _per_load(evidence, loads, "failed_requests", 0, "application errors",
                     lambda r: r.failed_requests, lambda r: "no fault was injected")


def latency_recovery(evidence: Evidence, *, loads: Sequence[str], limit_s: float) -> list[Verdict]:
    """Each load's p95 latency was back at its steady-state baseline within `limit_s` of the fault."""
    return _per_load(evidence, loads, "latency_recovery_s", limit_s, "latency back to baseline",
                     lambda r: r.latency_recovery_s, lambda r: r.latency_reason)


def stopped_before_the_fault(evidence: Evidence, *, aborted: str | None, writer: str, writer_before: str) -> Verdict:
    """The stop condition held the fault back: no fault on the timeline and the same writer."""
    faults = list(of_kind(evidence.records, "fault"))
    holds = aborted is not None and not faults and writer == writer_before
    said = aborted or "the stop condition let the fault through"
    return judge_fact("stop condition", holds, f"{said}; faults injected: {len(faults)}; the writer is {writer} "
                                               f"(was {writer_before})")


def load_results(evidence: Evidence, loads: Sequence[str]) -> list[ApplicationLoad]:
    """What each named load saw (loads that left no second on the timeline are left out)."""
    results = measure_load(evidence.records, evidence.fault)
    if isinstance(results, NotMeasured):
        raise ScenarioError(f"the loads left nothing on the timeline: {results.reason}")
    return [results[name] for name in loads if name in results]


def _per_load(evidence: Evidence, loads: Sequence[str], metric: str, limit: float, check: str,
              value: Callable[[ApplicationLoad], Any], reason: Callable[[ApplicationLoad], str | None]
              ) -> list[Verdict]:
    verdicts = []
    for result in load_results(evidence, loads):
        verdict = judge(metric, value(result), limit, "<=", check=check, reason=reason(result))
        verdicts.append(dataclasses.replace(verdict, explanation=f"{result.load}: {verdict.explanation}"))
    return verdicts
