"""The same fault seen through different drivers: each one's RTO and load errors side by side."""

from __future__ import annotations

from harness.drivers import DRIVER_TITLES
from harness.errors import ScenarioError
from harness.judgements import Evidence
from harness.measure import measure_by_driver
from harness.measure.common import drivers_in
from harness.verdicts import Verdict, judge_fact

__all__ = ["driver_comparison"]


def driver_comparison(evidence: Evidence) -> Verdict:
    """Every driver's write probe saw the writes come back (its RTO was measured) and every
    driver's load was measured; the verdict says how they compare."""
    by_driver = measure_by_driver(evidence.records, evidence.fault).get("drivers", {})
    if len(by_driver) < 2:
        raise ScenarioError("comparing drivers needs a write probe or a load through the AWS Advanced Python "
                            "Wrapper too")
    writers = drivers_in(evidence.records)
    parts, holds = [], True
    for driver, seen in by_driver.items():
        said = []
        if driver in writers:
            value = seen["rto"].get("rto_s")
            holds = holds and value is not None
            said.append("RTO not measured" if value is None
                        else f"RTO {value:.3f} s (outage {seen['rto'].get('outage_s'):.3f} s)")
        for name, load in seen["loads"].items():
            failed = load["failed_requests"]
            holds = holds and failed is not None
            said.append(f"load {name}: {failed} failed requests over {load['error_window_s']:.3f} s" if failed
                        else f"load {name}: no failed request" if failed == 0 else f"load {name}: not measured")
        parts.append(f"{DRIVER_TITLES[driver]}: {', '.join(said)}")
    return judge_fact("RTO by driver", holds, "; ".join(parts))
