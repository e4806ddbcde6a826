"""The load checker over hand-made histories whose answers are known to the second."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.load import histogram
from harness.measure import NotMeasured, measure_all, measure_load, metric_value
from harness.measure.faults import the_fault
from tests.unit.test_measure import with_fault

Record = dict[str, Any]
T0 = 1_700_000_000.0  # wall clock of monotonic 0


def second(start: float, requests: int, failures: int = 0, ms: float = 2.0, load: str = "oltp/naive",
           slow: int = 0, slow_ms: float = 0.0) -> Record:
    """One second of load: `requests` of which `failures` failed; successes take `ms` (`slow` take `slow_ms`)."""
    times: histogram.Histogram = {}
    if requests - failures - slow:
        histogram.add(times, ms, requests - failures - slow)
    if slow:
        histogram.add(times, slow_ms, slow)
    return {"kind": "load", "t": T0 + start, "m": start, "load": load, "start": start, "end": start + 1.0,
            "users": 10, "workers": 0, "requests": requests, "failures": failures, "rps": float(requests),
            "response_times": times, "names": []}


def failure(first: float, last: float, occurrences: int, error: str = "08006: connection lost",
            name: str = "place order", load: str = "oltp/naive") -> Record:
    return {"kind": "load-failure", "t": T0 + first, "m": first, "load": load, "second": float(int(first)),
            "request_type": "cluster endpoint", "name": name, "error": error, "occurrences": occurrences,
            "first": first, "last": last}


def phase(name: str, at: float) -> Record:
    return {"kind": "phase", "t": T0 + at, "m": at, "name": name}


def fault(start: float) -> Record:
    return {"kind": "fault", "t": T0 + start + 0.1, "m": start + 0.1, "name": "failover", "start": start,
            "end": start + 0.1, "detail": {}}


def failover_history() -> list[Record]:
    """Load from 0 to 20 s; steady state from 3 s; fault at 10.5 s; recovery phase at 16 s.

    100 requests a second at 2 ms; the second the fault hits (10-11) has 10 failures after it,
    seconds 11-15 fail 40 of 60, second 15 has 20 slow (900 ms) successes, then all is well.
    """
    records = [phase("steady-state", 3.0), fault(10.5), phase("recovery", 16.0)]
    for start in range(20):
        if start == 10:
            records += [second(10, 100, 10), failure(10.6, 10.9, 10)]
        elif 11 <= start < 15:
            records += [second(start, 60, 40), failure(start + 0.05, start + 0.95, 40)]
        elif start == 15:
            records.append(second(15, 100, 0, slow=20, slow_ms=900.0))
        else:
            records.append(second(start, 100))
    return records


def test_phases_split_at_the_fault_and_the_recovery_counting_straddling_seconds_as_during() -> None:
    (result,) = measure_load(*with_fault(failover_history())).values()
    before, during, after = result.phases
    # before: seconds 3..9 whole (second 10 straddles the fault: during); during: 10..15; after: 16..19
    assert (before.requests, before.failures, before.seconds) == (700, 0, 7.0)
    assert (during.requests, during.failures) == (100 + 4 * 60 + 100, 10 + 4 * 40)
    assert during.seconds == 6.0 and during.rps == pytest.approx(440 / 6)
    assert (after.requests, after.failures, after.seconds, after.rps) == (400, 0, 4.0, 100.0)
    assert before.error_rate == 0.0 and during.error_rate == pytest.approx(170 / 440, abs=1e-6)
    assert before.p95_ms == 2.0 and during.max_ms == 900.0 and after.p99_ms == 2.0
    assert result.requests == 2000 - 40 * 4 - 0 and result.failures == 170
    assert result.steady_state_error_rate == 0.0 and result.failed_requests == 170


def test_failures_are_grouped_per_phase_with_their_counts() -> None:
    history = failover_history() + [failure(17.2, 17.3, 2, error="25006: read-only", name="pay order")]
    (result,) = measure_load(history, the_fault(history)).values()
    assert result.phase("before").failure_groups == ()
    assert result.phase("during").failure_groups == (("cluster endpoint", "place order", "08006: connection lost",
                                                       170),)
    assert result.phase("after").failure_groups == (("cluster endpoint", "pay order", "25006: read-only", 2),)


def test_the_error_window_runs_from_the_first_to_the_last_failure_after_the_fault() -> None:
    (result,) = measure_load(*with_fault(failover_history())).values()
    assert result.first_error_after_fault_s == pytest.approx(0.1)
    assert result.last_error_after_fault_s == pytest.approx(14.95 - 10.5)
    assert result.error_window_s == pytest.approx(14.95 - 10.6)


def test_failures_before_the_fault_do_not_open_the_window_and_a_clean_run_has_none() -> None:
    history = failover_history() + [failure(4.2, 4.3, 1)]
    (result,) = measure_load(history, the_fault(history)).values()
    assert result.first_error_after_fault_s == pytest.approx(0.1)
    clean = [phase("steady-state", 0.0), fault(5.5)] + [second(s, 50) for s in range(10)]
    (quiet,) = measure_load(clean, the_fault(clean)).values()
    assert quiet.error_window_s == 0.0 and quiet.failed_requests == 0 and quiet.first_error_after_fault_s is None


def test_a_failure_that_straddles_the_fault_counts_from_the_fault() -> None:
    history = [fault(5.5)] + [second(s, 50) for s in range(10)] + [failure(5.2, 6.0, 3)]
    (result,) = measure_load(history, the_fault(history)).values()
    assert result.first_error_after_fault_s == 0.0 and result.error_window_s == pytest.approx(0.5)


def test_latency_returns_when_the_rest_of_the_run_is_back_within_the_threshold() -> None:
    (result,) = measure_load(*with_fault(failover_history())).values()
    # baseline 2 ms → threshold max(3 × 2, 2 + 25) = 27 ms; second 15 holds 20 slow of 100, so the
    # p95 of everything from 15 on is 900 ms, from 16 on it is 2 ms: back at 16 s, 5.5 s after the fault.
    assert result.baseline_p95_ms == 2.0 and result.latency_threshold_ms == 27.0
    assert result.latency_recovery_s == pytest.approx(5.5)


def test_one_noisy_second_late_in_the_run_does_not_undo_the_return() -> None:
    history = failover_history()
    history[-1] = second(19, 100, slow=10, slow_ms=50.0)  # a tenth at 50 ms in the last second alone
    (result,) = measure_load(history, the_fault(history)).values()
    assert result.latency_recovery_s == pytest.approx(5.5)


def test_a_short_spike_is_not_diluted_by_a_long_calm_run_after_it() -> None:
    history = failover_history() + [second(s, 100) for s in range(20, 200)]
    (result,) = measure_load(history, the_fault(history)).values()
    assert result.latency_recovery_s == pytest.approx(5.5)


def test_latency_that_never_left_the_baseline_recovers_at_once_and_one_that_stays_high_never() -> None:
    calm = [phase("steady-state", 0.0), fault(4.5)] + [second(s, 50, ms=3.0) for s in range(10)]
    (result,) = measure_load(calm, the_fault(calm)).values()
    assert result.latency_recovery_s == 0.0
    stuck = [phase("steady-state", 0.0), fault(4.5)] + [second(s, 50, ms=3.0 if s < 5 else 40.0) for s in range(10)]
    (result,) = measure_load(stuck, the_fault(stuck)).values()
    assert result.latency_recovery_s is None and "never came back" in result.latency_reason


def test_without_a_fault_everything_from_the_steady_state_is_before() -> None:
    """How the stop condition sees a steady state: warm-up seconds before it do not count."""
    history = [second(0, 10, 10), phase("steady-state", 1.2)] + [second(s, 100, 25) for s in range(1, 5)]
    (result,) = measure_load(history, the_fault(history)).values()
    assert result.steady_state_error_rate == 0.25
    assert result.error_window_s is None and result.failed_requests is None
    assert result.latency_recovery_s is None and result.latency_reason.startswith("no fault")


def test_seconds_without_requests_still_count_in_the_phase_span() -> None:
    """Resilient clients blocked in retries finish no request for seconds: throughput, not time, drops."""
    history = [phase("steady-state", 0.0), fault(4.5), phase("recovery", 9.0)]
    history += [second(s, 100) for s in range(5)] + [second(8, 40)] + [second(s, 100) for s in range(9, 12)]
    (result,) = measure_load(history, the_fault(history)).values()
    assert result.phase("during").seconds == 5.0 and result.phase("during").rps == pytest.approx(140 / 5)


def test_the_last_partial_second_counts_for_its_real_length() -> None:
    history = [phase("steady-state", 0.0)] + [second(s, 100) for s in range(3)]
    history[-1]["end"] = 2.5  # the load stopped half way through its last second
    history[-1]["requests"] = 50
    (result,) = measure_load(history, the_fault(history)).values()
    assert result.phase("before").seconds == 2.5 and result.phase("before").rps == 100.0


def test_each_load_is_judged_on_its_own() -> None:
    history = [phase("steady-state", 0.0), fault(4.5)]
    for s in range(8):
        history.append(second(s, 50, 20 if s == 5 else 0, load="oltp/naive"))
        history.append(second(s, 50, load="oltp/resilient", slow=10 if s == 5 else 0, slow_ms=4000.0))
    history.append(failure(5.1, 5.9, 20, load="oltp/naive"))
    results = measure_load(history, the_fault(history))
    assert list(results) == ["oltp/naive", "oltp/resilient"]
    assert results["oltp/naive"].failed_requests == 20 and results["oltp/resilient"].failed_requests == 0
    assert results["oltp/resilient"].latency_recovery_s == pytest.approx(1.5)


def test_no_load_is_not_measured_and_measure_all_reports_the_loads() -> None:
    assert isinstance(measure_load(*with_fault([fault(1.0)])), NotMeasured)
    measurements = json.loads(json.dumps(measure_all(failover_history())))
    assert set(measurements["load"]["loads"]) == {"oltp/naive"}
    assert metric_value(measurements, "failed_requests") == 170
    assert metric_value(measurements, "latency_recovery_s", probe="oltp/naive") == pytest.approx(5.5)
    with pytest.raises(KeyError, match="no load 'other'"):
        metric_value(measurements, "error_window_s", probe="other")
