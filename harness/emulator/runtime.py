"""One cluster's data plane at run time: endpoints, instance lifecycle, failover, crashes.

Engine-agnostic: it decides *what* happens, Aurora's way (which reader is promoted, when the
cluster endpoint moves, which events are emitted, what statuses clients see) and asks the
engine cluster (`engines/`) to do it with real processes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.aurora import promotion_rank
from harness.emulator.fabric import FabricError
from harness.emulator.fault_injection import FaultInjection
from harness.emulator.models import DBCluster, DBInstance, EventLog

log = logging.getLogger("harness.emulator")

# RDS event messages (Aurora User Guide, "Amazon RDS event categories and event messages").
FAILOVER_STARTED_CROSS_AZ = "Started cross AZ failover to DB instance: {}."
FAILOVER_STARTED_SAME_AZ = "Started same AZ failover to DB instance: {}."
FAILOVER_COMPLETED = "Completed failover to DB instance: {}."
FAILOVER_FAILED = "Cluster failover failed, check the health of your cluster instances and try again."
PROMOTING_PREVIOUS_PRIMARY = "Promoting previous primary again: {}."
INSTANCE_SHUTDOWN = "DB instance shutdown."
INSTANCE_RESTARTED = "DB instance restarted."
INSTANCE_CREATED = "DB instance created."
INSTANCE_DELETED = "DB instance deleted."
RECOVERY_STARTED = ("Recovery of the DB instance has started. Recovery time will vary with the amount "
                    "of data to be recovered.")
RECOVERY_COMPLETE = "Recovery of the DB instance is complete."
TOPOLOGY_UPDATED = "Cluster topology is updated."

def choose_failover_target(cluster: DBCluster, healthy: Callable[[DBInstance], bool]) -> DBInstance | None:
    """The reader Aurora promotes: lowest promotion tier, then the largest, then any (by name)."""
    candidates = [r for r in cluster.readers if r.status == "available" and healthy(r)]
    if not candidates:
        return None
    return min(candidates, key=lambda r: (*promotion_rank(r.promotion_tier, r.instance_class), r.identifier))


@dataclass
class ClusterRuntime:
    """Drives one cluster. `lock` serialises data-plane changes; the API never waits on it."""

    cluster: DBCluster
    engine: object  # an engine cluster such as PgCluster
    fabric: object  # FabricClient
    events: EventLog
    dns_ttl: float = 5.0
    unsafe_promotion: bool = False  # emulator-only: promote without catching up (negative controls)
    down_azs: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.prefix = f"c{self.cluster.slot}"
        self.deleted = False
        self.dns_flip: tuple[str, float] | None = None  # (old writer, monotonic time of the change)
        self.faults = FaultInjection(self)  # Aurora's fault-injection queries land here

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
        """Client endpoints go on the fabric's C fast path unless the engine rewrites queries."""
        self.fabric.set_listener(f"{self.prefix}-{kind}", host, self.cluster.port, route,
                                 fast=not self.engine.rewrites_client_queries)

    def _serving(self, instance: DBInstance) -> bool:
        return instance.status in ("available", "modifying") and self.engine.alive(
            self.engine.instances[instance.identifier])

    def publish_endpoints(self) -> None:
        """Point every client endpoint at the current topology.

        After a writer change the cluster endpoint keeps sending new connections to the old
        writer's address for the rest of the DNS TTL, as cached DNS does on Aurora.
        """
        cluster = self.cluster
        writer_target = self._target(cluster.writer_id) if cluster.writer_id else None
        stale = None
        if self.dns_flip is not None:
            old_writer, flipped_at = self.dns_flip
            remaining = flipped_at + self.dns_ttl - time.monotonic()
            if remaining > 0 and self._target(old_writer):
                stale = {"targets": [self._target(old_writer)], "seconds": remaining}
        self._publish("cluster", cluster.cluster_address,
                      {"targets": [writer_target] if writer_target else [], "policy": "first", "stale": stale})
        readers = [self._target(r.identifier) for r in cluster.readers if self._serving(r)]
        self._publish("reader", cluster.reader_address,
                      {"targets": readers or ([writer_target] if writer_target else []), "policy": "round_robin",
                       "stale": None})
        for endpoint in cluster.custom_endpoints.values():
            members = [cluster.instances[m] for m in endpoint.members(cluster)]
            targets = [self._target(m.identifier) for m in members if self._serving(m)
                       and (endpoint.custom_type == "ANY" or m.identifier != cluster.writer_id)]
            self._publish(f"ep-{endpoint.identifier}", endpoint.address,
                          {"targets": targets, "policy": "round_robin", "stale": None})
            endpoint.status = "available"
        for instance in cluster.instances.values():
            target = self._target(instance.identifier)
            self._publish(f"inst-{instance.identifier}", instance.address,
                          {"targets": [target] if target else [], "policy": "first", "stale": None})

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
                if self.cluster.writer_id is None:
                    self.engine.start_first_writer(engine_instance, self.cluster.master_username,
                                                   self.cluster.master_password, self.cluster.database_name)
                    self.cluster.writer_id = instance.identifier
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

    def delete_instance(self, instance: DBInstance, on_gone: Callable[[], None]) -> None:
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
            on_gone()
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
                    self.engine.restart(self.engine.instances[member.identifier],
                                        as_writer=member.identifier == self.cluster.writer_id)
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
        cluster = self.cluster
        old = cluster.instances[cluster.writer_id]  # type: ignore[index]
        engine_old = self.engine.instances[old.identifier]
        target = cluster.instances.get(target_id) if target_id else choose_failover_target(
            cluster, lambda r: self.engine.alive(self.engine.instances[r.identifier]))
        if target is None:
            self._failover_failed(old, "no available reader to promote")
            return
        cluster.status = "failing-over"
        same_az = target.availability_zone == old.availability_zone
        self.cluster_event((FAILOVER_STARTED_SAME_AZ if same_az else FAILOVER_STARTED_CROSS_AZ)
                           .format(target.identifier), "failover")
        started = time.monotonic()
        old.status = "rebooting"
        self.engine.fence(engine_old)
        self.fabric.drop(old.identifier)
        self.fabric.drop(target.identifier)  # its read-only sessions end, as on Aurora
        try:
            fork_lsn = self.engine.promote(self.engine.instances[target.identifier],
                                           safe=not self.unsafe_promotion)
        except Exception:
            log.exception("promotion of %s failed", target.identifier)
            self._failover_failed(old, "promotion failed")
            return
        cluster.writer_id = target.identifier
        self.faults.writer_changed()
        self.dns_flip = (old.identifier, time.monotonic())
        self.publish_endpoints()
        cluster.status = "available"
        log.info("failover of %s to %s took %.3f s", cluster.identifier, target.identifier,
                 time.monotonic() - started)
        self.cluster_event(FAILOVER_COMPLETED.format(target.identifier), "failover")
        self.cluster_event(TOPOLOGY_UPDATED, "notification")
        for reader in cluster.readers:
            if reader is not old and reader.status == "available":
                self._follow(reader, fork_lsn)
        if not exclude_old_writer:
            self._bring_back_as_reader(old)

    def _failover_failed(self, old: DBInstance, why: str) -> None:
        log.warning("failover of %s failed: %s", self.cluster.identifier, why)
        self.cluster_event(FAILOVER_FAILED, "failover")
        engine_old = self.engine.instances[old.identifier]
        if not self.engine.alive(engine_old):
            self.cluster_event(PROMOTING_PREVIOUS_PRIMARY.format(old.identifier), "failover")
            try:
                self.engine.restart(engine_old, as_writer=True)
                old.status = "available"
            except Exception:
                log.exception("could not restart %s", old.identifier)
                old.status = "failed"
        else:
            old.status = "available"
        self.cluster.status = "available"
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

    # --- crashes and the monitor ---------------------------------------------------------------------
    def check_health(self) -> None:
        """Called by the monitor: recover instances whose engine died, as Aurora does.

        A dead writer fails over to a reader (or restarts in place when there is none); a dead
        reader restarts in place. Instances in a downed AZ stay down until it returns.
        """
        if not self.lock.acquire(blocking=False):
            return
        try:
            if self.deleted or self.cluster.status != "available":
                return
            for instance in list(self.cluster.instances.values()):
                engine_instance = self.engine.instances.get(instance.identifier)
                if (engine_instance is None or instance.status != "available"
                        or self.engine.alive(engine_instance)):
                    continue
                self._recover(instance)
            self.engine.revive_storage_nodes()
        finally:
            self.lock.release()

    def _recover(self, instance: DBInstance) -> None:
        log.warning("%s: engine of %s died", self.cluster.identifier, instance.identifier)
        self.instance_event(instance, INSTANCE_SHUTDOWN, "availability")
        self.fabric.drop(instance.identifier)
        if instance.identifier == self.cluster.writer_id:
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
        is_writer = instance.identifier == self.cluster.writer_id
        try:
            if is_writer:
                self.engine.restart(self.engine.instances[instance.identifier], as_writer=True)
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
            for name in ["cluster", "reader"] + [f"inst-{i}" for i in self.cluster.instances]:
                self._remove_listener(f"{self.prefix}-{name}")
            for endpoint in self.cluster.custom_endpoints:
                self.remove_endpoint(endpoint)
            self.engine.destroy()
