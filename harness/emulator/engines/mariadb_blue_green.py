"""Aurora MySQL Blue/Green on MariaDB: the green cluster follows blue by binlog replication.

Aurora MySQL keeps the green environment in sync by binlog replication from blue's writer, which
is what MariaDB does natively: green's writer is a `mariadb-backup` copy of blue's writer,
replicating by GTID through a fabric link, read-only (`read_only=ON`, as Aurora sets on green),
and green's readers replicate from it (`log_slave_updates`). DDL replicates too (Aurora MySQL has
no DDL limitation). The switchover stops the replication and opens green's writer for writes,
the way a Global Database secondary is promoted (`mariadb_global.stop_replicating`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pymysql

from harness.emulator.engines import mariadb_global
from harness.emulator.engines.mariadb_backup import gtid_seq

if TYPE_CHECKING:
    from harness.emulator.engines.base import EngineInstance
    from harness.emulator.engines.mariadb import MariaDbCluster

SYSTEM_USERS = ("rdsadmin", "system user", "event_scheduler", "unauthenticated user")
ACTIVE_WRITES_SQL = (
    "SELECT p.id, p.user, left(coalesce(p.info, ''), 80), "
    "       timestampdiff(SECOND, t.trx_started, now()), "
    "       coalesce(p.info, '') REGEXP '^[[:space:]]*(create|alter|drop|truncate|rename|grant|revoke|optimize)' "
    "FROM information_schema.innodb_trx t JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id "
    "WHERE p.user NOT IN ({users}) AND p.id <> CONNECTION_ID() AND t.trx_rows_modified > 0 "
    "UNION ALL "
    "SELECT id, user, left(info, 80), time, 1 FROM information_schema.processlist "
    "WHERE user NOT IN ({users}) AND id <> CONNECTION_ID() AND command = 'Query' "
    "  AND info REGEXP '^[[:space:]]*(create|alter|drop|truncate|rename|optimize)'"
).format(users=", ".join(repr(u) for u in SYSTEM_USERS))


def start_green(green: MariaDbCluster, instance: EngineInstance, source: MariaDbCluster, link_host: str) -> None:
    """Green's writer: a copy of blue's writer replicating from it, read-only."""
    mariadb_global.start_replica_head(green, instance, source, link_host)


def positions(green: MariaDbCluster, source: MariaDbCluster) -> tuple[int, int] | None:
    """Blue's last GTID sequence and the one green's writer has applied."""
    found = green.replica_status(green.writer())
    if found is None:
        return None
    blue = gtid_seq(source._query(source.writer(), "SELECT @@gtid_binlog_pos")[0][0])  # noqa: SLF001
    return blue, found[1]


def replication_fault(green: MariaDbCluster) -> str | None:
    found = green.replica_status(green.writer())
    if found is None:
        return "Replication degraded: the green environment's writer does not answer."
    status, _ = found
    if status.get("Slave_SQL_Running") == "No" or status.get("Last_SQL_Errno"):
        return (f"Replication degraded: the green environment stopped applying blue's binlog "
                f"({status.get('Last_SQL_Error') or 'the SQL thread is not running'}).")
    return None


def active_writes(cluster: MariaDbCluster, older_than_s: float) -> list[str]:
    found = []
    try:
        rows = cluster._query(cluster.writer(), ACTIVE_WRITES_SQL)  # noqa: SLF001
    except pymysql.MySQLError:
        return found
    for session, user, query, age, ddl in rows:
        if ddl:
            found.append(f"a DDL statement is running (session {session} of {user}: {query!r})")
        elif age is not None and age >= older_than_s:
            found.append(f"a write transaction has been open for {age} s (session {session} of {user})")
    return found


def stop_green_replication(green: MariaDbCluster, *, open_writes: bool) -> None:
    if open_writes:
        mariadb_global.stop_replicating(green)
        return
    green._query(green.writer(), "STOP SLAVE", "RESET SLAVE ALL")  # noqa: SLF001
    green.upstream_host = None
