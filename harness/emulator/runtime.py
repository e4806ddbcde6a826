"""One cluster's data plane at run time: endpoints, instance lifecycle, failover, crashes.

Engine-agnostic: it decides *what* happens, Aurora's way (which reader is promoted, when the
cluster endpoint moves, which events are emitted, what statuses clients see) and asks the
engine cluster (`engines/`) to do it with real processes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.aurora import promotion_rank
from harness.emulator.backups import BackupSchedule, ContinuousBackup
from harness.emulator.engines.base import RestoredVolume
from harness.emulator.event_messages import (
    FAILOVER_COMPLETED,
    FAILOVER_FAILED,
    FAILOVER_STARTED_CROSS_AZ,
    FAILOVER_STARTED_SAME_AZ,
    INSTANCE_CREATED,
    INSTANCE_DELETED,
    INSTANCE_RESTARTED,
    INSTANCE_SHUTDOWN,
    PROMOTING_PREVIOUS_PRIMARY,
    RECOVERY_COMPLETE,
    RECOVERY_STARTED,
    TOPOLOGY_UPDATED,
)
from harness.emulator.engines.base import EngineCluster
from harness.emulator.fabric import FabricClient, FabricError
from harness.emulator.fault_injection import FaultInjection
from harness.emulator.models import DBCluster, DBInstance, EventLog
from harness.emulator.surface import AuroraSurface

log = logging.getLogger("harness.emulator")

REPAIR_LOCK_WAIT_S = 30.0  # how long a failed job's repair waits for the data plane (the monitor may hold it)


FAILOVER_BUDGET_S = 30.0  # Aurora's documented failover time: further candidates are tried within it
CAUGHT_UP_WAIT_S = 5.0  # how long a named target may take to be replicating again before the failover fails


def failover_candidates(cluster: DBCluster, healthy: Callable[[DBInstance], bool]) -> list[DBInstance]:
    """The readers Aurora may promote, in the order it tries them: lowest promotion tier, then the
    largest, then by name; only available ones that `healthy` (alive and caught up) admits."""
    candidates = [r for r in cluster.readers if r.status == "available" and healthy(r)]
    return sorted(candidates, key=lambda r: (*promotion_rank(r.promotion_tier, r.instance_class), r.identifier))


def choose_failover_target(cluster: DBCluster, healthy: Callable[[DBInstance], bool]) -> DBInstance | None:
    """The reader Aurora promotes first (see `failover_candidates`)."""
    candidates = failover_candidates(cluster, healthy)
    return candidates[0] if candidates else None


@dataclass
class ReplicaSource:
    """Where a Global Database secondary replicates from: the primary's engine cluster (looked up
    when needed: the primary changes with switchovers) through the inter-Region link on `link_host`."""

    primary: Callable[[], EngineCluster | None]
    link_host: str


@dataclass
class ClusterRuntime:
    """Drives one cluster. `lock` serialises data-plane changes; the API never waits on it."""

    cluster: DBCluster
    engine: EngineCluster
    fabric: FabricClient
    events: EventLog
    dns_ttl: float = 5.0
    unsafe_promotion: bool = False  # emulator-only: promote without catching up (negative controls)
    down_azs: set[str] = field(default_factory=set)
    backup_root: Path | None = None  # where its automated backups go (None: none are taken)
    backup_schedule: BackupSchedule | None = None
    restored: RestoredVolume | None = None  # what built this cluster's volume, when it was restored
    volume_pending: bool = False  # a restore is still building the volume: no instance can start on it yet
    rewound: RestoredVolume | None = None  # what its last backtrack reached and replayed (for the benchmark)
    # Global Database: set while the cluster is a secondary (read-only, replicating from the primary).
    replica_of: ReplicaSource | None = None
    region_down: bool = False  # emulator-only: its Region is out; nothing here is reachable or repaired
    # Global Database: the global views (`aurora_global_db_status()` ...) as seen from an instance.
    global_view: Callable[[str, str], list[dict[str, object]]] | None = None
    # Blue/Green: the switchover metadata its instances serve (rows; None on engine versions without it).
    blue_green_view: Callable[[], list[dict[str, object]] | None] | None = None
    # Blue/Green: the cluster and reader endpoint addresses it had as green, which keep reaching it after
    # the switchover gave it blue's (listener kind -> address). On Aurora those names are CNAMEs of green's
    # instances, whose addresses stay with them: a driver that resolved them beforehand reaches the new
    # production cluster through them (the wrapper's Blue/Green plugin does, while DNS settles).
    former_endpoints: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.backups = ContinuousBackup(self.cluster, self.engine, self.events, self.lock, self.backup_root,
                                        self.backup_schedule)
        self.prefix = f"c{self.cluster.slot}"
        self.deleted = False
        self.dns_flip: tuple[str, float] | None = None  # (old writer, monotonic time of the change)
        self.surface = AuroraSurface(self)  # Aurora's identity and topology functions answer from here
        self.faults = FaultInjection(self, self.surface)  # Aurora's fault-injection queries land here
        self.writer_listeners: list[Callable[[], None]] = []  # told when the writer changes (global links)

    @property
    def secondary(self) -> bool:
        """A Global Database secondary: every instance read-only, no writer endpoint."""
        return self.replica_of is not None

    def _writes(self, instance: DBInstance) -> bool:
        """Does this instance run as a writer (not a secondary's replica head)?"""
        return instance.identifier == self.cluster.writer_id and not self.secondary

    def writer_changed(self) -> None:
        for listener in list(self.writer_listeners):
            try:
                listener()
            except Exception:
                log.exception("a writer-change listener of %s failed", self.cluster.identifier)

    # --- events -------------------------------------------------------------------------------
    def cluster_event(self, message: str, *categories: str) -> None:
        self.events.add("db-cluster", self.cluster.identifier, self.cluster.arn, message, *categories)

    def instance_event(self, instance: DBInstance, message: str, *categories: str) -> None:
        self.events.add("db-instance", instance.identifier, instance.arn, message, *categories)

    # --- endpoints ------------------------------------------------------------------------------
    def _target(self, identifier: str) -> dict[str, object] | None:
        """How a client endpoint reaches an instance (with the engine's query rewrites, if any)."""
        engine_instance = self.engine.instances.get(identifier)
        if engine_instance is None:
            return None
        rewrites = self.engine.client_rewrites(identifier)
        return {**engine_instance.target(), "rewrite": rewrites} if rewrites else engine_instance.target()

    def _publish(self, kind: str, host: str, route: dict[str, object]) -> None:
        """Client endpoints go on the fabric's C fast path; an engine's query rewrites (MySQL) are
        done in Python for the connections the pump hands back (fabric/mysql_session.py)."""
        self.fabric.set_listener(f"{self.prefix}-{kind}", host, self.cluster.port, route, fast=True)

    def _serving(self, instance: DBInstance) -> bool:
        return instance.status in ("available", "modifying") and self.engine.alive(
            self.engine.instances[instance.identifier])

    def publish_endpoints(self) -> None:
        """Point every client endpoint at the current topology.

        After a writer change the cluster endpoint keeps sending new connections to the old
        writer's address for the rest of the DNS TTL, as cached DNS does on Aurora.
        """
        cluster = self.cluster
        writer_target = self._target(cluster.writer_id) if cluster.writer_id and not self.secondary else None
        stale = None
        if self.dns_flip is not None:
            old_writer, flipped_at = self.dns_flip
            remaining = flipped_at + self.dns_ttl - time.monotonic()
            if remaining > 0 and self._target(old_writer):
                stale = {"targets": [self._target(old_writer)], "seconds": remaining}
        routes: dict[str, dict[str, object]] = {
            "cluster": {"targets": [writer_target] if writer_target else [], "policy": "first", "stale": stale}}
        readers = [self._target(r.identifier) for r in (list(cluster.instances.values()) if self.secondary
                                                         else cluster.readers) if self._serving(r)]
        routes["reader"] = {"targets": readers or ([writer_target] if writer_target else []),
                            "policy": "round_robin", "stale": None}
        self._publish("cluster", cluster.cluster_address, routes["cluster"])
        self._publish("reader", cluster.reader_address, routes["reader"])
        for kind, address in self.former_endpoints.items():
            self._publish(kind, address, routes[kind.removeprefix("former-")])
        for endpoint in list(cluster.custom_endpoints.values()):
            members = [cluster.instances[m] for m in endpoint.members(cluster)]
            targets = [self._target(m.identifier) for m in members if self._serving(m)
                       and (endpoint.custom_type == "ANY" or m.identifier != cluster.writer_id)]
            self._publish(f"ep-{endpoint.identifier}", endpoint.address,
                          {"targets": targets, "policy": "round_robin", "stale": None})
            endpoint.status = "available"
        for instance in list(cluster.instances.values()):  # CreateDBInstance may add one meanwhile
            target = self._target(instance.identifier)
            self._publish(f"inst-{instance.identifier}", instance.address,
                          {"targets": [target] if target else [], "policy": "first", "stale": None})

    def close_front_doors(self) -> None:
        """No client reaches any instance of the cluster, and open sessions end: an old primary
        brought up only to be copied (before its resync) must not take an application's writes."""
        cluster, nowhere = self.cluster, {"targets": [], "policy": "first", "stale": None}
        self._publish("cluster", cluster.cluster_address, nowhere)
        self._publish("reader", cluster.reader_address, nowhere)
        for kind, address in self.former_endpoints.items():
            self._publish(kind, address, nowhere)
        for endpoint in cluster.custom_endpoints.values():
            self._publish(f"ep-{endpoint.identifier}", endpoint.address, nowhere)
        for instance in list(cluster.instances.values()):
            self._publish(f"inst-{instance.identifier}", instance.address, nowhere)
            self.fabric.drop(instance.identifier)

    def unpublish_endpoints(self) -> None:
        """Take every client endpoint down: new connections are refused until `publish_endpoints`
        (a Blue/Green switchover, before names and addresses move)."""
        for name in ["cluster", "reader", *self.former_endpoints] + [f"inst-{i}" for i in self.cluster.instances]:
            self._remove_listener(f"{self.prefix}-{name}")
        for endpoint in self.cluster.custom_endpoints:
            self.remove_endpoint(endpoint)

    def remove_endpoint(self, name: str) -> None:
        self._remove_listener(f"{self.prefix}-ep-{name}")

    def _remove_listener(self, listener: str) -> None:
        try:
            self.fabric.remove_listener(listener)
        except FabricError:
            pass  # never published (e.g. the cluster never had an instance)

    # --- instance lifecycle ----------------------------------------------------------------------
    def create_instance(self, instance: DBInstance, engine_host: str) -> None:
        """Job: the first instance becomes the writer, later ones readers."""
        with self.lock:
            engine_instance = self.engine.new_instance(instance.identifier, instance.slot, engine_host)
            try:
                source = self.replica_of.primary() if self.replica_of else None
                if self.cluster.writer_id is None and self.replica_of is not None:
                    if source is None:
                        raise RuntimeError("the global cluster has no primary to replicate from")
                    self.engine.start_replica_head(engine_instance, source, self.replica_of.link_host)
                    self.cluster.writer_id = instance.identifier
                elif self.cluster.writer_id is None:
                    self.engine.start_first_writer(engine_instance, self.cluster.master_username,
                                                   self.cluster.master_password, self.cluster.database_name)
                    self.cluster.writer_id = instance.identifier
                    self.backups.writer_started()
                else:
                    self.engine.add_reader(engine_instance)
            except Exception:
                instance.status = "failed"
                log.exception("creating %s failed", instance.identifier)
                return
            instance.status = "available"
            self.publish_endpoints()
        self.instance_event(instance, INSTANCE_CREATED, "creation")
        self.cluster_event(TOPOLOGY_UPDATED, "notification")

    def create_green_writer(self, instance: DBInstance, engine_host: str, source: EngineCluster,
                            link_host: str) -> None:
        """Job: a Blue/Green green cluster's first instance, its writer, loaded from the blue cluster
        (`source`) and replicating from it through the link on `link_host`; read-only until switchover."""
        with self.lock:
            engine_instance = self.engine.new_instance(instance.identifier, instance.slot, engine_host)
            try:
                self.engine.start_green(engine_instance, self.cluster.master_username, self.cluster.master_password,
                                        self.cluster.database_name, source, link_host)
            except Exception:
                instance.status = "failed"
                raise
            self.cluster.writer_id = instance.identifier
            self.backups.writer_started()
            instance.status = "available"
            self.publish_endpoints()
        self.instance_event(instance, INSTANCE_CREATED, "creation")
        self.cluster_event(TOPOLOGY_UPDATED, "notification")

    def delete_instance(self, instance: DBInstance) -> None:
        """Job: deleting the writer of a cluster with readers fails over first, as on Aurora."""
        with self.lock:
            staying = [r for r in self.cluster.readers if r.status != "deleting"]
            if instance.identifier == self.cluster.writer_id and staying:
                self._failover(None, exclude_old_writer=True)
            is_last = len(self.cluster.instances) == 1
            self.engine.remove(self.engine.instances[instance.identifier], keep_as_volume=is_last)
            self._remove_listener(f"{self.prefix}-inst-{instance.identifier}")
            self.cluster.instances.pop(instance.identifier, None)
            if is_last:
                self.cluster.writer_id = None
            self.publish_endpoints()
        self.instance_event(instance, INSTANCE_DELETED, "deletion")
        self.cluster_event(TOPOLOGY_UPDATED, "notification")

    def reboot(self, instance: DBInstance) -> None:
        """Job: restart in place with no failover. Aurora PostgreSQL restarts the readers too
        when the writer reboots."""
        with self.lock:
            is_writer = instance.identifier == self.cluster.writer_id
            group = [instance] + (self.cluster.readers if is_writer and self.engine.restarts_readers_with_writer
                                  else [])
            for member in group:
                member.status = "rebooting"
            self.publish_endpoints()
            for member in group:
                self.instance_event(member, INSTANCE_SHUTDOWN, "availability")
                self.fabric.drop(member.identifier)
                try:
                    self.engine.restart(self.engine.instances[member.identifier], as_writer=self._writes(member))
                except Exception:
                    log.exception("reboot of %s failed", member.identifier)
                    member.status = "failed"
                    continue
                member.status = "available"
                self.instance_event(member, INSTANCE_RESTARTED, "availability")
                self.faults.instance_restarted(member.identifier)
            self.publish_endpoints()

    # --- failover ----------------------------------------------------------------------------------
    def failover(self, target_id: str | None) -> None:
        """Job behind FailoverDBCluster (status already `failing-over`)."""
        with self.lock:
            self._failover(target_id)

    def _failover(self, target_id: str | None, exclude_old_writer: bool = False) -> None:
        """Promote the named reader, or the ones Aurora would pick in turn: only readers that are
        available and replicating (never one still rejoining); a promotion that fails moves on to
        the next candidate within the documented failover time, each attempt in the events."""
        cluster = self.cluster
        old = cluster.instances[cluster.writer_id]  # type: ignore[index]
        engine_old = self.engine.instances[old.identifier]
        if target_id:
            named = cluster.instances.get(target_id)
            candidates = [named] if named is not None and self._caught_up(named, CAUGHT_UP_WAIT_S) else []
        else:
            candidates = failover_candidates(cluster, lambda r: self._caught_up(r, 0.0))
        if not candidates:
            self._failover_failed(old, "no available reader is replicating from the writer")
            return
        cluster.status = "failing-over"
        old.status = "deleting" if exclude_old_writer else "rebooting"  # a deleted writer says so, as on AWS
        started = time.monotonic()
        fenced, promoted, fork_lsn, failed = False, None, None, []
        for target in candidates:
            if failed and time.monotonic() - started > FAILOVER_BUDGET_S:
                break
            same_az = target.availability_zone == old.availability_zone
            self.cluster_event((FAILOVER_STARTED_SAME_AZ if same_az else FAILOVER_STARTED_CROSS_AZ)
                               .format(target.identifier), "failover")
            if not fenced:
                self.engine.fence(engine_old)
                self.fabric.drop(old.identifier)
                fenced = True
            self.fabric.drop(target.identifier)  # its read-only sessions end, as on Aurora
            try:
                fork_lsn = self.engine.promote(self.engine.instances[target.identifier],
                                               safe=not self.unsafe_promotion)
            except Exception:
                log.exception("promotion of %s failed", target.identifier)
                self.cluster_event(FAILOVER_FAILED, "failover")
                target.status = "rebooting"  # rebuilt as a reader once the cluster has a writer again
                failed.append(target)
                continue
            promoted = target
            break
        if promoted is None:
            self._failover_failed(old, "promotion failed")
            for target in failed:
                self._bring_back_as_reader(target)
            return
        cluster.writer_id = promoted.identifier
        self.faults.writer_changed()
        self.surface.writer_changed()
        self.writer_changed()
        self.dns_flip = (old.identifier, time.monotonic())
        self.publish_endpoints()
        cluster.status = "available"
        log.info("failover of %s to %s took %.3f s", cluster.identifier, promoted.identifier,
                 time.monotonic() - started)
        self.cluster_event(FAILOVER_COMPLETED.format(promoted.identifier), "failover")
        self.cluster_event(TOPOLOGY_UPDATED, "notification")
        for reader in cluster.readers:
            if reader is not old and reader.status == "available":
                self._follow(reader, fork_lsn)
        for target in failed:
            self._bring_back_as_reader(target)
        if not exclude_old_writer:
            self._bring_back_as_reader(old)

    def _caught_up(self, reader: DBInstance, wait_s: float) -> bool:
        """Alive and replicating from the writer (waiting up to `wait_s` for it to be)."""
        engine_reader = self.engine.instances.get(reader.identifier)
        deadline = time.monotonic() + wait_s
        while engine_reader is not None and self.engine.alive(engine_reader):
            if self.engine.caught_up(engine_reader):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return False

    def _failover_failed(self, old: DBInstance, why: str, *, repair_engines: bool = True) -> None:
        """The failover did not happen: say so with Aurora's event and bring the old writer back
        (restarted as the writer if it is down, unless `repair_engines` is off), else `failed`."""
        log.warning("failover of %s failed: %s", self.cluster.identifier, why)
        self.cluster_event(FAILOVER_FAILED, "failover")
        engine_old = self.engine.instances.get(old.identifier)
        if engine_old is not None and self.engine.alive(engine_old):
            old.status = "available"
        elif engine_old is not None and repair_engines:
            self.cluster_event(PROMOTING_PREVIOUS_PRIMARY.format(old.identifier), "failover")
            try:
                self.engine.restart(engine_old, as_writer=True)
                old.status = "available"
            except Exception:
                log.exception("could not restart %s", old.identifier)
                old.status = "failed"
        else:
            old.status = "failed"
        self.cluster.status = "available"
        if repair_engines:
            self.publish_endpoints()

    def _follow(self, reader: DBInstance, fork_lsn: str | None) -> None:
        try:
            self.engine.follow(self.engine.instances[reader.identifier], fork_lsn)
        except Exception:
            log.exception("%s could not follow the new writer", reader.identifier)
            reader.status = "failed"
        self.publish_endpoints()

    def _bring_back_as_reader(self, instance: DBInstance) -> None:
        if instance.availability_zone in self.down_azs:
            instance.status = "inaccessible"
            return
        instance.status = "rebooting"
        try:
            self.engine.rejoin(self.engine.instances[instance.identifier])
        except Exception:
            log.exception("%s could not rejoin as a reader", instance.identifier)
            instance.status = "failed"
            return
        instance.status = "available"
        self.instance_event(instance, INSTANCE_RESTARTED, "availability")
        self.publish_endpoints()

    # --- when a job fails (the on_error of the jobs the API starts) -----------------------------------
    @contextmanager
    def _repairing(self, exc: BaseException) -> Iterator[bool]:
        """Hold the data-plane lock while repairing after a failed job; yields whether it is held.

        A job past its deadline (TimeoutError) is still running and may hold the lock: then only
        statuses are corrected, and engines and endpoints are left to the job.
        """
        if isinstance(exc, TimeoutError):
            locked = self.lock.acquire(blocking=False)
        else:
            locked = self.lock.acquire(timeout=REPAIR_LOCK_WAIT_S)
        try:
            yield locked
        finally:
            if locked:
                self.lock.release()

    def _settle(self, transitional: str) -> None:
        """Instances still showing `transitional` after their job failed: `available` if their
        engine is alive, else `failed`."""
        for instance in self.cluster.instances.values():
            if instance.status == transitional:
                engine_instance = self.engine.instances.get(instance.identifier)
                alive = engine_instance is not None and self.engine.alive(engine_instance)
                instance.status = "available" if alive else "failed"

    def creation_failed(self, instance: DBInstance, exc: BaseException) -> None:
        """A create job raised or hung: the instance is `failed`, not `creating` for ever."""
        if instance.status == "creating":
            instance.status = "failed"

    def deletion_failed(self, instance: DBInstance, exc: BaseException) -> None:
        """A delete job raised or hung: the instance is `failed` (DeleteDBInstance may be tried
        again), not `deleting` for ever; a failover it started (the writer's) is repaired first."""
        if self.cluster.status == "failing-over":
            self.failover_failed(instance.identifier, exc)
        instance.status = "failed"

    def reboot_failed(self, exc: BaseException) -> None:
        """A reboot job raised or hung: every instance it left `rebooting` is `available` if its
        engine is alive, else `failed`."""
        with self._repairing(exc) as locked:
            self._settle("rebooting")
            if locked:
                self.publish_endpoints()

    def failover_failed(self, old_writer: str, exc: BaseException) -> None:
        """A failover job raised or hung.

        While the API still shows `failing-over` and the writer has not changed, the failover
        failed as Aurora reports it: its event, the old writer back (restarted if it is down) or
        `failed`, the cluster `available`. Once the writer has changed the failover happened;
        what is left is bringing instances back, which an overdue job is still doing.
        """
        with self._repairing(exc) as locked:
            cluster = self.cluster
            in_progress = cluster.status == "failing-over"
            old = cluster.instances.get(old_writer)
            if in_progress and old is not None and cluster.writer_id == old.identifier:
                self._failover_failed(old, f"{type(exc).__name__}: {exc}", repair_engines=locked)
            if cluster.status == "failing-over":  # the writer changed, or the old one is no member
                cluster.status = "available"
            if locked or in_progress:
                self._settle("rebooting")
            if locked:
                self.publish_endpoints()

    # --- crashes and the monitor ---------------------------------------------------------------------
    def check_health(self) -> None:
        """Called by the monitor: recover instances whose engine died, as Aurora does.

        A dead writer fails over to a reader (or restarts in place when there is none); a dead
        reader restarts in place. Instances in a downed AZ stay down until it returns.
        """
        if not self.lock.acquire(blocking=False):
            return
        try:
            if self.deleted or self.region_down or self.cluster.status != "available":
                return
            for instance in list(self.cluster.instances.values()):
                engine_instance = self.engine.instances.get(instance.identifier)
                if (engine_instance is None or instance.status != "available"
                        or self.engine.alive(engine_instance)):
                    continue
                writer = self.cluster.writer_id or ""
                try:
                    self._recover(instance)
                except Exception as exc:  # repaired like a failed job, so no status stays transitional
                    log.exception("recovery of %s failed", instance.identifier)
                    if self.cluster.status == "failing-over":
                        self.failover_failed(writer, exc)
                    else:
                        self.reboot_failed(exc)
                    return
            self.engine.revive_storage_nodes()
        finally:
            self.lock.release()

    def _recover(self, instance: DBInstance) -> None:
        log.warning("%s: engine of %s died", self.cluster.identifier, instance.identifier)
        self.instance_event(instance, INSTANCE_SHUTDOWN, "availability")
        self.fabric.drop(instance.identifier)
        if instance.identifier == self.cluster.writer_id and not self.secondary:
            if choose_failover_target(self.cluster, lambda r: self.engine.alive(self.engine.instances[r.identifier])):
                self._failover(None)
                return
        if instance.availability_zone in self.down_azs:
            instance.status = "inaccessible"
            self.publish_endpoints()
            return
        instance.status = "rebooting"
        self.publish_endpoints()
        self.instance_event(instance, RECOVERY_STARTED, "recovery")
        try:
            if instance.identifier == self.cluster.writer_id:  # a secondary's replica head restarts as one
                self.engine.restart(self.engine.instances[instance.identifier], as_writer=self._writes(instance))
            else:
                self.engine.rejoin(self.engine.instances[instance.identifier])
        except Exception:
            log.exception("recovery of %s failed", instance.identifier)
            instance.status = "failed"
            return
        instance.status = "available"
        self.faults.instance_restarted(instance.identifier)
        self.instance_event(instance, RECOVERY_COMPLETE, "recovery")
        self.publish_endpoints()

    # --- emulator-only controls ------------------------------------------------------------------------
    def kill_instance(self, instance: DBInstance) -> None:
        """SIGKILL the engine; the monitor then reacts as Aurora would."""
        self.engine.stop(self.engine.instances[instance.identifier], "kill")

    def az_down(self, az: str) -> None:
        """Lose a whole AZ: its storage nodes and its instances."""
        with self.lock:
            self.down_azs.add(az)
            for name in self.engine.storage_nodes_in(az):
                self.engine.stop_storage_node(name)
            for instance in self.cluster.instances.values():
                if instance.availability_zone == az:
                    self.engine.stop(self.engine.instances[instance.identifier], "kill")
        # the monitor fails over a lost writer and marks lost readers inaccessible

    def az_up(self, az: str) -> None:
        with self.lock:
            self.down_azs.discard(az)
            for name in self.engine.storage_nodes_in(az):
                self.engine.start_storage_node(name)
            for instance in self.cluster.instances.values():
                if instance.availability_zone == az and instance.status == "inaccessible":
                    self._bring_back_as_reader(instance)

    def destroy(self) -> None:
        with self.lock:
            self.deleted = True
            self.faults.close()
            self.surface.close()
            self.unpublish_endpoints()
            self.engine.destroy()
            self.backups.destroy()
