"""The engine contract: what the runtime, fault injection, the SQL surface and the controls ask of
an engine cluster, declared once, and what every engine cluster shares.

An engine cluster (PostgreSQL's `PgCluster`, MariaDB's `MariaDbCluster`) is the engine side of
one Aurora cluster. The runtime decides what happens, Aurora's way, and asks the engine for
roles only: start the first writer, add a reader, fence, promote, follow, rejoin, restart.
Readers replicate through a link in the fabric (one per reader, on its own loopback address),
so pointing a link at a new writer is how a reader follows it, and toxics on the link slow or
cut its replication.

`EngineCluster` is abstract (as Locust's `User(abstract=True)`): each method an engine must
implement raises `NotImplementedError` naming it in the base. The operations the next capabilities need
(base backups and point-in-time restore, Backtrack, cross-cluster replication for Global
Database and Blue/Green) raise `EngineOperationUnsupported` until an engine implements them,
so an API call that needs one answers with a clear refusal instead of an attribute error.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from harness.emulator.fabric import FabricClient, FabricError
from harness.emulator.processes import Child, ProcessRegistry
from harness.emulator.replication import ReplicationSnapshot

LAG_TOXIC = "gameday-lag"  # the toxic `lag_reader` puts on a reader's link


class EngineOperationUnsupported(NotImplementedError):
    """An operation this engine of the emulator cannot do yet (the API turns it into a refusal)."""


@dataclass(frozen=True)
class BaseBackup:
    """A consistent copy of a writer's data files: where every restore starts (a point-in-time
    restore, or a snapshot's).

    `position` is where in the writer's log the copy is consistent (a PostgreSQL LSN and
    timeline, a MariaDB GTID); replaying the cluster's continuous backup (storage-node WAL,
    binlog archive) from there reaches any later point. The copy holds every change committed
    before `started_at` and none committed after `taken_at` (it is consistent as of a moment in
    between, which is why a snapshot's boundary is an interval).
    """

    directory: Path  # self-contained: restoring from it needs nothing of the cluster it came from
    position: str
    started_at: datetime  # UTC
    taken_at: datetime  # UTC: the backup is consistent by then; the earliest point it restores to
    size_bytes: int = 0


@dataclass(frozen=True)
class RestoredVolume:
    """What `restore_volume` built: the data as of `reached`, exact to the engine's resolution."""

    reached: datetime  # UTC: every change committed at or before it is there, none after it
    position: str  # where in the source's log replay stopped (LSN / GTID)
    replayed_bytes: int = 0  # how much of the change stream was replayed (for the benchmark)
    resolution_s: float = 1e-6  # the engine's time resolution at the boundary
    paused_s: float = 0.0  # a rewind: how long the writer was down
    how: str = "replay"  # a rewind: "flashback" (the change passed over undone) or "rebuild" (a restore in place)
    readers_flashed_back: tuple[str, ...] = ()  # a rewind: readers undone on their own data (others re-cloned)


@dataclass
class EngineInstance:
    """The engine side of one DB instance: its server process, files and addresses."""

    identifier: str
    root: Path
    socket_dir: Path  # short: Unix socket paths are limited to 107 bytes
    host: str  # the engine's own loopback address
    port: int
    child: Child | None = None
    role: str = "reader"  # writer | reader

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "engine.log"

    def target(self) -> dict[str, object]:
        """How the fabric reaches this engine."""
        return {"id": self.identifier, "host": self.host, "port": self.port}

    def alive(self) -> bool:
        return self.child is not None and self.child.alive()


@dataclass
class EngineCluster:
    """The engine side of one Aurora cluster: the contract every engine implements, and the
    bookkeeping (instances, addresses, reader links, storage-node defaults) they share."""

    # The Aurora engine this engine cluster emulates, as the API names it (for refusals).
    aurora_engine: ClassVar[str] = "this"
    # Does rebooting the writer restart the readers too? (Aurora PostgreSQL yes, Aurora MySQL 2.10+ no.)
    restarts_readers_with_writer: ClassVar[bool] = False
    # Can `base_backup` copy the resting volume of a cluster with no instance (the final snapshot
    # DeleteDBCluster takes, a snapshot of an instance-less cluster)? Without it those are refused.
    backs_up_resting_volume: ClassVar[bool] = False
    # Process signals for stop modes (smart | fast | immediate | kill).
    STOP_SIGNALS: ClassVar[dict[str, int]] = {"kill": signal.SIGKILL}

    registry: ProcessRegistry
    root: Path
    port: int
    admin_password: str
    fabric: FabricClient
    link_prefix: str
    reader_link_host: Callable[[int], str]  # instance slot -> loopback address of its link
    socket_root: Path  # where instances' Unix sockets live (a short path)
    region_azs: list[str] = field(default_factory=list)
    instances: dict[str, EngineInstance] = field(default_factory=dict)
    slots: dict[str, int] = field(default_factory=dict)  # instance -> address slot
    writer_id: str | None = None
    # Global Database: while this cluster is a secondary, its writer is the replica head: read-only,
    # replicating from the primary Region through this inter-Region link address (None: a primary).
    upstream_host: str | None = None
    # Links other workflows route to this cluster through, by the name users give them (a Blue/Green
    # green environment's `blue-green` link from blue's writer): they take toxics like the readers' links.
    extra_links: dict[str, str] = field(default_factory=dict)

    # --- roles: what the runtime asks (every engine implements these) ------------------------------------
    def start_first_writer(self, instance: EngineInstance, master_user: str, master_password: str,
                           database: str | None) -> None:
        """Bring up the cluster's first writer, on a fresh volume (creating the master user and
        database) or on the volume the last instance left (`remove(..., keep_as_volume=True)`)."""
        raise self._missing("start_first_writer")

    def add_reader(self, instance: EngineInstance) -> None:
        """Start a new reader: a copy of the writer, replicating from it through its link."""
        raise self._missing("add_reader")

    def set_master_password(self, user: str, password: str) -> None:
        """Change the master user's password on the writer (ModifyDBCluster)."""
        raise self._missing("set_master_password")

    def restart(self, instance: EngineInstance, *, as_writer: bool) -> None:
        """Reboot in place with the same role afterwards: no failover (a reboot, a crash's recovery)."""
        raise self._missing("restart")

    def remove(self, instance: EngineInstance, keep_as_volume: bool) -> None:
        """Stop an instance and forget it; the cluster's last one leaves its data as the volume."""
        raise self._missing("remove")

    def fence(self, old_writer: EngineInstance) -> None:
        """Stop the writer at once, so nothing it writes from now on can be acknowledged."""
        raise self._missing("fence")

    def promote(self, target: EngineInstance, *, safe: bool = True) -> str:
        """Make `target` the writer; returns the log position where its history forks.

        Safe promotion first gives it every change the cluster acknowledged (no acknowledged
        write is lost in-region, as on Aurora); unsafe promotion (negative controls) does not.
        """
        raise self._missing("promote")

    def follow(self, reader: EngineInstance, fork: str) -> None:
        """Make a running reader follow the new writer whose history forked at `fork`."""
        raise self._missing("follow")

    def caught_up(self, instance: EngineInstance) -> bool:
        """Is this reader replicating from the writer right now (not still restoring, rejoining or
        reconnecting)? Only such a reader may be promoted, as on Aurora."""
        return self.alive(instance)

    def rejoin(self, instance: EngineInstance) -> None:
        """Bring an instance back as a reader of the current writer, dropping whatever it holds
        beyond the writer's history (an old writer after failover, a crashed reader)."""
        raise self._missing("rejoin")

    # --- what fault injection and the SQL surface ask ------------------------------------------------------
    def write_position(self) -> int | None:
        """The writer's log position as an integer (None when it cannot answer): replica lag's clock."""
        raise self._missing("write_position")

    def replication_snapshot(self, observe_writer: Callable[[int], None] | None = None) -> ReplicationSnapshot:
        """Where the writer and each reader stand, for `aurora_replica_status()`; the writer's
        position goes to `observe_writer` as soon as it is read."""
        raise self._missing("replication_snapshot")

    def end_client_sessions(self, instance: EngineInstance) -> int:
        """A dispatcher crash: end every client session on the instance (its replication stays);
        returns how many."""
        raise self._missing("end_client_sessions")

    def drop_caches(self, instance: EngineInstance) -> None:
        """A node crash: the instance restarts with a cold cache."""
        evict_page_cache(instance.data_dir)

    def client_rewrites(self, identifier: str) -> dict[str, Any]:
        """Query rewrites the client endpoints apply for this instance (none by default)."""
        return {}

    # --- continuous backup, snapshots and point-in-time restore -------------------------------------------
    def base_backup(self, destination: Path) -> BaseBackup:
        """Copy the writer's data files, consistent, into `destination` (online: the writer keeps
        taking writes) and say where in its log the copy is consistent. With the cluster's
        continuous backup (storage-node WAL, binlog archive) it is what RestoreDBClusterToPointInTime
        restores from; alone, it is a cluster snapshot. A cluster with no instance is backed up
        from its resting volume (DeleteDBCluster's final snapshot is always of such a cluster); the
        caller holds the runtime's lock then, so no instance starts on the volume meanwhile."""
        raise self._unsupported("taking a base backup")

    def restorable_until(self) -> datetime | None:
        """LatestRestorableTime: the latest moment (UTC) up to which every committed change is in
        the continuous backup, so a restore to it loses nothing committed before it; None before
        the cluster has had a writer. (Aurora's trails the last commit by about 5 minutes; the
        emulator's is as late as its continuous backup really is.) DescribeDBClusters calls it, so
        it must answer at once."""
        raise self._unsupported("point-in-time restore")

    def restore_volume(self, source: EngineCluster, backup: BaseBackup, point_in_time: datetime | None
                       ) -> RestoredVolume:
        """Build this (new, instance-less) cluster's volume, so that its first instance starts on
        it (`start_first_writer`), from `backup` of `source` (a cluster of the same engine), then
        replay `source`'s continuous backup up to `point_in_time` and no further: every change
        committed at or before it is there, none committed after it (at the engine's resolution).
        `point_in_time` None restores the backup alone (a snapshot); `source` is then not read, and
        is the new cluster itself (the snapshot's cluster may be gone). The result must not depend on
        `source` afterwards (it may be deleted), and `backup.directory` is only read (other restores
        and copies read it too). Runs in a background job; may take minutes."""
        raise self._unsupported("point-in-time restore")

    def prune_continuous_backup(self, before: datetime) -> int:
        """Drop change-stream files no restore from a kept base backup can need (the retention
        period has passed them); returns how many files went. Optional: the default keeps all."""
        return 0

    def rewind(self, backup: BaseBackup, point_in_time: datetime, pause: Callable[[], None] = lambda: None
               ) -> RestoredVolume:
        """Backtrack: rewind the cluster in place (the writer's data, and the readers with it) to
        `point_in_time`, starting from `backup` (one of its own, taken at or before the point on the
        point's branch: `backup_reaches`), so that every change committed at or before the point is
        there and none after it. The same instances, endpoints and identities afterwards; the changes
        passed over stay in the continuous backup, so a later rewind to a later moment within the
        window can move forward again. A point it cannot reach raises before anything is touched.
        `pause` is called just before the instances stop (the runtime closes client connections then).
        Returns what was reached. Runs in a background job with the runtime's lock held."""
        raise self._unsupported("Backtrack")

    def change_records(self) -> int:
        """How many change records the continuous backup keeps (BacktrackConsumedChangeRecords); DescribeDBClusters
        calls it, so it must answer at once. 0 when the engine does not count them."""
        return 0

    def backup_reaches(self, backup: BaseBackup, point_in_time: datetime) -> bool:
        """Can a restore or rewind to `point_in_time` start from `backup`? Any backup taken by then,
        unless backtracks have branched the history (then only one on the point's own branch)."""
        return backup.taken_at <= point_in_time

    def replicate_to(self, target: EngineCluster, link_host: str) -> None:
        """Make `target`'s writer a read-only replica of this cluster's writer, replicating through
        a fabric link on `link_host` (so latency toxics model the distance): the secondary cluster
        of a Global Database, the green environment of a Blue/Green deployment. `target` starts
        from a copy of this cluster and keeps its own readers following its writer."""
        raise self._unsupported("cross-cluster replication")

    def stop_replicating(self) -> str:
        """Stop following the cluster this one replicates from and open the writer for writes
        (Global Database switchover or failover, Blue/Green switchover); returns the log position
        it stopped at, so the caller can tell what had not crossed."""
        raise self._unsupported("cross-cluster replication")

    # --- Global Database (global_database.py drives these; the primary is another engine cluster) ---------
    def start_replica_head(self, instance: EngineInstance, source: EngineCluster, link_host: str) -> None:
        """Start this secondary cluster's first instance as its replica head: a copy of `source`'s
        writer, read-only, replicating from it through the inter-Region link on `link_host`. The
        cluster's later instances are readers of the head, as any reader is of its writer."""
        raise self._unsupported("Global Database replication")

    def fence_writes(self) -> int:
        """Stop the writer taking writes but keep it running (a switchover's first step): no
        client session survives and no new one may write. Returns its log position then, which
        every acknowledged commit is at or before."""
        raise self._unsupported("Global Database replication")

    def stop_volume(self) -> None:
        """Stop what keeps the cluster volume going (storage nodes, the binlog archive) while no
        instance runs (a Region outage, a failover's fenced old primary)."""

    def finish_history(self) -> int | None:
        """Stop the fenced writer cleanly so its log is final (a switchover, before the target is
        promoted) and return the position its log ends at, for the target to reach, so the old
        writer needs no rewind to follow it; None for engines that keep it running (MariaDB)."""
        return None

    def show_global_db_rpo(self, seconds: int) -> None:
        """Make the writer show the cluster's `rds.global_db_rpo` (-1: unset); engines without the
        parameter (Aurora MySQL) ignore it."""

    def unfence_writes(self) -> None:
        """Undo `fence_writes` (a switchover that was cancelled)."""
        raise self._unsupported("Global Database replication")

    def replica_positions(self) -> dict[str, Any]:
        """Where every instance of this secondary cluster stands in the primary's log:
        instance -> `ReaderPosition` (the head's is what crossed the inter-Region link)."""
        raise self._unsupported("Global Database replication")

    def demote_to_replica(self, source: EngineCluster, link_host: str) -> None:
        """Turn this cluster's (fenced) writer into a replica head of `source`, whose history it
        shares (a switchover: nothing of its own is beyond what `source` holds)."""
        raise self._unsupported("Global Database replication")

    def rebuild_replica(self, source: EngineCluster, link_host: str) -> None:
        """Rebuild this cluster as a secondary of `source` from a fresh copy: head and readers
        (an old primary rejoining after a failover with data loss: what it held that `source`
        lacks is gone, as Aurora's resync discards it)."""
        raise self._unsupported("Global Database replication")

    # --- Blue/Green (blue_green.py drives these; `source` is the blue environment's engine cluster) ------
    def start_green(self, instance: EngineInstance, master_user: str, master_password: str, database: str | None,
                    source: EngineCluster, link_host: str) -> None:
        """Start this green cluster's first instance as its writer: loaded from `source`'s data and
        kept in sync with it by the replication Aurora uses for the engine (logical replication,
        binlog replication) through a fabric link on `link_host`, read-only for applications until
        the switchover. Later instances are readers of it, as any reader is of its writer."""
        raise self._unsupported("Blue/Green deployments")

    def green_positions(self, source: EngineCluster) -> tuple[int, int] | None:
        """(`source`'s writer's log position, how far this green cluster has applied it), in one
        engine unit, for replication lag and the switchover's catch-up; None when it cannot answer."""
        raise self._unsupported("Blue/Green deployments")

    def green_replication_fault(self, source: EngineCluster) -> str | None:
        """Why replication from `source` to this green cluster is broken for good (the deployment
        cannot switch over), worded as the deployment reports it; None while it is healthy."""
        raise self._unsupported("Blue/Green deployments")

    def active_writes(self, older_than_s: float) -> list[str]:
        """Client write transactions open on the writer for `older_than_s` or longer, and DDL
        statements running (a switchover's guardrails), described."""
        raise self._unsupported("Blue/Green deployments")

    def sync_sequences(self, source: EngineCluster) -> int:
        """Bring this green cluster's sequences to `source`'s values (replication that does not carry
        them); returns how many. Engines whose replication carries them have nothing to do."""
        return 0

    def stop_green_replication(self, source: EngineCluster | None, *, open_writes: bool) -> None:
        """Stop replicating from `source` (None: it is gone) and clean up what replication left on it;
        with `open_writes` the writer takes application writes from now on (switchover)."""
        raise self._unsupported("Blue/Green deployments")

    def stop_publishing(self) -> None:
        """This blue cluster no longer feeds a green one (its deployment was deleted)."""

    def rename_instances(self, names: dict[str, str]) -> None:
        """Rename several instances (old name -> new), as a switchover renames a whole cluster."""
        for old, new in names.items():
            self.rename_instance(old, new)

    def rename_instance(self, old: str, new: str) -> None:
        """An instance takes a new name (a Blue/Green switchover's rename): its files stay where they
        are; its replication link and what identifies it follow the name."""
        instance = self.instances.pop(old)
        slot = self.slots.pop(old)
        self._remove_link(self._link_name("rd", old))
        instance.identifier = new
        self.instances[new] = instance
        self.slots[new] = slot
        if self.writer_id == old:
            self.writer_id = new
        elif self.writer_id is not None and self.writer_id in self.instances:
            self._route_reader_link(instance, self.writer())

    def _missing(self, method: str) -> NotImplementedError:
        return NotImplementedError(f"{type(self).__name__} must implement EngineCluster.{method}() "
                                   f"(see harness/emulator/engines/base.py)")

    def _unsupported(self, operation: str) -> EngineOperationUnsupported:
        return EngineOperationUnsupported(f"{operation} is not supported by the {self.aurora_engine} engine "
                                          f"of this emulator yet")

    # --- instances -----------------------------------------------------------------------------
    def new_instance(self, identifier: str, slot: int, host: str) -> EngineInstance:
        instance = EngineInstance(identifier, self.root / "instances" / identifier,
                                  self.socket_root / f"{self.link_prefix}-i{slot}", host, self.port)
        instance.root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(instance.socket_dir, ignore_errors=True)
        instance.socket_dir.mkdir(parents=True)
        self.instances[identifier] = instance
        self.slots[identifier] = slot
        return instance

    def writer(self) -> EngineInstance:
        if self.writer_id is None:
            raise LookupError("the cluster has no writer")
        return self.instances[self.writer_id]

    def alive(self, instance: EngineInstance) -> bool:
        return instance.alive()

    def stop(self, instance: EngineInstance, mode: str = "fast", timeout: float = 30) -> None:
        """Stop an instance's server: smart, fast, immediate, or kill (SIGKILL, a crash)."""
        if instance.child is None:
            return
        instance.child.stop(self.STOP_SIGNALS.get(mode, signal.SIGKILL), timeout=timeout)
        self.registry.forget(instance.child)

    def forget_instance(self, instance: EngineInstance) -> None:
        self._remove_link(self._link_name("rd", instance.identifier))
        shutil.rmtree(instance.root, ignore_errors=True)
        shutil.rmtree(instance.socket_dir, ignore_errors=True)
        self.instances.pop(instance.identifier, None)
        self.slots.pop(instance.identifier, None)

    # --- replication links ---------------------------------------------------------------------
    def _link_name(self, kind: str, name: str) -> str:
        return f"{self.link_prefix}-link-{kind}-{name}"

    def _slot(self, instance: EngineInstance) -> int:
        return self.slots[instance.identifier]

    def _route_reader_link(self, reader: EngineInstance, writer: EngineInstance) -> None:
        """A reader replicates through its own link; pointing the link at a writer makes it follow."""
        route = {"targets": [writer.target()], "policy": "first", "stale": None}
        self.fabric.set_listener(self._link_name("rd", reader.identifier),
                                 self.reader_link_host(self._slot(reader)), self.port, route)

    def _remove_link(self, listener: str) -> None:
        """Links exist only once a writer does; removing one that never existed is fine."""
        try:
            self.fabric.remove_listener(listener)
        except FabricError:
            pass

    def link_names(self) -> list[str]:
        """Replication links that take toxics, as users name them."""
        return [f"reader:{i}" for i in self.instances if i != self.writer_id] + list(self.extra_links)

    def link_listener(self, link: str) -> str:
        kind, _, name = link.partition(":")
        if kind == "reader" and name in self.instances and name != self.writer_id:
            return self._link_name("rd", name)
        if link in self.extra_links:
            return self.extra_links[link]
        raise KeyError(f"no replication link {link!r}; the links are {', '.join(self.link_names()) or 'none'}")

    def lag_reader(self, reader: str, milliseconds: int) -> None:
        """Make a reader hold the writer's latest commits `milliseconds` late (negative controls).

        By default its link delays what the writer sends: commits reach it late. Engines whose
        readers must acknowledge commits (MariaDB's semi-sync) delay applying instead.
        """
        self.fabric.add_toxic(self.link_listener(f"reader:{reader}"), LAG_TOXIC, "latency", stream="downstream",
                              toxicity=1.0, attributes={"latency_ms": milliseconds, "jitter_ms": 0})

    def unlag_reader(self, reader: str) -> bool:
        """Undo `lag_reader`: the reader gets the writer's commits on time again; False when it
        was not lagging (so rolling a condition back twice is harmless)."""
        listener = self.link_listener(f"reader:{reader}")
        if not any(toxic["name"] == LAG_TOXIC for toxic in self.fabric.list_toxics(listener)):
            return False
        self.fabric.remove_toxic(listener, LAG_TOXIC)
        return True

    def readers_cut_off(self, readers: list[str]) -> None:
        """Replication to `readers` was just held (a replica failure). Aurora's writer never waits
        for its readers, so by default there is nothing to do: the storage quorum carries commits."""

    # --- the cluster volume (engines without storage nodes) ----------------------------------------
    def storage_status(self) -> dict[str, str]:
        return {}

    def storage_nodes_in(self, az: str) -> list[str]:
        return []

    def stop_storage_node(self, name: str) -> None:
        raise KeyError(f"no storage node {name!r}: this engine's cluster volume has no storage nodes")

    def start_storage_node(self, name: str) -> None:
        self.stop_storage_node(name)

    def revive_storage_nodes(self) -> list[str]:
        """Restart what keeps the cluster volume going if it stopped on its own (the monitor calls this)."""
        return []

    def destroy(self) -> None:
        """Stop everything and remove the cluster's files."""
        for instance in list(self.instances.values()):
            self.stop(instance, "kill", timeout=10)
            self._remove_link(self._link_name("rd", instance.identifier))
            shutil.rmtree(instance.socket_dir, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)


def evict_page_cache(data_dir: Path) -> int:
    """Evict an instance's data files from the OS page cache (a node crash's cold restart; a no-op on
    tmpfs, where the emulator's data usually lives); returns the file count."""
    evicted = 0
    for root, _, files in os.walk(data_dir):
        for name in files:
            try:
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                evicted += 1
            except OSError:
                pass
            finally:
                os.close(fd)
    return evicted
