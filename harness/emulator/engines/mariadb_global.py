"""Aurora MySQL Global Database on MariaDB: a secondary cluster replicates the primary's binlog.

The secondary's replica head is a `mariadb-backup` copy of the primary's writer, replicating by
GTID through the inter-Region link, asynchronously (it never acknowledges the primary's commits:
semi-sync is off on it); the secondary's readers replicate from the head as readers do from a
writer (`log_slave_updates` makes the head re-log what it applies). A switchover makes the
primary's writer read-only and ends its sessions, lets the target apply up to the writer's
last GTID, promotes the target and points the old writer at it; a failover's old primary is
re-cloned instead (GTID replication cannot rewind).
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from harness.emulator.engines.mariadb_backup import gtid_seq
from harness.emulator.replication import ReaderPosition

if TYPE_CHECKING:
    from harness.emulator.engines.base import EngineInstance
    from harness.emulator.engines.mariadb import MariaDbCluster

ADMIN_USER = "rdsadmin"


def start_replica_head(cluster: MariaDbCluster, instance: EngineInstance, source: MariaDbCluster,
                       link_host: str) -> None:
    cluster.writer_id = instance.identifier
    cluster.upstream_host = link_host
    _copy_from(cluster, instance, source)
    cluster._start(instance, writer=False)  # noqa: SLF001
    replicate_from_upstream(cluster, instance, cluster._backup_gtid(instance.data_dir))  # noqa: SLF001


def _copy_from(cluster: MariaDbCluster, instance: EngineInstance, source: MariaDbCluster) -> None:
    backup = instance.root / "backup"
    shutil.rmtree(backup, ignore_errors=True)
    shutil.rmtree(instance.data_dir, ignore_errors=True)
    cluster.registry.give_to_engine_user(instance.root)
    source._copy_writer(backup)  # noqa: SLF001 - an online copy of the primary's writer
    backup.rename(instance.data_dir)
    cluster._begin_history(instance)  # noqa: SLF001


def replicate_from_upstream(cluster: MariaDbCluster, head: EngineInstance, gtid: str | None = None) -> None:
    statements = ["STOP SLAVE", "SET GLOBAL rpl_semi_sync_slave_enabled = OFF"]
    if gtid is not None:
        statements.append(f"SET GLOBAL gtid_slave_pos = '{gtid}'")
    statements += [
        f"CHANGE MASTER TO MASTER_HOST='{cluster.upstream_host}', MASTER_PORT={cluster.port}, "
        f"MASTER_USER='{ADMIN_USER}', MASTER_PASSWORD='{cluster.admin_password}', MASTER_USE_GTID=slave_pos, "
        f"MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1",
        "START SLAVE",
    ]
    cluster._query(head, *statements)  # noqa: SLF001


def fence_writes(cluster: MariaDbCluster) -> int:
    writer = cluster.writer()
    cluster._query(writer, "SET GLOBAL read_only = ON")  # noqa: SLF001 - the master user lacks READ_ONLY ADMIN
    cluster.end_client_sessions(writer)
    return gtid_seq(cluster._query(writer, "SELECT @@gtid_binlog_pos")[0][0])  # noqa: SLF001


def unfence_writes(cluster: MariaDbCluster) -> None:
    cluster._query(cluster.writer(), "SET GLOBAL read_only = OFF")  # noqa: SLF001


def replica_positions(cluster: MariaDbCluster) -> dict[str, ReaderPosition]:
    positions = {}
    for identifier, instance in list(cluster.instances.items()):
        if not instance.alive():
            continue
        found = cluster.replica_status(instance)
        if found is None:
            continue
        status, replayed = found
        received = max(gtid_seq(status.get("Gtid_IO_Pos")), replayed)
        positions[identifier] = ReaderPosition(received=received, replayed=replayed,
                                               applied_all_received=replayed >= received)
    return positions


def stop_replicating(cluster: MariaDbCluster) -> str:
    head = cluster.writer()
    fork = cluster._query(head, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF",  # noqa: SLF001
                          "SET GLOBAL rpl_semi_sync_master_enabled = ON", "SELECT @@gtid_current_pos")[0][0]
    cluster.upstream_host = None
    head.role = "writer"
    cluster.history.became_writer(cluster._history_of(head))  # noqa: SLF001 - its binlog is the cluster's now
    cluster._publish_storage_links()  # noqa: SLF001
    for reader in cluster.instances.values():
        if reader is not head and reader.alive():  # re-attach as semi-sync replicas of a writer
            cluster._query(reader, "STOP SLAVE", "START SLAVE")  # noqa: SLF001
    return fork  # the monitor starts the new writer's binlog archive


def demote_to_replica(cluster: MariaDbCluster, source: MariaDbCluster, link_host: str) -> None:
    head = cluster.writer()
    cluster._stop_archive()  # noqa: SLF001
    cluster.upstream_host = link_host
    head.role = "reader"
    position = cluster._query(head, "SET GLOBAL rpl_semi_sync_master_enabled = OFF",  # noqa: SLF001
                              "SELECT @@gtid_binlog_pos")[0][0]
    replicate_from_upstream(cluster, head, position)


def rebuild_replica(cluster: MariaDbCluster, source: MariaDbCluster, link_host: str) -> None:
    head = cluster.writer()
    for instance in cluster.instances.values():
        cluster.stop(instance, "kill")
    cluster._stop_archive()  # noqa: SLF001
    cluster.upstream_host = link_host
    _copy_from(cluster, head, source)
    cluster._start(head, writer=False)  # noqa: SLF001
    replicate_from_upstream(cluster, head, cluster._backup_gtid(head.data_dir))  # noqa: SLF001
    for reader in [i for i in cluster.instances.values() if i is not head]:
        cluster._clone_from_writer(reader)  # noqa: SLF001 - a copy of the head
        cluster._start(reader, writer=False)  # noqa: SLF001
        cluster._replicate(reader, cluster._backup_gtid(reader.data_dir))  # noqa: SLF001
