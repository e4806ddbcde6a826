"""The driver dimension: RTO, outage and data loss per write probe's driver, on hand-made timelines.

The plain driver's write probe and the AWS Advanced Python Wrapper's write to the same ledger
under their own run ids; their seqs overlap (both count from 1), so only the `driver` field
keeps them apart. Records without `driver` are the plain driver's (timelines from before).
"""

from __future__ import annotations

import json
from typing import Any

from harness.measure import (
    measure_all,
    measure_by_driver,
    measure_data_loss,
    measure_rto,
    metric_value,
)
from harness.measure.common import NotMeasured, ack_times, drivers_in, writes_of
from harness.measure.fault_window import longest_write_gap
from harness.measure.faults import the_fault
from harness.report.evidence import rto_by_driver_html, verdict_table_html
from tests.unit.test_measure import FAILOVER, fault, ledger, write
from tests.unit.test_measure_load import failure, second
from tests.unit.test_measure import with_fault

Record = dict[str, Any]
WRAPPER = "aws-wrapper"


def wrapped(record: Record, driver: str = WRAPPER) -> Record:
    return {**record, "driver": driver}


# The wrapper saw the same fault (at 1.5) differently: one unknown attempt (FailoverSuccessError
# on the INSERT in flight), then acknowledged again at 9.0, later than the plain driver's 5.25.
WRAPPER_FAILOVER = [wrapped(r) for r in [
    write(1, 0.0, 0.05),
    write(2, 1.0, 1.05),
    write(3, 1.4, 8.0, "unknown", "FailoverSuccessError: the active connection has changed"),
    write(4, 8.5, 9.0),
    write(5, 9.1, 9.2),
]]
# Plain: seqs 1..7, 3 and 5 failed, 4 unknown and absent. Wrapper: seqs 1..5, 3 unknown and present.
BOTH = [*FAILOVER, *WRAPPER_FAILOVER, ledger([[1, 2], [6, 7]]),
        wrapped(ledger([[1, 5]]))]


def test_plain_checkers_ignore_the_wrappers_writes() -> None:
    assert measure_rto(BOTH, the_fault(BOTH)) == measure_rto(FAILOVER, the_fault(FAILOVER))
    plain_only = [*FAILOVER, ledger([[1, 2], [6, 7]])]
    assert measure_data_loss(BOTH, the_fault(BOTH)) == measure_data_loss(plain_only, the_fault(plain_only))
    assert ack_times(BOTH) == ack_times(FAILOVER)
    assert longest_write_gap(BOTH, the_fault(BOTH)) == longest_write_gap(FAILOVER, the_fault(FAILOVER))


def test_records_without_a_driver_are_the_plain_drivers() -> None:
    explicit = [wrapped(r, "plain") if r["kind"] in ("write", "ledger") else r for r in FAILOVER]
    assert measure_rto(explicit, the_fault(explicit)) == measure_rto(FAILOVER, the_fault(FAILOVER))
    assert writes_of(BOTH) == [r for r in FAILOVER if r["kind"] == "write"]
    assert drivers_in(BOTH) == ["plain", WRAPPER]
    assert drivers_in(WRAPPER_FAILOVER) == [WRAPPER]


def test_the_wrappers_rto_and_outage_from_its_own_attempts() -> None:
    result = measure_rto(BOTH, the_fault(BOTH), driver=WRAPPER)
    assert result.recovered and result.disrupted
    assert result.rto_s == 7.5  # 9.0 - 1.5
    assert result.outage_s == 7.6  # 9.0 - 1.4, the start of the attempt in flight
    assert result.resolution_s == 0.5
    assert (result.failed_attempts, result.unknown_attempts) == (0, 1)
    assert dict(result.errors) == {"FailoverSuccessError: the active connection has changed": 1}
    assert measure_rto(BOTH, the_fault(BOTH)).rto_s == 3.75  # the plain driver's, unchanged


def test_data_loss_per_driver_against_its_own_ledger() -> None:
    plain, wrapper = measure_data_loss(BOTH, the_fault(BOTH)), measure_data_loss(BOTH, the_fault(BOTH), driver=WRAPPER)
    assert (plain.acknowledged, plain.lost_count, plain.unknown_absent, plain.unknown_committed) == (4, 0, 1, 0)
    assert (wrapper.acknowledged, wrapper.lost_count, wrapper.unknown_committed) == (4, 0, 1)
    # The wrapper's seq 4 missing from *its* ledger is loss, whatever the plain ledger holds.
    lossy = [*FAILOVER, *WRAPPER_FAILOVER, ledger([[1, 7]]), wrapped(ledger([[1, 3], [5, 5]]))]
    assert measure_data_loss(lossy, the_fault(lossy), driver=WRAPPER).lost == (4,)
    assert measure_data_loss(lossy, the_fault(lossy)).lost_count == 0


