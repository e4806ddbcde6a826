"""Backtrack (Aurora MySQL): BacktrackDBCluster, DescribeDBClusterBacktracks.

A backtrack answers at once with its record `pending` and the cluster `backtracking`; the job
(`harness/emulator/backtracks.py`) rewinds the cluster in place. Refusals change nothing.

`Force`: on Aurora it is needed when the cluster's binary logging is on (a backtrack breaks
binlog consumers). The emulator's clusters write binlogs for their own continuous backup, not as
the customer's binary logging; the customer's is `binlog_format` in the cluster's parameter group,
and with it on `Force` is required. A forced backtrack of a Blue/Green deployment's blue cluster
breaks the deployment: "the blue/green deployment breaks and switchover is blocked".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

from harness.emulator.api import fault
from harness.emulator.backtracks import Backtrack, to_millisecond
from harness.emulator.models import DBCluster, DBClusterBacktrack, now
from harness.emulator.operations.common import Filters, apply_filters, paginate
from harness.emulator.operations.blue_green import backtrack_breaks_deployments, refuse_during_switchover
from harness.emulator.operations.family import Family
from harness.emulator.operations.parameter_groups import binary_logging
from harness.emulator.operations.state import Region

BACKTRACK_DEADLINE_S = 3600.0  # a rebuild of a large volume; Aurora's take minutes
ONE_MILLISECOND = timedelta(milliseconds=1)

BACKTRACK_FILTERS: Filters = {
    "db-cluster-backtrack-id": attrgetter("identifier"),
    "db-cluster-backtrack-status": attrgetter("status"),
}


def require_backtrack(cluster: DBCluster) -> None:
    """Backtrack exists for Aurora MySQL clusters created with a backtrack window only."""
    if cluster.engine != "aurora-mysql":
        raise fault("InvalidParameterCombination", f"Backtrack is not supported for the {cluster.engine} engine: "
                                                   f"DB cluster {cluster.identifier} does not support Backtrack.")
    if not cluster.backtrack_window:
        raise fault("InvalidDBClusterStateFault", f"Backtrack is not enabled for DB cluster {cluster.identifier}: "
                                                  f"its BacktrackWindow is 0.")


class Backtracks(Family):
    operations = ("BacktrackDBCluster", "DescribeDBClusterBacktracks")

    def backtrack_db_cluster(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        cluster = region.cluster(p["DBClusterIdentifier"])
        require_backtrack(cluster)
        refuse_during_switchover(region, cluster.identifier)
        if cluster.status != "available":
            raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} is {cluster.status}; it "
                                                      f"must be available to backtrack.")
        if cluster.writer_id is None:
            raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} has no DB instance to "
                                                      f"backtrack.")
        asked = to_millisecond(p["BacktrackTo"].astimezone(UTC))
        current = now()
        if asked > current:
            raise fault("InvalidParameterValue", f"BacktrackTo {asked.isoformat()} is in the future; it can't "
                                                 f"be later than the current time.")
        earliest, _ = cluster.backtrack_state()
        if earliest is None and asked < cluster.created and not p.get("UseEarliestTimeOnPointInTimeUnavailable"):
            raise fault("InvalidParameterValue", f"BacktrackTo {asked.isoformat()} is earlier than the creation of "
                                                 f"DB cluster {cluster.identifier} ({cluster.created.isoformat()}).")
        if earliest is None:
            raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} has no backtrack point yet "
                                                      f"(its continuous backup has not started).")
        if asked < earliest:
            if not p.get("UseEarliestTimeOnPointInTimeUnavailable"):
                raise fault("InvalidParameterValue", f"BacktrackTo {asked.isoformat()} is earlier than the earliest "
                                                     f"backtrack time {earliest.isoformat()} of DB cluster "
                                                     f"{cluster.identifier}.")
            asked = to_millisecond(earliest) + (ONE_MILLISECOND if earliest.microsecond % 1000 else timedelta())
        if binary_logging(self.store, cluster) and not p.get("Force"):
            raise fault("InvalidDBClusterStateFault", f"Binary logging is enabled on DB cluster {cluster.identifier} "
                                                      f"(binlog_format): backtracking breaks its binlog consumers. "
                                                      f"Specify Force to backtrack anyway.")
        backtrack_breaks_deployments(region, cluster.identifier)
        record = cluster_backtrack(cluster, asked)
        cluster.status = "backtracking"
        answer = record.describe()  # as requested: the job may be applying it before this returns
        job = Backtrack(region.runtimes[cluster.identifier], record)
        self.jobs.start(f"backtrack {cluster.identifier}", job.run, on_error=job.failed,
                        deadline_s=BACKTRACK_DEADLINE_S)
        return answer

    def describe_db_cluster_backtracks(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        cluster = region.cluster(p["DBClusterIdentifier"])
        if cluster.engine != "aurora-mysql":
            require_backtrack(cluster)
        backtracks = cluster.backtracks[::-1]  # newest first, as AWS lists them
        wanted = p.get("BacktrackIdentifier")
        if wanted:
            backtracks = [b for b in backtracks if b.identifier == wanted]
            if not backtracks:
                raise fault("DBClusterBacktrackNotFoundFault", f"Backtrack {wanted} not found for DB cluster "
                                                               f"{cluster.identifier}.")
        page, marker = paginate(apply_filters(backtracks, p.get("Filters"), BACKTRACK_FILTERS), p)
        return {"DBClusterBacktracks": [b.describe() for b in page], "Marker": marker}


def cluster_backtrack(cluster: DBCluster, to: datetime) -> DBClusterBacktrack:
    """A new backtrack record of `cluster`, listed from now on."""
    record = DBClusterBacktrack(cluster_id=cluster.identifier, backtrack_to=to, backtracked_from=now())
    cluster.backtracks.append(record)
    return record
