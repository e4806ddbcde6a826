"""One Global Database at run time: clusters in several Regions, one writing, the others replicating.

The workflow that spans clusters lives here (as Blue/Green's will in its own module): which
cluster replicates from which through which inter-Region link, the global writer endpoint,
switchover (RPO 0), failover with data loss and the old primary's resync, detach-and-promote,
the lag figures of Aurora's global views, and managed RPO (`rds.global_db_rpo`). Each cluster's
own data plane stays its `ClusterRuntime`; the engines do the replication (`start_replica_head`,
`fence_writes`, `stop_replicating`, `demote_to_replica`, `rebuild_replica`).

Lag is Aurora's: how long ago the primary first had a change a secondary has not received
(durability lag) or applied (RPO lag, and each instance's visibility lag), timed on the
primary's log position, which a sampler thread reads every few tens of milliseconds.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Any

from harness.emulator.addresses import ClusterAddresses
from harness.emulator.event_messages import (
    GLOBAL_ENDPOINT_MOVED,
    GLOBAL_FAILOVER_COMPLETED,
    GLOBAL_FAILOVER_FAILED,
    GLOBAL_NEW_PRIMARY_PROMOTED,
    GLOBAL_OLD_PRIMARY_SHUT_DOWN,
    GLOBAL_RESYNC_FINISHED,
    GLOBAL_RESYNC_STARTED,
    GLOBAL_SWITCHOVER_CANCELLED,
    GLOBAL_SWITCHOVER_FAILED,
    GLOBAL_SWITCHOVER_FINISHED,
    GLOBAL_SWITCHOVER_STARTED,
    GLOBAL_WAITING_FOR_SYNC,
    GLOBAL_WRITES_BLOCK_TIMED_OUT,
    GLOBAL_WRITES_BLOCKED,
    INSTANCE_RESTARTED,
    INSTANCE_SHUTDOWN,
)
from harness.emulator.fabric import FabricClient, FabricError
from harness.emulator.global_cluster import FailoverState, GlobalCluster, GlobalMember
from harness.emulator.interregion import InterRegionNetwork
from harness.emulator.jobs import Jobs
from harness.emulator.replication import MASTER_SESSION_ID, ReaderPosition
from harness.emulator.runtime import ClusterRuntime, ReplicaSource
from harness.emulator.surface import LagClock

log = logging.getLogger("harness.emulator")

SAMPLE_INTERVAL_S = 0.05
RPO_CHECK_INTERVAL_S = 0.2
SYNC_TIMEOUT_S = 600.0  # a switchover waits this long for the target to catch up, then is cancelled
SYNC_EVENT_INTERVAL_S = 1.0
FINAL_SYNC_TIMEOUT_S = 10.0  # for the old writer's shutdown record (PostgreSQL); without it, a rewind
RESYNC_DEADLINE_S = 1800.0
RPO_TOXIC = "gameday-global-rpo"  # holds the primary's commits while every secondary is beyond its RPO
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SESSION_NAMESPACE = uuid.UUID("0c7f5a52-1d0e-4b0a-9a55-6e2f3e1f8b11")

Runtimes = Callable[[str, str], ClusterRuntime | None]  # (region, cluster) -> its runtime, if any
RpoSetting = Callable[[ClusterRuntime], int | None]  # the primary's rds.global_db_rpo, None when unset
Snapshotter = Callable[[ClusterRuntime, str], None]  # takes a cluster snapshot of that name, now


class GlobalDatabase:
    """Drives one global cluster's members; `lock` serialises its workflows."""

    def __init__(self, model: GlobalCluster, runtimes: Runtimes, network: InterRegionNetwork,
                 fabric: FabricClient | None, net: int, jobs: Jobs, rpo_setting: RpoSetting | None = None,
                 snapshot: Snapshotter | None = None):
        self.model = model
        self.runtimes = runtimes
        self.network = network
        self.fabric = fabric
        self.net = net
        self.jobs = jobs
        self.rpo_setting = rpo_setting
        self.snapshot = snapshot
        self.lock = threading.RLock()
        self.clock = LagClock()
        self.commits_held = False
        self._shown_rpo: tuple[int, int] | None = None  # (writer's pid, rds.global_db_rpo it shows)
        self.last_positions: dict[tuple[str, str], dict[str, ReaderPosition]] = {}
        self._closed = threading.Event()
        self._sampler: threading.Thread | None = None
        self._published_writer: dict[str, Any] | None = None

    # --- members ---------------------------------------------------------------------------------------
    def runtime(self, member: GlobalMember | None) -> ClusterRuntime | None:
        return self.runtimes(*member.key()) if member is not None else None

    def primary_runtime(self) -> ClusterRuntime | None:
        return self.runtime(self.model.primary())

    def _primary_engine(self) -> Any:
        runtime = self.primary_runtime()
        return runtime.engine if runtime is not None else None

    def link_name(self, runtime: ClusterRuntime) -> str:
        return f"{runtime.prefix}-link-global"

    def link_host(self, runtime: ClusterRuntime) -> str:
        return ClusterAddresses(self.net, runtime.cluster.slot).global_link

    def attach_primary(self, runtime: ClusterRuntime) -> None:
        """The first member: the cluster every other member replicates from."""
        self.model.writer = (runtime.cluster.region, runtime.cluster.identifier)
        self._watch(runtime)
        self.publish_endpoint()
        self._start_sampler()

    def attach_secondary(self, runtime: ClusterRuntime) -> None:
        """A new (instance-less) member: its first instance becomes the replica head."""
        self._replicates(runtime)
        self._watch(runtime)
        self.route_links()
        runtime.publish_endpoints()

    def _replicates(self, runtime: ClusterRuntime) -> None:
        """The cluster is a secondary from now on: read-only, fed by the primary through its link."""
        runtime.replica_of = ReplicaSource(self._primary_engine, self.link_host(runtime))
        runtime.engine.upstream_host = self.link_host(runtime)
        runtime.cluster.read_only = True

    def _writes(self, runtime: ClusterRuntime) -> None:
        runtime.replica_of = None
        runtime.engine.upstream_host = None
        runtime.cluster.read_only = False

    def _watch(self, runtime: ClusterRuntime) -> None:
        runtime.global_view = self.view
        runtime.writer_listeners.append(self._writer_moved)

    def _unwatch(self, runtime: ClusterRuntime) -> None:
        runtime.global_view = None
        if self._writer_moved in runtime.writer_listeners:
            runtime.writer_listeners.remove(self._writer_moved)

    def _writer_moved(self) -> None:
        """An in-Region failover of the primary: links and the global endpoint follow its writer."""
        self.route_links()
        self.publish_endpoint(flip=True)

    def route_links(self) -> None:
        """Every secondary's link reaches the primary's writer (nothing while there is none)."""
        primary = self.primary_runtime()
        target = None
        if primary is not None and primary.cluster.writer_id:
            engine_writer = primary.engine.instances.get(primary.cluster.writer_id)
            target = engine_writer.target() if engine_writer is not None else None
        for member in self.model.secondaries():
            runtime = self.runtime(member)
            if runtime is None or primary is None:
                continue
            self.network.connect(self.link_name(runtime), self.link_host(runtime), runtime.cluster.port,
                                 primary.cluster.region, runtime.cluster.region,
                                 target if member.synchronization == "connected" else None)

    # --- the global writer endpoint -------------------------------------------------------------------------
    def _endpoint_listener(self) -> str:
        return f"g{self.model.slot}-writer"

    def publish_endpoint(self, flip: bool = False) -> None:
        """Route the global writer endpoint to the primary's writer; after a change (`flip`) it keeps
        sending new connections to the old writer for the DNS TTL, as cached DNS does."""
        primary = self.primary_runtime()
        if self.fabric is None or primary is None:
            return
        writer = primary._target(primary.cluster.writer_id) if primary.cluster.writer_id else None  # noqa: SLF001
        stale = None
        if flip and self._published_writer is not None and self._published_writer != writer and primary.dns_ttl > 0:
            stale = {"targets": [self._published_writer], "seconds": primary.dns_ttl}
        route = {"targets": [writer] if writer else [], "policy": "first", "stale": stale}
        self.fabric.set_listener(self._endpoint_listener(), self.model.endpoint, primary.cluster.port, route,
                                 fast=True)  # a client endpoint, as the runtime's own
        if self._published_writer is not None and writer is not None and self._published_writer != writer:
            self.fabric.drop(str(self._published_writer["id"]), self._endpoint_listener())
        self._published_writer = writer

    # --- lag ------------------------------------------------------------------------------------------
    def _start_sampler(self) -> None:
        if self._sampler is None:
            self._sampler = threading.Thread(target=self._sample, daemon=True,
                                             name=f"global lag {self.model.identifier}")
            self._sampler.start()

    def _sample(self) -> None:
        last_rpo_check = 0.0
        while not self._closed.wait(SAMPLE_INTERVAL_S):
            primary = self.primary_runtime()
            if primary is None or primary.deleted or primary.region_down or primary.secondary:
                continue
            try:
                position = primary.engine.write_position()
            except Exception:
                position = None
            if position is not None:
                self.clock.observe(position)
            if time.monotonic() - last_rpo_check >= RPO_CHECK_INTERVAL_S:
                last_rpo_check = time.monotonic()
                try:
                    self._enforce_rpo(primary)
                except Exception:
                    log.exception("managed RPO of %s failed", self.model.identifier)

    def positions(self, member: GlobalMember) -> dict[str, ReaderPosition]:
        """Where a secondary's instances stand in the primary's log (the last known, if it is out)."""
        runtime = self.runtime(member)
        if runtime is not None and not runtime.region_down and runtime.secondary:
            try:
                self.last_positions[member.key()] = runtime.engine.replica_positions()
            except Exception:
                log.debug("positions of %s unavailable", member.cluster_id, exc_info=True)
        return self.last_positions.get(member.key(), {})

    def head_position(self, member: GlobalMember) -> ReaderPosition | None:
        runtime = self.runtime(member)
        if runtime is None or runtime.cluster.writer_id is None:
            return None
        return self.positions(member).get(runtime.cluster.writer_id)

    def lag_ms(self, position: int | None) -> float | None:
        if position is None:
            return None
        return round(self.clock.lag_seconds(position) * 1000.0, 3)

    def rpo_lag_ms(self, member: GlobalMember) -> float | None:
        head = self.head_position(member)
        return self.lag_ms(head.applied) if head is not None else None

    # --- managed RPO (Aurora PostgreSQL's rds.global_db_rpo) -------------------------------------------------
    def _enforce_rpo(self, primary: ClusterRuntime) -> None:
        """Commits on the primary wait while every secondary's RPO lag is beyond the setting, and go
        on as soon as one is within it (AWS: "blocks user commits when it is violated")."""
        rpo = self.rpo_setting(primary) if self.rpo_setting is not None else None
        self._show_rpo(primary, rpo)
        secondaries = [m for m in self.model.secondaries() if m.synchronization == "connected"]
        hold = False
        if rpo is not None and rpo > 0 and secondaries:
            lags = [self.rpo_lag_ms(m) for m in secondaries]
            hold = all(lag is None or lag > rpo * 1000.0 for lag in lags)
        if hold != self.commits_held:
            self._hold_commits(primary, hold)

    def _show_rpo(self, primary: ClusterRuntime, rpo: int | None) -> None:
        """The primary's writer shows the setting (`SHOW rds.global_db_rpo`); again after a restart."""
        writer = primary.engine.instances.get(primary.cluster.writer_id or "")
        if writer is None or writer.child is None or not writer.alive():
            return
        shown = (writer.child.pid, rpo if rpo is not None else -1)
        if shown != self._shown_rpo:
            primary.engine.show_global_db_rpo(shown[1])
            self._shown_rpo = shown

    def _hold_commits(self, runtime: ClusterRuntime, hold: bool) -> None:
        """The primary's storage nodes stop taking its log (a stall: held, not lost), so commits wait
        for their write quorum; released, they catch up and the waiting commits return."""
        for link in runtime.engine.link_names():
            if not link.startswith("storage:"):
                continue
            listener = runtime.engine.link_listener(link)
            try:
                if hold:
                    runtime.fabric.add_toxic(listener, RPO_TOXIC, "stall", stream="both", toxicity=1.0,
                                             attributes={"percent": 100.0, "period_ms": 1000.0})
                else:
                    runtime.fabric.remove_toxic(listener, RPO_TOXIC)
            except FabricError:
                pass
        self.commits_held = hold
        log.info("%s: commits on the primary %s (rds.global_db_rpo)", self.model.identifier,
                 "held" if hold else "released")

    # --- Aurora's global views -----------------------------------------------------------------------------
    def view(self, part: str, instance: str) -> list[dict[str, Any]]:
        """Rows of `aurora_global_db_status()` or `aurora_global_db_instance_status()`."""
        return self.status_rows() if part == "global_db_status" else self.instance_rows()

    def status_rows(self) -> list[dict[str, Any]]:
        rows = []
        now = datetime.now(UTC)
        for member in self.model.members:
            if member.key() == self.model.writer:
                runtime = self.runtime(member)
                written = None
                if runtime is not None and not runtime.region_down:
                    try:
                        written = runtime.engine.write_position()
                    except Exception:
                        written = None
                rows.append({"aws_region": member.region, "highest_lsn_written": written,
                             "durability_lag_in_msec": -1, "rpo_lag_in_msec": -1,
                             "last_lag_calculation_time": EPOCH.isoformat(), "feedback_epoch": None,
                             "feedback_xmin": None})
                continue
            head = self.head_position(member)
            rows.append({"aws_region": member.region, "highest_lsn_written": head.received if head else None,
                         "durability_lag_in_msec": _whole(self.lag_ms(head.received if head else None)),
                         "rpo_lag_in_msec": _whole(self.lag_ms(head.applied if head else None)),
                         "last_lag_calculation_time": now.isoformat(), "feedback_epoch": 0,
                         "feedback_xmin": None})
        return rows

    def instance_rows(self) -> list[dict[str, Any]]:
        rows = []
        for member in self.model.members:
            runtime = self.runtime(member)
            if runtime is None or runtime.region_down:
                continue
            if member.key() == self.model.writer:
                lags = {r.server_id: r for r in runtime.surface.replica_status()}
                for server_id, row in lags.items():
                    writer = row.is_writer
                    rows.append(self._instance_row(runtime, server_id, writer, row.highest_lsn_rcvd or row.durable_lsn,
                                                   row.durable_lsn, 0.0 if writer else row.replica_lag_in_msec))
                continue
            positions = self.positions(member)
            for server_id, instance in runtime.cluster.instances.items():
                position = positions.get(server_id)
                if position is None or instance.status not in ("available", "modifying"):
                    continue
                rows.append(self._instance_row(runtime, server_id, False, position.received, position.received,
                                               self.lag_ms(position.applied)))
        return rows

    def _instance_row(self, runtime: ClusterRuntime, server_id: str, writer: bool, received: int | None,
                      durable: int | None, lag_ms: float | None) -> dict[str, Any]:
        instance = runtime.cluster.instances.get(server_id)
        session = MASTER_SESSION_ID if writer else str(uuid.uuid5(
            _SESSION_NAMESPACE, f"{instance.resource_id if instance else server_id}"))
        return {"server_id": server_id, "session_id": session, "aws_region": runtime.cluster.region,
                "durable_lsn": durable, "highest_lsn_rcvd": received, "feedback_epoch": 0, "feedback_xmin": None,
                "oldest_read_view_lsn": received, "visibility_lag_in_msec": _whole(lag_ms)}

    # --- switchover and failover ------------------------------------------------------------------------------
    @contextmanager
    def _holding(self, *runtimes: ClusterRuntime) -> Iterator[None]:
        """Both clusters' data planes, always in the same order (no deadlock with another workflow)."""
        with self.lock, ExitStack() as stack:
            for runtime in sorted(runtimes, key=lambda r: (r.cluster.region, r.cluster.identifier)):
                stack.enter_context(runtime.lock)
            yield

    def _event(self, runtime: ClusterRuntime | None, message: str, category: str = "global-failover") -> None:
        if runtime is not None:
            runtime.cluster_event(message, category)

    def switchover(self, target: GlobalMember) -> None:
        """Job behind SwitchoverGlobalCluster (and FailoverGlobalCluster without AllowDataLoss): the
        target catches up with the fenced primary before it is promoted, so nothing is lost."""
        old_member = self.model.primary()
        old, new = self.runtime(old_member), self.runtime(target)
        assert old is not None and new is not None and old_member is not None
        started = GLOBAL_SWITCHOVER_STARTED.format(target.cluster_id, target.region)
        with self._holding(old, new):
            self._set_state("switching-over")
            self._event(old, started)
            self._event(new, started)
            position = old.engine.fence_writes()  # its client sessions end; replication goes on
            self._event(old, GLOBAL_WRITES_BLOCKED.format(old.cluster.identifier, old.cluster.region), "notification")
            try:
                caught_up = self._caught_up(old, new, target, position)
            except Exception:
                caught_up = False
                log.exception("%s: the switchover could not follow %s's catch-up", self.model.identifier,
                              target.cluster_id)
            if not caught_up:  # cancelled: the primary takes writes again, nothing changed
                old.engine.unfence_writes()
                self._event(old, GLOBAL_SWITCHOVER_CANCELLED.format(target.cluster_id, target.region))
                self._event(new, GLOBAL_SWITCHOVER_CANCELLED.format(target.cluster_id, target.region))
                self._set_state(None)
                return
            end = old.engine.finish_history()
            if end is not None and not self._caught_up(old, new, target, end, timeout=FINAL_SYNC_TIMEOUT_S):
                log.warning("%s did not get %s's last record: the old writer will be rewound", target.cluster_id,
                            old.cluster.identifier)
            fork = self._promote(new, target)
            self._event(new, GLOBAL_NEW_PRIMARY_PROMOTED.format(target.cluster_id, target.region))
            self._serving(new)  # writes go on in the new Region while the old primary is demoted
            self._demote(old, fork)
            self._event(old, GLOBAL_OLD_PRIMARY_SHUT_DOWN.format(old.cluster.identifier, old.cluster.region))
            self._serving(old)
            finished = GLOBAL_SWITCHOVER_FINISHED.format(target.cluster_id, target.region)
            self._event(old, finished)
            self._event(new, finished)
            self._set_state(None)

    def _caught_up(self, old: ClusterRuntime, new: ClusterRuntime, target: GlobalMember, position: int,
                   timeout: float = SYNC_TIMEOUT_S) -> bool:
        """Wait until the target's head has applied the fenced primary's last position (RPO 0)."""
        deadline = time.monotonic() + timeout
        next_event = 0.0
        while time.monotonic() < deadline:
            head = self.head_position(target)
            if head is not None and head.applied is not None and head.applied >= position:
                return True
            if time.monotonic() >= next_event:
                next_event = time.monotonic() + SYNC_EVENT_INTERVAL_S
                lag = self.lag_ms(head.applied if head else None)
                self._event(old, GLOBAL_WAITING_FOR_SYNC.format(
                    f"{target.cluster_id} {lag if lag is not None else 'unknown'} ms"))
            time.sleep(0.02)
        return False

    def _promote(self, runtime: ClusterRuntime, member: GlobalMember) -> str:
        """The target's head takes writes; it replicates from nobody now. Returns where its history
        forks from the old primary's (the engine's notation)."""
        self.network.disconnect(self.link_name(runtime))
        fork = runtime.engine.stop_replicating()
        self._writes(runtime)
        self.model.writer = member.key()
        self.clock.reset()
        return fork

    def _demote(self, runtime: ClusterRuntime, fork: str) -> None:
        """A switchover's old primary: its writer becomes a replica head of the new primary, and its
        readers follow it (rewound when they replayed beyond the new primary's `fork`)."""
        head = runtime.cluster.instances.get(runtime.cluster.writer_id or "")
        if head is not None:
            head.status = "rebooting"
            runtime.instance_event(head, INSTANCE_SHUTDOWN, "availability")
        self._replicates(runtime)
        self.route_links()
        new_primary = self._primary_engine()
        runtime.engine.demote_to_replica(new_primary, self.link_host(runtime))
        for reader in runtime.cluster.readers:
            engine_reader = runtime.engine.instances.get(reader.identifier)
            if engine_reader is not None and reader.status == "available":
                try:
                    runtime.engine.follow(engine_reader, fork)
                except Exception:
                    log.exception("%s could not follow its new replica head", reader.identifier)
                    reader.status = "failed"
        if head is not None:
            head.status = "available"
            runtime.instance_event(head, INSTANCE_RESTARTED, "availability")

    def _serving(self, runtime: ClusterRuntime) -> None:
        """A member's role changed: its endpoints, SQL surface and links follow; when it is the
        new primary, the global writer endpoint moves to it."""
        runtime.surface.writer_changed()
        runtime.faults.writer_changed()
        runtime.publish_endpoints()
        self.route_links()
        if self.model.writer == (runtime.cluster.region, runtime.cluster.identifier):
            self.publish_endpoint(flip=True)
            self._event(runtime, GLOBAL_ENDPOINT_MOVED)

    def _set_state(self, status: str | None) -> None:
        if status is None:
            self.model.failover = None
            self.model.status = "available"
        else:
            if self.model.failover is not None:
                self.model.failover.status = status
            self.model.status = status

    def begin(self, target: GlobalMember, data_loss: bool) -> None:
        """The API's part: FailoverState `pending` until the job starts."""
        primary = self.model.primary()
        self.model.failover = FailoverState("pending", primary.arn if primary else "", target.arn, data_loss)

    def failover(self, target: GlobalMember) -> None:
        """Job behind FailoverGlobalCluster with AllowDataLoss: the target is promoted with what it
        has received (whatever had not crossed is lost); the old primary is fenced as far as it
        can be and rejoins as a secondary after a resync, once its Region is reachable."""
        old_member = self.model.primary()
        old, new = self.runtime(old_member), self.runtime(target)
        assert old is not None and new is not None and old_member is not None
        with self._holding(old, new):
            self._set_state("failing-over")
            self._fence_for_failover(old)
            self._promote(new, target)
            old_member.synchronization = "pending-resync"
            self._replicates(old)
            self._serving(new)
            self._serving(old)
            self._event(new, GLOBAL_FAILOVER_COMPLETED.format(target.cluster_id, target.region))
            self._set_state(None)
        if not old.region_down:
            self.resync(old_member)

    def _fence_for_failover(self, old: ClusterRuntime) -> None:
        """Best-effort write fencing (RDS-EVENT-0390/0391): stop the old primary's instances if
        its Region answers; they stay down until the resync rebuilds them."""
        name, region = old.cluster.identifier, old.cluster.region
        if old.region_down:
            self._event(old, GLOBAL_WRITES_BLOCK_TIMED_OUT.format(name, region), "notification")
            return
        for instance in old.cluster.instances.values():
            instance.status = "rebooting"  # the monitor leaves it to the resync
            engine_instance = old.engine.instances.get(instance.identifier)
            if engine_instance is not None:
                old.engine.stop(engine_instance, "kill")
                old.fabric.drop(instance.identifier)
        old.engine.stop_volume()
        self._event(old, GLOBAL_WRITES_BLOCKED.format(name, region), "notification")

    def failover_failed(self, target: GlobalMember, exc: BaseException) -> None:
        """A switchover or failover job raised or hung: its failure event (RDS-EVENT-0187/0239) and no
        FailoverState; a primary still in place (nothing was promoted) takes writes again."""
        state = self.model.failover
        data_loss = state is not None and state.data_loss
        log.error("global %s of %s to %s failed: %s", "failover" if data_loss else "switchover",
                  self.model.identifier, target.cluster_id, exc)
        message = GLOBAL_FAILOVER_FAILED if data_loss else GLOBAL_SWITCHOVER_FAILED
        self._event(self.runtime(target), message.format(target.cluster_id, target.region))
        primary = self.primary_runtime()
        if not data_loss and primary is not None and primary is not self.runtime(target) and not primary.secondary \
                and not isinstance(exc, TimeoutError):
            try:
                primary.engine.unfence_writes()
            except Exception:
                log.warning("%s could not be unfenced", primary.cluster.identifier, exc_info=True)
        if not isinstance(exc, TimeoutError):
            self._set_state(None)

    def resync(self, member: GlobalMember) -> None:
        """Start rebuilding a pending-resync member from the primary (a job)."""
        self.jobs.start(f"resync {member.cluster_id}", self._resync, member, deadline_s=RESYNC_DEADLINE_S,
                        on_error=lambda exc: self._resync_failed(member, exc))

    def _resync_failed(self, member: GlobalMember, exc: BaseException) -> None:
        """The rebuild raised or hung: its instances are `failed` (the member stays pending-resync)."""
        log.error("resync of %s failed: %s", member.cluster_id, exc)
        runtime = self.runtime(member)
        if runtime is not None and not isinstance(exc, TimeoutError):
            for instance in runtime.cluster.instances.values():
                if instance.status == "rebooting":
                    instance.status = "failed"

    def _resync(self, member: GlobalMember) -> None:
        runtime = self.runtime(member)
        if runtime is None or member.synchronization != "pending-resync":
            return
        with self.lock, runtime.lock:
            name, region = runtime.cluster.identifier, runtime.cluster.region
            self._event(runtime, GLOBAL_RESYNC_STARTED.format(name, region))
            for instance in runtime.cluster.instances.values():
                instance.status = "rebooting"
            runtime.publish_endpoints()
            self._snapshot_before_resync(runtime)
            runtime.engine.rebuild_replica(self._primary_engine(), self.link_host(runtime))
            member.synchronization = "connected"
            self.route_links()
            for instance in runtime.cluster.instances.values():
                instance.status = "available"
                runtime.instance_event(instance, INSTANCE_RESTARTED, "availability")
            runtime.surface.writer_changed()
            runtime.publish_endpoints()
            self._event(runtime, GLOBAL_RESYNC_FINISHED.format(name, region))

    def _snapshot_before_resync(self, runtime: ClusterRuntime) -> None:
        """AWS first attempts a snapshot of the old primary (`rds:unplanned-global-failover-<cluster>-
        <time>`), which holds what the failover lost: its writer comes up alone (crash recovery on what
        it had) for the copy, then goes, behind closed front doors. Best effort: the resync goes on
        without it."""
        writer = runtime.engine.instances.get(runtime.cluster.writer_id or "")
        if self.snapshot is None or writer is None:
            return
        name = f"rds:unplanned-global-failover-{runtime.cluster.identifier}-{datetime.now(UTC):%Y-%m-%d-%H-%M-%S}"
        runtime.close_front_doors()  # the old primary is fenced: no application write reaches it
        self.publish_endpoint()  # and the global writer endpoint no longer sends stale connections there
        try:
            runtime.engine.restart(writer, as_writer=True)
            self.snapshot(runtime, name)
        except Exception:
            log.warning("%s: the snapshot before the resync failed", runtime.cluster.identifier, exc_info=True)
        finally:
            runtime.engine.stop(writer, "kill")
            runtime.engine.stop_volume()

    # --- detach and promote, and the end ------------------------------------------------------------------
    def detach(self, member: GlobalMember) -> None:
        """RemoveFromGlobalCluster: a secondary stops replicating and becomes a standalone writable
        cluster (the primary, removed, just leaves the global cluster)."""
        runtime = self.runtime(member)
        self.model.members.remove(member)
        if runtime is None:
            return
        with self.lock, runtime.lock:
            self._unwatch(runtime)
            if member.key() == self.model.writer:
                self.model.writer = None
                self._remove_endpoint()
                return
            self.network.disconnect(self.link_name(runtime))
            if runtime.cluster.writer_id is not None and member.synchronization == "connected":
                runtime.engine.stop_replicating()
            self._writes(runtime)
            runtime.surface.writer_changed()
            runtime.publish_endpoints()

    def _remove_endpoint(self) -> None:
        if self.fabric is not None:
            try:
                self.fabric.remove_listener(self._endpoint_listener())
            except FabricError:
                pass

    def close(self) -> None:
        """The global cluster is deleted (or the emulator stops): stop sampling, free its listeners."""
        self._closed.set()
        if self._sampler is not None:
            self._sampler.join(5)
        primary = self.primary_runtime()
        if self.commits_held and primary is not None:
            self._hold_commits(primary, False)
        self._remove_endpoint()
        for member in list(self.model.members):
            runtime = self.runtime(member)
            if runtime is not None:
                self._unwatch(runtime)
                self.network.disconnect(self.link_name(runtime))


def _whole(value: float | None) -> int | None:
    return None if value is None else int(round(value))