def test_a_driver_that_did_not_run_is_not_measured() -> None:
    assert isinstance(measure_rto(FAILOVER, the_fault(FAILOVER), driver=WRAPPER), NotMeasured)
    assert "aws-wrapper" in measure_rto(FAILOVER, the_fault(FAILOVER), driver=WRAPPER).reason
    assert isinstance(measure_data_loss(*with_fault([*FAILOVER, ledger([[1, 7]])]), driver=WRAPPER), NotMeasured)
    # A wrapper that wrote but whose ledger read did not run: RTO measured, loss not.
    no_ledger = [*FAILOVER, *WRAPPER_FAILOVER, ledger([[1, 7]])]
    assert measure_by_driver(no_ledger, the_fault(no_ledger))["drivers"][WRAPPER]["data_loss"]["measured"] is False
    assert measure_by_driver(*with_fault([fault(1.0)])) == {"measured": False,
                                               "reason": "no write or load record: no write probe and no load ran"}


def test_measure_all_adds_by_driver_only_when_another_driver_wrote() -> None:
    assert "by_driver" not in measure_all([*FAILOVER, ledger([[1, 7]])])
    measurements = json.loads(json.dumps(measure_all(BOTH)))
    by_driver = measurements["by_driver"]
    assert by_driver["measured"] is True
    assert list(by_driver["drivers"]) == ["plain", WRAPPER]
    assert by_driver["drivers"]["plain"]["rto"]["rto_s"] == measurements["rto"]["rto_s"] == 3.75
    assert by_driver["drivers"][WRAPPER]["rto"]["rto_s"] == 7.5
    assert by_driver["drivers"][WRAPPER]["data_loss"]["lost_count"] == 0
    assert metric_value(measurements, "rto_s") == 3.75  # targets still judge the plain driver


def test_the_verdict_table_compares_the_drivers_only_when_both_ran() -> None:
    measurements = json.loads(json.dumps(measure_all(BOTH)))
    html = verdict_table_html("s", {"verdicts": [], "measurements": measurements})
    assert "RTO by driver" in html
    assert "AWS Advanced Python Wrapper" in html and "7.500 s" in html and "3.750 s" in html
    plain = json.loads(json.dumps(measure_all([*FAILOVER, ledger([[1, 7]])])))
    assert "RTO by driver" not in verdict_table_html("s", {"verdicts": [], "measurements": plain})
    assert rto_by_driver_html({}) == ""


def loads(naive_failures: int) -> list[Record]:
    """Two loads through the fault at 1.5: the naive client on the plain driver fails
    `naive_failures` requests in second 2 (2.2 to 2.7), the wrapper's load none."""
    records: list[Record] = []
    for start in range(6):
        failed = naive_failures if start == 2 else 0
        records.append(second(start, 50, failed, load="oltp/naive"))
        records.append(wrapped(second(start, 40, 0, load="oltp/aws-wrapper")))
    if naive_failures:
        records.append(failure(2.2, 2.7, naive_failures, load="oltp/naive"))
    return records


def test_each_drivers_loads_are_compared_beside_its_rto() -> None:
    by_driver = json.loads(json.dumps(measure_all([*BOTH, *loads(12)])))["by_driver"]["drivers"]
    assert by_driver["plain"]["loads"] == {"oltp/naive": {
        "requests": 300, "failed_requests": 12, "error_window_s": 0.5, "last_error_after_fault_s": 1.2,
        "latency_recovery_s": by_driver["plain"]["loads"]["oltp/naive"]["latency_recovery_s"]}}
    assert by_driver[WRAPPER]["loads"]["oltp/aws-wrapper"]["failed_requests"] == 0
    assert by_driver[WRAPPER]["rto"]["rto_s"] == 7.5
    html = rto_by_driver_html(by_driver)
    assert "oltp/naive: 12 failed (300 requests in all), errors for 0.500 s" in html
    assert "oltp/aws-wrapper: none" in html


def test_a_load_through_the_wrapper_alone_still_compares_the_drivers() -> None:
    """No wrapper write probe: its RTO is not measured, its load is."""
    measurements = json.loads(json.dumps(measure_all([*FAILOVER, ledger([[1, 7]]), *loads(0)])))
    by_driver = measurements["by_driver"]["drivers"]
    assert list(by_driver) == ["plain", WRAPPER]
    assert by_driver[WRAPPER]["rto"]["measured"] is False
    assert by_driver[WRAPPER]["loads"]["oltp/aws-wrapper"]["failed_requests"] == 0
    assert measurements["load"]["loads"]["oltp/aws-wrapper"]["driver"] == WRAPPER
    assert measurements["load"]["loads"]["oltp/naive"]["driver"] == "plain"
    # Plain loads alone add no comparison.
    plain_only = [r for r in loads(3) if r.get("driver") != WRAPPER]
    assert "by_driver" not in measure_all([*FAILOVER, ledger([[1, 7]]), *plain_only])
