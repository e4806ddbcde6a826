"""Aurora PostgreSQL Global Database on real PostgreSQL: a secondary cluster replays the primary's WAL.

The secondary's first instance (its replica head) is a hot standby streaming from the primary's
writer through the inter-Region link (a fabric listener with the Regions' latency), and the
secondary's readers are cascading standbys of the head, so one WAL stream crosses the link, as
Aurora's replication server ships one redo stream per secondary Region. The secondary runs no
storage nodes (nothing commits there); a promotion starts them on an empty volume.

A switchover fences the primary's writer (read-only for new transactions, every client session
ended), lets the target replay up to the position it stopped at, shuts the writer down cleanly
(its walsenders ship the shutdown checkpoint to the target before it exits), promotes the target,
and restarts the old writer as a standby of it: its history is a prefix of the new timeline, so it
follows as it is (`pg_rewind` only when the target was promoted without that last record). A
failover's old primary is rebuilt from a fresh copy instead.
"""

from __future__ import annotations

import logging
import shutil
from typing import TYPE_CHECKING

from harness.emulator.engines.postgres_backup import _checkpoint
from harness.emulator.engines.postgres_volume import lsn_value
from harness.emulator.processes import CommandError
from harness.emulator.replication import ReaderPosition

if TYPE_CHECKING:
    from harness.emulator.engines.base import EngineInstance
    from harness.emulator.engines.postgres import PgCluster

log = logging.getLogger("harness.emulator")

ADMIN_USER = "rdsadmin"
FENCE_SQL = ("ALTER SYSTEM SET default_transaction_read_only = on", "SELECT pg_catalog.pg_reload_conf()")
POSITION_SQL = """
SELECT pg_catalog.pg_last_wal_receive_lsn()::text, pg_catalog.pg_last_wal_replay_lsn()::text,
       EXISTS (SELECT FROM pg_catalog.pg_stat_activity WHERE backend_type = 'startup'
                  AND wait_event IN ('RecoveryWalStream', 'RecoveryRetrieveRetryInterval'))"""


def start_replica_head(cluster: PgCluster, instance: EngineInstance, source: PgCluster, link_host: str) -> None:
    cluster.writer_id = instance.identifier
    cluster.upstream_host = link_host
    shutil.rmtree(instance.data_dir, ignore_errors=True)
    cluster.registry.give_to_engine_user(instance.root)
    source.copy_writer(instance.data_dir)
    cluster._start(instance, standby=True)  # noqa: SLF001 - the engine's own start, with the head's conninfo


def fence_writes(cluster: PgCluster) -> int:
    writer = cluster.writer()
    with cluster.admin(writer) as conn:
        for statement in FENCE_SQL:
            conn.execute(statement)
    cluster.end_client_sessions(writer)
    with cluster.admin(writer) as conn:
        return lsn_value(str(conn.execute("SELECT pg_catalog.pg_current_wal_flush_lsn()").fetchone()[0]))


def show_global_db_rpo(cluster: PgCluster, seconds: int) -> None:
    """What `SHOW rds.global_db_rpo` answers on the writer (-1: unset)."""
    with cluster.admin(cluster.writer()) as conn:
        conn.execute(f"ALTER SYSTEM SET rds.global_db_rpo = '{int(seconds)}'")
        conn.execute("SELECT pg_catalog.pg_reload_conf()")


def unfence_writes(cluster: PgCluster) -> None:
    """Undo `fence_writes` (a switchover that did not happen)."""
    with cluster.admin(cluster.writer()) as conn:
        conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
        conn.execute("SELECT pg_catalog.pg_reload_conf()")


def finish_history(cluster: PgCluster) -> int:
    """A clean shutdown of the fenced writer: its walsenders ship everything, the shutdown
    checkpoint last, to the standbys still connected (the target among them)."""
    head = cluster.writer()
    cluster.stop(head, "fast")
    cluster.stop_storage_nodes()
    return lsn_value(_checkpoint(cluster, head.data_dir)[0]) + 1  # past the checkpoint record's start


