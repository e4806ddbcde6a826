"""Recovery from a bad change: the bad change itself, snapshots and restores, as actions.

The question a game day answers: "someone deleted every order at 14:03:27.512; restore the
cluster to just before it: is every acknowledged write before that moment back, is nothing after
it there, and how long did it take?" Every time here is on the **server's** clock, as restore
points are; the probes measured the offset between the harness's clock and the server's.

A restore creates a cluster (billable on AWS): it happens only where the environment's creation
policy allows it, under its name prefix, tagged as the harness's own, and the rollback deletes it
(and the snapshot) at the end of the scenario, whatever cluster it came from.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from harness.actions import Action, Context
from harness.cluster import AuroraCluster
from harness.dialects import workload_dialect_for
from harness.errors import ScenarioError
from harness.probes import ProbeSet
from harness.timeline import Timeline, read_timeline, to_ranges

__all__ = ["Backtrack", "BadChange", "RestoreCluster", "TakeSnapshot", "read_ledgers"]

RESTORE_TIMEOUT_S = 3600.0  # Aurora says a restore "can take hours"; an emulator one takes seconds
FIRST_WRITE_TIMEOUT_S = 300.0
_names = itertools.count(1)


def epoch(moment: datetime) -> float:
    return moment.timestamp()


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class BadChange(Action):
    """Delete every order this run's load placed, through the cluster endpoint (only this run's:
    on a real cluster a game day deletes nothing of anyone else's), and record when it ran on the
    server's clock: the restore point a user would pick is just before it."""

    timeline: Timeline
    run_id: str
    name: ClassVar[str] = "bad-change"

    def describe(self) -> str:
        return "a bad change: DELETE every order of this run (gameday_orders)"

    def apply(self, context: Context) -> dict[str, Any]:
        cut = context.cut
        workload = workload_dialect_for(cut.dialect.engine)
        conn = cut.dialect.connect(*cut.endpoint(), cut.credentials, connect_timeout=5, statement_timeout=60,
                                   application_name="gameday-bad-change")
        try:
            start = time.monotonic()
            server_start = cut.dialect.server_time(conn)
            rows = workload.delete_orders(conn, self.run_id)
            server_end = cut.dialect.server_time(conn)
            end = time.monotonic()
            # Orders created before it but committed after its snapshot survive it: in flight across it.
            survivors = workload.count_orders(conn, self.run_id, created_by=server_start)
        finally:
            conn.close()
        if rows == 0:
            raise ScenarioError("the bad change deleted no order: start a load before it ('Given a load of ...')")
        self.timeline.record("bad-change", start=start, end=end, server_start=server_start, server_end=server_end,
                             rows=rows, survivors=survivors,
                             statement="DELETE FROM gameday_orders WHERE run_id = <this run>")
        return {"rows": rows, "server_start": server_start, "server_end": server_end}


@dataclass
class TakeSnapshot(Action):
    """CreateDBClusterSnapshot, waited for until `available`; deleted at the end (the harness's own).
    Its boundary is the interval from the request to its completion, on the server's clock."""

    timeline: Timeline
    run_id: str
    clock_offset_s: float
    snapshot: str = field(default="", init=False)
    name: ClassVar[str] = "snapshot"

    def describe(self) -> str:
        return f"CreateDBClusterSnapshot {self.snapshot or '(named when taken)'}"

    def apply(self, context: Context) -> dict[str, Any]:
        policy = context.environment.creation_policy()
        cluster = context.cut.cluster
        self.snapshot = policy.name(cluster.identifier, "snap", self.run_id[:8], str(next(_names)))
        start, requested = time.monotonic(), time.time() + self.clock_offset_s
        cluster.take_snapshot(self.snapshot, policy.tags(self.run_id))
        cluster.wait_until(lambda: cluster.snapshot(self.snapshot)["Status"] == "available", RESTORE_TIMEOUT_S,
                           f"snapshot {self.snapshot} available")
        available, done = time.monotonic(), time.time() + self.clock_offset_s
        described = cluster.snapshot(self.snapshot)
        self.timeline.record("snapshot", snapshot=self.snapshot, start=start, end=available, server_requested=requested,
                             server_available=done, create_time=epoch(described["SnapshotCreateTime"]))
        return {"snapshot": self.snapshot}

    def rollback(self, context: Context) -> str | None:
        if not self.snapshot:
            return None
        context.cut.cluster.delete_snapshot(self.snapshot)
        return f"deleted snapshot {self.snapshot}"


