"""Two views of the topology side by side: the RDS API's and Aurora's own SQL's.

The topology probe records what DescribeDBClusters says (`topology` records); the surface probe
records what `aurora_replica_status()` / `information_schema.replica_host_status` says through
the cluster endpoint (`surface` records). Aurora-aware drivers trust the second, dashboards and
runbooks the first; after a failover they change at different moments. For the fault this
gives when each view first named a writer other than the one before the fault, and the highest
replica lag the SQL view reported for each reader.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.measure.common import NotMeasured, clean
from harness.measure.faults import FaultRecord
from harness.measure.metrics import Metric, declare
from harness.timeline import Record, of_kind

METRICS = declare(
    "topology_views",
    Metric("api_writer_changed_after_s", "writer change seen by the RDS API", "s"),
    Metric("sql_writer_changed_after_s", "writer change seen by Aurora's SQL", "s"),
)


@dataclass(frozen=True)
class TopologyViews:
    writer_before: str | None
    api_writer: str | None  # the last writer each view named
    sql_writer: str | None
    api_writer_changed_after_s: float | None  # since the fault; None: that view never changed writer
    sql_writer_changed_after_s: float | None
    sql_samples: int
    sql_max_lag_ms: dict[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_topology_views(records: list[Record], fault: FaultRecord | None) -> TopologyViews | NotMeasured:
    surface = list(of_kind(records, "surface"))
    if not surface:
        return NotMeasured("no surface record: Aurora's SQL topology was never read")
    api = [r for r in of_kind(records, "topology") if r.get("writer")]
    start = fault.start if fault else None
    before = [r for r in api if start is None or r["m"] <= start]
    writer_before = before[-1]["writer"] if before else (api[0]["writer"] if api else None)

    def changed_after(views: list[Record]) -> float | None:
        if start is None:
            return None
        for record in views:
            if record["m"] > start and record.get("writer") not in (None, writer_before):
                return clean(record["m"] - start)
        return None

    lags: dict[str, float | None] = {}
    for record in surface:
        for reader, lag in (record.get("lag_ms") or {}).items():
            if lag is not None:
                lags[reader] = max(lag, lags.get(reader) or 0.0)
            else:
                lags.setdefault(reader, None)
    named = [r for r in surface if r.get("writer")]
    return TopologyViews(
        writer_before=writer_before, api_writer=api[-1]["writer"] if api else None,
        sql_writer=named[-1]["writer"] if named else None, api_writer_changed_after_s=changed_after(api),
        sql_writer_changed_after_s=changed_after(named), sql_samples=len(surface), sql_max_lag_ms=dict(sorted(lags.items())))