def replica_positions(cluster: PgCluster) -> dict[str, ReaderPosition]:
    positions = {}
    for identifier, instance in list(cluster.instances.items()):
        rows = cluster.probe._rows(instance, POSITION_SQL)  # noqa: SLF001 - the probe's persistent sessions
        if not rows:
            continue
        received, replayed, idle = rows[0]
        positions[identifier] = ReaderPosition(received=lsn_value(received) if received else None,
                                               replayed=lsn_value(replayed) if replayed else None,
                                               applied_all_received=bool(idle))
    return positions


def stop_replicating(cluster: PgCluster) -> str:
    """Promote the replica head (with what it has) and give it a fresh cluster volume."""
    head = cluster.writer()
    with cluster.admin(head) as conn:
        promoted = conn.execute("SELECT pg_catalog.pg_promote(true, 60)").fetchone()[0]
    if not promoted:
        raise CommandError(f"{head.identifier} did not finish promotion within 60 s")
    cluster.upstream_host = None
    head.role = "writer"
    cluster.stop_storage_nodes()
    for name in cluster.node_names:  # an empty volume: earlier WAL of other timelines would stall the nodes
        shutil.rmtree(cluster.volume_dir / name, ignore_errors=True)
        (cluster.volume_dir / name).mkdir(parents=True)
    cluster.registry.give_to_engine_user(cluster.volume_dir)
    cluster._route_storage_links(head)  # noqa: SLF001
    cluster.start_storage_nodes()
    fork, _ = cluster._fork(head)  # noqa: SLF001
    with cluster.admin(head) as conn:
        conn.execute("CHECKPOINT")  # pg_rewind reads the new timeline from the control file
    return fork


def demote_to_replica(cluster: PgCluster, source: PgCluster, link_host: str) -> None:
    head = cluster.writer()
    cluster.stop(head, "fast")
    cluster.stop_storage_nodes()
    cluster.upstream_host = link_host
    ended = lsn_value(_checkpoint(cluster, head.data_dir)[0])
    fork = lsn_value(source._fork(source.writer())[0])  # noqa: SLF001 - where the new primary's timeline starts
    if ended >= fork:  # the target was promoted before it had the old writer's last record: discard it
        _rewind_onto(cluster, head, source)
    cluster._start(head, standby=True)  # noqa: SLF001 - it follows the new timeline from the link


def _rewind_onto(cluster: PgCluster, instance: EngineInstance, source: PgCluster) -> None:
    """pg_rewind `instance` onto `source`'s writer's history; a fresh copy when it cannot."""
    (instance.data_dir / "standby.signal").unlink(missing_ok=True)
    writer = source.writer()
    try:
        cluster.registry.run(
            [cluster.bins("pg_rewind"), "-D", str(instance.data_dir),
             f"--source-server=host={writer.socket_dir} port={source.port} user={ADMIN_USER} "
             f"passfile={cluster.passfile} dbname=postgres"], timeout=600)
    except CommandError as exc:
        log.warning("%s: %s; copying it from %s instead", instance.identifier, exc, writer.identifier)
        _copy_from(cluster, instance, source)


def _copy_from(cluster: PgCluster, instance: EngineInstance, source: PgCluster) -> None:
    shutil.rmtree(instance.data_dir, ignore_errors=True)
    cluster.registry.give_to_engine_user(instance.root)
    source.copy_writer(instance.data_dir)


def rebuild_replica(cluster: PgCluster, source: PgCluster, link_host: str) -> None:
    head = cluster.writer()
    for instance in cluster.instances.values():
        cluster.stop(instance, "kill")
    cluster.stop_storage_nodes()
    cluster.upstream_host = link_host
    _copy_from(cluster, head, source)
    cluster._start(head, standby=True)  # noqa: SLF001
    for reader in [i for i in cluster.instances.values() if i is not head]:
        cluster._clone_from_writer(reader)  # noqa: SLF001 - a copy of the (standby) head
        cluster._route_reader_link(reader, head)  # noqa: SLF001
        cluster._start(reader, standby=True)  # noqa: SLF001