@dataclass
class RestoreCluster(Action):
    """RestoreDBClusterToPointInTime (to a point, or to the latest restorable time) or
    RestoreDBClusterFromSnapshot into a new cluster, then CreateDBInstance on it (a restore gives a
    cluster without instances, as on AWS), then the restored writer's first acknowledged write.

    What it records (`restore`, `restore-ledger`): the request, the boundary (the point on the
    server's clock, or the interval a snapshot or the latest restorable time leaves open), when the
    cluster and its writer were available and when it first acknowledged a write (restore time),
    and what the restored cluster holds of each write probe's ledger and of this run's orders.
    """

    timeline: Timeline
    run_id: str
    how: str  # point-in-time | latest | snapshot
    probes: ProbeSet | None
    point: float | None = None  # server epoch seconds, for a point-in-time restore
    snapshot: str | None = None
    snapshot_window: tuple[float, float] | None = None  # server epoch seconds, for a snapshot restore
    clock_offset_s: float = 0.0
    with_orders: bool = False  # a load placed orders: count what the restored cluster holds of them
    target: str = field(default="", init=False)
    restored: AuroraCluster | None = field(default=None, init=False)
    name: ClassVar[str] = "restore"

    def describe(self) -> str:
        into = f" into {self.target}" if self.target else " into a new cluster"
        if self.how == "snapshot":
            return f"RestoreDBClusterFromSnapshot {self.snapshot or '(the snapshot)'}{into}, then CreateDBInstance"
        when = ("the latest restorable time" if self.how == "latest" else
                utc(self.point).isoformat(timespec="microseconds") if self.point is not None else "the restore point")
        return f"RestoreDBClusterToPointInTime to {when}{into}, then CreateDBInstance"

    def apply(self, context: Context) -> dict[str, Any]:
        policy = context.environment.creation_policy()
        source = context.cut.cluster
        self.target = policy.name(source.identifier, "r", self.run_id[:8], str(next(_names)))
        tags = policy.tags(self.run_id)
        start = time.monotonic()
        low, high = self._boundary(source)
        if self.how == "snapshot":
            self.restored = source.restore_from_snapshot(str(self.snapshot), self.target, tags)
        else:
            self.restored = source.restore_to_point_in_time(self.target, None if self.how == "latest"
                                                            else utc(float(self.point)), tags)
        if self.how == "latest":
            high = max(high, epoch(source.restorable_window()[1] or utc(high)))
        restored = self.restored
        restored.wait_until(lambda: restored.describe()["Status"] == "available", RESTORE_TIMEOUT_S,
                            f"restored cluster {self.target} available")
        cluster_available = time.monotonic()
        restored.add_instance(policy.name(self.target, "1"), policy.instance_class, tags)
        restored.wait_settled(timeout=RESTORE_TIMEOUT_S)
        writer_available = time.monotonic()
        first_ack = self._first_write(context)
        self.timeline.record("restore", how=self.how, source=source.identifier, target=self.target, start=start,
                             cluster_available=cluster_available, writer_available=writer_available,
                             first_ack=first_ack, boundary_low=low, boundary_high=high,
                             resolution_s=context.environment.restore_resolution_s, snapshot=self.snapshot)
        read_ledgers(context, self.restored, self.run_id, self.probes, self.timeline, self.with_orders)
        return {"target": self.target, "restore_time_s": round(first_ack - start, 3)}

    def _boundary(self, source: AuroraCluster) -> tuple[float, float]:
        """[low, high] on the server's clock: the point itself, a snapshot's window, or for the
        latest restorable time what the API said just before the request (high moves up to what it
        says just after)."""
        if self.how == "snapshot":
            if self.snapshot_window is None:
                raise ScenarioError("restoring a snapshot needs one: take it first ('a snapshot of the cluster is "
                                    "taken')")
            return self.snapshot_window
        if self.how == "latest":
            latest = source.restorable_window()[1]
            if latest is None:
                raise ScenarioError(f"{source.identifier} reports no latest restorable time yet")
            return epoch(latest), epoch(latest)
        if self.point is None:
            raise ScenarioError("a point-in-time restore needs its point")
        return self.point, self.point

    def _first_write(self, context: Context) -> float:
        """Write through the restored cluster's endpoint until it acknowledges (in a ledger run of its
        own, so the restored data the checker reads stays as restored); returns when it did."""
        cut, restored = context.cut, self.restored
        assert restored is not None
        described = restored.describe()
        deadline = time.monotonic() + FIRST_WRITE_TIMEOUT_S
        last_error = ""
        while time.monotonic() < deadline:
            try:
                conn = cut.dialect.connect(described["Endpoint"], described["Port"], cut.credentials,
                                           connect_timeout=2, statement_timeout=5,
                                           application_name="gameday-restore-check")
                try:
                    cut.dialect.insert(conn, f"{self.run_id}-restored", 1)
                    return time.monotonic()
                finally:
                    conn.close()
            except Exception as error:  # not up yet: keep trying until the deadline
                last_error = cut.dialect.describe_error(error)
                time.sleep(0.05)
        raise ScenarioError(f"the restored cluster {self.target} acknowledged no write within "
                            f"{FIRST_WRITE_TIMEOUT_S:g} s: {last_error}")

    def rollback(self, context: Context) -> str | None:
        if self.restored is None:
            return None
        self.restored.delete_with_instances()
        return f"deleted the restored cluster {self.target}"


