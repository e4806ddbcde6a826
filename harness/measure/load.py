"""What the application saw: the load's requests, failures and latency around the fault.

Over the `load` and `load-failure` records (one per second of load, and per group of identical
failures in it; see `harness.load.history`), per load:

- **phases**: *before* (the steady state) runs from the steady state's start (the first
  `steady-state` phase record; else from the first second of load) to the first fault's `start`;
  *during* from F, the `start` of the fault the figures are timed from (`harness.measure.faults`), to the
  `recovery` phase (when the harness had seen writes resume; else to the end); *after* from
  there on. A second that overlaps the span from F to the recovery counts as *during*, so the
  errors of the second the fault hit and the slow requests that ended as the cluster recovered
  are never blamed on the steady state or on the recovered cluster; a second that straddles the
  steady state's start counts where its midpoint lies. Without a fault everything from the
  steady state on is *before*: that is how the stop condition judges a steady state.
- **per phase**: requests, failures, error rate, requests per second over the phase's span, and
  latency percentiles of the *successful* requests (a failed request's time says how fast it
  failed, not how fast the database answered), with the failures grouped by request and error.
- **application error window**: from the first failure at or after F to the last one, exact
  instants from the `load-failure` records; 0 when no request failed after F.
- **latency recovery**: the baseline is the p95 *before*; the p95 is back once it is within
  `max(2 × baseline, baseline + 10 ms)` (per-second p95s of a healthy cluster on a busy machine
  swing that much). `latency_recovery_s` = s − F for the first s (F or the start of a later
  second) from which the p95 of *all* the remaining successful requests is back, 0 when it
  never left. Judging the remainder rather than single seconds keeps one noisy
  second on a shared machine from deciding, yet a latency that stays high can never pass.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from harness.load import histogram
from harness.measure.common import NotMeasured, clean, driver_of
from harness.measure.faults import FaultRecord, faults_of
from harness.measure.metrics import Metric, declare
from harness.timeline import Record, of_kind

PHASES = ("before", "during", "after")
# "Back at baseline": the p95 within 3x the steady state's, or 25 ms above it, whichever is larger.
# A steady-state p95 of 1-2 ms on loopback moves by more than that from scheduling noise alone on
# a busy 2-core machine; what the check is after is the hundreds of milliseconds of an outage.
LATENCY_TOLERANCE = 3.0
LATENCY_SLACK_MS = 25.0
LATENCY_WINDOW_S = 3.0

METRICS = declare(
    "load",
    Metric("steady_state_error_rate", "steady-state error rate", ""),
    Metric("failed_requests", "failed application requests", "requests"),
    Metric("error_window_s", "application error window", "s"),
    Metric("first_error_after_fault_s", "time to the first application error", "s"),
    Metric("last_error_after_fault_s", "time to the last application error", "s"),
    Metric("latency_recovery_s", "p95 latency back to baseline", "s"),
)

FailureGroup = tuple[str, str, str, int]  # request type, name, error, occurrences


@dataclass(frozen=True)
class PhaseLoad:
    phase: str
    seconds: float
    requests: int
    failures: int
    error_rate: float | None
    rps: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    failure_groups: tuple[FailureGroup, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "requests": self.requests, "failures": self.failures,
                "error_rate": self.error_rate, "rps": self.rps, "p50_ms": self.p50_ms, "p95_ms": self.p95_ms,
                "p99_ms": self.p99_ms, "max_ms": self.max_ms,
                "failure_groups": [{"request_type": t, "name": n, "error": e, "occurrences": c}
                                   for t, n, e, c in self.failure_groups]}


@dataclass(frozen=True)
class ApplicationLoad:
    load: str
    driver: str  # the users' driver: "plain" or "aws-wrapper"
    requests: int
    failures: int
    phases: tuple[PhaseLoad, ...]
    steady_state_error_rate: float | None
    failed_requests: int | None  # after the fault; None without one
    error_window_s: float | None
    first_error_after_fault_s: float | None
    last_error_after_fault_s: float | None
    baseline_p95_ms: float | None
    latency_threshold_ms: float | None
    latency_recovery_s: float | None
    latency_reason: str | None  # why latency_recovery_s is None

    def phase(self, name: str) -> PhaseLoad:
        return next(p for p in self.phases if p.phase == name)

    def as_dict(self) -> dict[str, Any]:
        return {"load": self.load, "driver": self.driver, "requests": self.requests, "failures": self.failures,
                "phases": {p.phase: p.as_dict() for p in self.phases},
                "steady_state_error_rate": self.steady_state_error_rate, "failed_requests": self.failed_requests,
                "error_window_s": self.error_window_s, "first_error_after_fault_s": self.first_error_after_fault_s,
                "last_error_after_fault_s": self.last_error_after_fault_s, "baseline_p95_ms": self.baseline_p95_ms,
                "latency_threshold_ms": self.latency_threshold_ms, "latency_recovery_s": self.latency_recovery_s,
                "latency_reason": self.latency_reason}


def measure_load(records: list[Record], fault: FaultRecord | None) -> dict[str, ApplicationLoad] | NotMeasured:
    """One result per load (by the `load` field of its records), loads in name order, around `fault`."""
    seconds: dict[str, list[Record]] = defaultdict(list)
    for record in of_kind(records, "load"):
        seconds[record["load"]].append(record)
    if not seconds:
        return NotMeasured("no load record: no load ran")
    failures: dict[str, list[Record]] = defaultdict(list)
    for record in of_kind(records, "load-failure"):
        failures[record["load"]].append(record)
    first = faults_of(records)[0].start if fault is not None else None
    bounds = _phase_bounds(records, first, fault.start if fault else None)
    return {load: _measure(load, sorted(seconds[load], key=lambda r: r["start"]), failures[load], bounds,
                           fault.start if fault else None)
            for load in sorted(seconds)}


def _phase_bounds(records: list[Record], first_fault: float | None,
                  fault: float | None) -> dict[str, tuple[float, float]]:
    """[start, end) of each phase in monotonic seconds: the steady state ends at the first fault."""
    phases = list(of_kind(records, "phase"))
    steady = next((r["m"] for r in phases if r["name"] == "steady-state"), float("-inf"))
    if fault is None:
        return {"before": (steady, float("inf")), "during": (float("inf"), float("inf")),
                "after": (float("inf"), float("inf"))}
    recovery = next((r["m"] for r in phases if r["name"] == "recovery" and r["m"] >= fault), float("inf"))
    return {"before": (steady, first_fault if first_fault is not None else fault), "during": (fault, recovery),
            "after": (recovery, float("inf"))}


def _in_phase(name: str, start: float, end: float, bounds: tuple[float, float]) -> bool:
    """Whether the second [start, end) counts in phase `name` (see the module docstring)."""
    low, high = bounds
    if name == "before":
        return low <= (start + end) / 2 and end <= high
    if name == "during":
        return end > low and start < high
    return start >= low


def _measure(load: str, seconds: list[Record], failures: list[Record], bounds: dict[str, tuple[float, float]],
             fault: float | None) -> ApplicationLoad:
    extent = (seconds[0]["start"], seconds[-1]["end"])
    phases = tuple(_phase(name, seconds, failures, bounds[name], extent) for name in PHASES)
    before = phases[0]
    after_fault = [f for f in failures if fault is not None and f["last"] >= fault]
    first = min((max(f["first"], fault) for f in after_fault), default=None) if fault is not None else None
    last = max((f["last"] for f in after_fault), default=None)
    baseline = before.p95_ms
    threshold = max(baseline * LATENCY_TOLERANCE, baseline + LATENCY_SLACK_MS) if baseline is not None else None
    recovery, reason = _latency_recovery(seconds, fault, threshold)
    return ApplicationLoad(
        load=load,
        driver=driver_of(seconds[0]),
        requests=sum(s["requests"] for s in seconds),
        failures=sum(s["failures"] for s in seconds),
        phases=phases,
        steady_state_error_rate=before.error_rate,
        failed_requests=phases[1].failures + phases[2].failures if fault is not None else None,
        error_window_s=None if fault is None else clean(last - first) if first is not None else 0.0,
        first_error_after_fault_s=clean(first - fault) if first is not None else None,
        last_error_after_fault_s=clean(last - fault) if last is not None and fault is not None else None,
        baseline_p95_ms=baseline,
        latency_threshold_ms=clean(threshold) if threshold is not None else None,
        latency_recovery_s=recovery,
        latency_reason=reason,
    )


def _phase(name: str, seconds: list[Record], failures: list[Record], bounds: tuple[float, float],
           extent: tuple[float, float]) -> PhaseLoad:
    inside = [s for s in seconds if _in_phase(name, s["start"], s["end"], bounds)]
    span = _span(name, bounds, extent)
    requests = sum(s["requests"] for s in inside)
    failed = sum(s["failures"] for s in inside)
    times = histogram.merge(s["response_times"] for s in inside)
    groups: Counter[tuple[str, str, str]] = Counter()
    for failure in failures:
        if _in_phase(name, failure["second"], failure["second"] + 1.0, bounds):
            groups[(failure["request_type"], failure["name"], failure["error"])] += failure["occurrences"]
    return PhaseLoad(
        phase=name, seconds=clean(span), requests=requests, failures=failed,
        error_rate=clean(failed / requests) if requests else None,
        rps=clean(requests / span) if span > 0 else None,
        p50_ms=histogram.percentile(times, 0.50), p95_ms=histogram.percentile(times, 0.95),
        p99_ms=histogram.percentile(times, 0.99), max_ms=histogram.maximum(times),
        failure_groups=tuple(sorted(((t, n, e, c) for (t, n, e), c in groups.items()), key=lambda g: (-g[3], g))),
    )


def _span(name: str, bounds: tuple[float, float], extent: tuple[float, float]) -> float:
    """How long the phase lasted while the load ran, by the same rule as its seconds, counting the
    seconds in which no request ended (clients blocked in retries) too."""
    first, stop = extent
    slots = (first + k for k in range(max(0, math.ceil(stop - first - 1e-9))))
    return sum(min(slot + 1.0, stop) - slot for slot in slots if _in_phase(name, slot, min(slot + 1.0, stop), bounds))


def _latency_recovery(seconds: list[Record], fault: float | None,
                      threshold: float | None) -> tuple[float | None, str | None]:
    if fault is None:
        return None, "no fault: nothing to recover from"
    if threshold is None:
        return None, "no successful request before the fault: no baseline"
    later = [s for s in seconds if s["end"] > fault]
    if not later:
        return None, "no request ended after the fault"
    end = later[-1]["end"]

    def within(first: int, until: float) -> bool:
        times = histogram.merge(s["response_times"] for s in later[first:] if s["start"] < until)
        p95 = histogram.percentile(times, 0.95)
        return p95 is not None and p95 <= threshold

    back_from = [False] * len(later)  # whether the p95 is back from later[i] on
    for i in reversed(range(len(later))):
        if later[i]["start"] + LATENCY_WINDOW_S <= end + 1e-6:
            rest_ok = i + 1 == len(later) or later[i + 1]["start"] + LATENCY_WINDOW_S > end + 1e-6 or back_from[i + 1]
            back_from[i] = rest_ok and within(i, later[i]["start"] + LATENCY_WINDOW_S)
        else:  # too close to the end for a whole window: the rest is one window
            back_from[i] = within(i, float("inf"))
    first = next((i for i, back in enumerate(back_from) if back), None)
    if first is None:
        return None, "the p95 after the fault never came back within the threshold"
    return (0.0 if first == 0 else clean(max(0.0, later[first]["start"] - fault))), None
