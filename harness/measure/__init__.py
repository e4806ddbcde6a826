"""Checkers: pure functions from a recorded timeline to the numbers a game day is judged on.

Record first, judge later (Jepsen's design): nothing here touches a database, so every figure
in a report can be recomputed from the raw timeline. Each checker returns a frozen result with
`as_dict()`, or `NotMeasured` with the reason when the timeline holds no data for it.

Every checker takes the fault its figures are timed from explicitly (`harness.measure.faults`
says which one: the last fault issued). Each checker module declares its metrics (name, label,
unit) beside it (`harness.measure.metrics`); names are unique across checkers (`rto_s`,
`outage_s`, `lost_count`, `lag_p99_s`...), so a target's `metric` names exactly one measured
value; `metric_value` finds it in `measure_all`'s output.

`rto` and `data_loss` (and every checker of the write stream) judge the plain driver's write
probe. When another driver's write probe or load ran too (`harness.drivers`), `by_driver` holds
each driver's RTO and data loss (from its write probe) and the errors its loads saw, so the
report can compare them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.measure.availability import ReadAvailability, measure_read_availability
from harness.measure.common import PLAIN, NotMeasured, drivers_in
from harness.measure.data_loss import DataLoss, measure_data_loss
from harness.measure.lag import VisibilityLag, measure_visibility_lag
from harness.measure.load import ApplicationLoad, measure_load
from harness.measure.restore import RestoreExactness, measure_restore
from harness.measure.rto import WriterRecovery, measure_rto
from harness.measure.topology_views import TopologyViews, measure_topology_views
from harness.measure import fault_window as _fault_window  # noqa: F401 - declares its metrics
from harness.measure.faults import FaultRecord, faults_of, the_fault
from harness.measure.metrics import REGISTRY, by_checker
from harness.timeline import Record

__all__ = [
    "METRICS",
    "ApplicationLoad",
    "DataLoss",
    "NotMeasured",
    "ReadAvailability",
    "VisibilityLag",
    "WriterRecovery",
    "measure_all",
    "measure_by_driver",
    "measure_data_loss",
    "measure_load",
    "measure_read_availability",
    "measure_rto",
    "measure_topology_views",
    "measure_visibility_lag",
    "metric_value",
]

# The values a verdict can judge, by checker, as each checker module declares them (`metrics.py`);
# names are unique across checkers.
METRICS: dict[str, frozenset[str]] = {name: names for name, names in by_checker().items()
                                      if name in ("rto", "data_loss", "read_availability", "visibility_lag",
                                                  "topology_views", "load", "restore")}
PER_PROBE = {"read_availability": "probes", "visibility_lag": "probes", "load": "loads"}  # checker → its key


def measure_all(records: list[Record]) -> dict[str, Any]:
    """Every checker's result as plain data (JSON-ready), each marked `measured` true or false.

    Figures "after the fault" are timed from the fault the rule picks (`faults.the_fault`: the
    last one), named under `fault`; `faults` gives each fault's own RTO, over its own window (up
    to the next fault), so a scenario with several faults has one `rto_s` per fault.
    """
    fault = the_fault(records)
    measured = {
        "fault": fault.as_dict() if fault else None,
        "rto": _entry(measure_rto(records, fault)),
        "data_loss": _entry(measure_data_loss(records, fault)),
        "read_availability": _per_probe(measure_read_availability(records, fault)),
        "visibility_lag": _per_probe(measure_visibility_lag(records)),
        "load": _per_probe(measure_load(records, fault), key="loads"),
        "topology_views": _entry(measure_topology_views(records, fault)),
        "faults": [{**each.as_dict(), "rto": _entry(measure_rto(records, each))} for each in faults_of(records)],
    }
    if any(r["kind"] == "restore" for r in records):
        measured["restore"] = _entry(measure_restore(records))
    if any(driver != PLAIN for driver in drivers_in(records, BY_DRIVER_KINDS)):
        measured["by_driver"] = measure_by_driver(records, fault)
    return measured


BY_DRIVER_KINDS = ("write", "load")
LOAD_BY_DRIVER = ("requests", "failed_requests", "error_window_s", "last_error_after_fault_s", "latency_recovery_s")


def measure_by_driver(records: list[Record], fault: FaultRecord | None) -> dict[str, Any]:
    """{"measured": True, "drivers": {driver: {"rto": ..., "data_loss": ..., "loads": {...}}}} for
    every driver whose write probe or load ran, the plain driver first (`measure_all` adds it when
    a driver other than the plain one ran). A driver without a write probe has its RTO and data
    loss "not measured"; `loads` holds the errors each of its loads saw after the fault."""
    drivers = drivers_in(records, BY_DRIVER_KINDS)
    if not drivers:
        return NotMeasured("no write or load record: no write probe and no load ran").as_dict()
    loads = measure_load(records, fault)
    loads = {} if isinstance(loads, NotMeasured) else loads
    return {"measured": True, "drivers": {
        driver: {"rto": _entry(measure_rto(records, fault, driver)),
                 "data_loss": _entry(measure_data_loss(records, fault, driver)),
                 "loads": {name: {key: load.as_dict()[key] for key in LOAD_BY_DRIVER}
                           for name, load in loads.items() if load.driver == driver}}
        for driver in drivers}}


def metric_value(
    measurements: dict[str, Any], metric: str, probe: str | None = None
) -> float | int | None:
    """The measured value a target's `metric` names; None when it was not measured.

    Per-probe metrics (and per-load ones) take `probe` (the load's name); without it they give
    the worst probe (lowest availability, highest lag or outage), and None if any probe has no
    value: a probe that never saw the writes cannot be shown to meet a target.
    """
    for name in ("rto", "data_loss", "topology_views", "restore"):
        if metric in METRICS[name]:
            return measurements.get(name, {}).get(metric)
    for name in PER_PROBE:
        if metric not in METRICS[name]:
            continue
        entry = measurements[name]
        if not entry["measured"]:
            return None
        values = [r[metric] for key, r in entry[PER_PROBE[name]].items() if probe in (None, key)]
        if not values:
            raise KeyError(f"no {'load' if name == 'load' else 'read probe'} {probe!r} in the measurements")
        if any(v is None for v in values):
            return None
        return min(values) if REGISTRY[metric].higher_is_better else max(values)
    known = sorted(set().union(*METRICS.values()))
    raise KeyError(f"unknown metric {metric!r}; known metrics: {', '.join(known)}")


def _entry(result: WriterRecovery | DataLoss | TopologyViews | RestoreExactness | NotMeasured) -> dict[str, Any]:
    if isinstance(result, NotMeasured):
        return result.as_dict()
    return {"measured": True, **result.as_dict()}


def _per_probe(
    results: Mapping[str, ReadAvailability | VisibilityLag | ApplicationLoad] | NotMeasured, key: str = "probes",
) -> dict[str, Any]:
    if isinstance(results, NotMeasured):
        return results.as_dict()
    return {"measured": True, key: {name: r.as_dict() for name, r in results.items()}}