@dataclass
class Backtrack(Action):
    """BacktrackDBCluster (Aurora MySQL): the cluster itself rewound in place, same writer and
    endpoints, to the nearest consistent point at or before the one asked for. A fault, so the
    downtime each client saw is timed from it; it records the point Aurora really reached, how long
    the backtrack took, and what the cluster holds afterwards.

    Only with the environment's consent (on AWS, `may_rewind = true` in the profile). It is not
    rolled back: rolling it forward again would discard whatever was written after it. A refusal
    the scenario expects (`refusal_expected`) is recorded instead of raised."""

    timeline: Timeline
    run_id: str
    probes: ProbeSet | None
    point: float | None  # server epoch seconds; None on a dry run before the bad change exists
    label: str = ""
    refusal_expected: bool = False
    with_orders: bool = False  # a load placed orders: count what the rewound cluster holds of them
    name: ClassVar[str] = "backtrack"

    def describe(self) -> str:
        to = self.label or (utc(self.point).isoformat(timespec="microseconds") if self.point is not None else "?")
        return f"BacktrackDBCluster to {to}"

    def apply(self, context: Context) -> dict[str, Any]:
        context.environment.check_may_rewind(context.cut)
        cluster = context.cut.cluster
        if self.point is None:
            raise ScenarioError("a backtrack needs its point in time")
        start = time.monotonic()
        try:
            answer = cluster.backtrack(utc(self.point), force=True)
        except ClientError as error:
            if not self.refusal_expected:
                raise
            code, message = error.response["Error"]["Code"], error.response["Error"].get("Message", "")
            self.timeline.record("refusal", operation="BacktrackDBCluster", code=code, message=message,
                                 start=start, end=time.monotonic())
            return {"refused": code}
        backtrack_id = answer["BacktrackIdentifier"]
        cluster.wait_until(lambda: cluster.backtracks(backtrack_id)[0]["Status"] in ("completed", "failed"),
                           RESTORE_TIMEOUT_S, f"backtrack {backtrack_id} done")
        completed = time.monotonic()
        final = cluster.backtracks(backtrack_id)[0]
        if final["Status"] == "failed":
            raise ScenarioError(f"backtrack {backtrack_id} of {cluster.identifier} failed")
        cluster.wait_settled(timeout=RESTORE_TIMEOUT_S)
        reached = epoch(final["BacktrackTo"])
        self.timeline.record("restore", how="backtrack", source=cluster.identifier, target=cluster.identifier,
                             start=start, until=start, cluster_available=completed, writer_available=completed,
                             first_ack=None, requested_point=self.point, boundary_low=reached, boundary_high=reached,
                             resolution_s=context.environment.restore_resolution_s, backtrack=backtrack_id)
        read_ledgers(context, cluster, self.run_id, self.probes, self.timeline, self.with_orders)
        return {"backtrack": backtrack_id, "reached": reached, "duration_s": round(completed - start, 3)}


def read_ledgers(context: Context, cluster: AuroraCluster, run_id: str, probes: ProbeSet | None,
                 timeline: Timeline, with_orders: bool) -> None:
    """What a restored (or rewound) cluster holds of each write probe's ledger and (when a load
    placed some) of this run's orders, as `restore-ledger` records for the exactness checker."""
    cut = context.cut
    described = cluster.describe()
    conn = cut.dialect.connect(described["Endpoint"], described["Port"], cut.credentials, connect_timeout=5,
                               statement_timeout=60, application_name="gameday-restore-check")
    try:
        workload = workload_dialect_for(cut.dialect.engine)
        orders = workload.count_orders(conn, run_id) if with_orders else None
        changes = [r for r in read_timeline(timeline.path) if r["kind"] == "bad-change"]
        before = (workload.count_orders(conn, run_id, created_by=changes[-1]["server_start"])
                  if with_orders and changes else None)
        for probe in probes.write_probes if probes else []:
            counts = cut.dialect.ledger_counts(conn, probe.run_id)
            timeline.record("restore-ledger", target=cluster.identifier, driver=probe.driver, run_id=probe.run_id,
                            ranges=to_ranges(counts), orders=orders, orders_before_bad_change=before,
                            duplicates={str(s): c for s, c in counts.items() if c > 1})
    finally:
        conn.close()
