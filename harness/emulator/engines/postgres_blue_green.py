"""Aurora PostgreSQL Blue/Green on real PostgreSQL: the green cluster follows blue by logical replication.

Aurora PostgreSQL's green environment is kept in sync by logical replication, with its documented
consequences, so the emulator uses PostgreSQL's own publication/subscription: a green writer
started fresh takes blue's roles and schema (`pg_dumpall --roles-only`, `pg_dump --schema-only`),
then one subscription per database copies blue's rows (the initial table synchronisation) and
streams what blue commits afterwards, through a fabric link (so toxics can lag or cut it). Logical
replication carries rows only: DDL on blue is not replayed on green, so a schema change on blue
degrades replication ("Replication degraded", recreate the deployment) and sequences are brought
to blue's values only at switchover, as the User Guide says.

Green is read-only for applications (`default_transaction_read_only`, as the fenced writer of a
switchover) while the subscription's apply worker, which ignores that default, keeps writing.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import TYPE_CHECKING

from psycopg import sql

from harness.emulator.engines.postgres_volume import lsn_value
from harness.emulator.processes import CommandError

if TYPE_CHECKING:
    from harness.emulator.engines.base import EngineInstance
    from harness.emulator.engines.postgres import PgCluster

log = logging.getLogger("harness.emulator")

ADMIN_USER = "rdsadmin"
PUBLICATION = "aurora_blue_green"
SYNC_TIMEOUT_S = 300.0
READ_ONLY_SQL = ("ALTER SYSTEM SET default_transaction_read_only = on", "SELECT pg_catalog.pg_reload_conf()")
READ_WRITE_SQL = ("ALTER SYSTEM RESET default_transaction_read_only", "SELECT pg_catalog.pg_reload_conf()")
DATABASES_SQL = ("SELECT datname, pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database "
                 "WHERE datallowconn AND NOT datistemplate AND datname <> 'rdsadmin' ORDER BY datname")
# What DDL changes: relations, their columns and types (logical replication replays none of it).
SCHEMA_SQL = """
SELECT pg_catalog.md5(coalesce(pg_catalog.string_agg(
         n.nspname || '.' || c.relname || ':' || c.relkind::text || ':' || coalesce((
           SELECT pg_catalog.string_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod), ','
                                        ORDER BY a.attnum)
           FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), ''),
         ';' ORDER BY n.nspname, c.relname), ''))
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
  AND n.nspname NOT LIKE 'pg\\_temp%' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'i')"""
LONG_WRITES_SQL = """
SELECT pid, usename, coalesce(left(query, 80), ''), extract(epoch FROM now() - xact_start)::float8,
       state = 'active' AND query ~* '^\\s*(create|alter|drop|truncate|comment|grant|revoke|reindex|cluster)\\M'
FROM pg_catalog.pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_catalog.pg_backend_pid() AND backend_xid IS NOT NULL"""


def _subscription(green: PgCluster, database: str) -> str:
    """One subscription (and slot on blue) per green cluster and database."""
    return f"aurora_bg_{green.link_prefix}_{re.sub(r'[^a-z0-9_]', '_', database.lower())}"[:63]


def databases(cluster: PgCluster) -> list[tuple[str, str]]:
    with cluster.admin(cluster.writer()) as conn:
        return [(str(name), str(owner)) for name, owner in conn.execute(DATABASES_SQL).fetchall()]


def start_green(green: PgCluster, instance: EngineInstance, master_user: str, master_password: str,
                database: str | None, source: PgCluster, link_host: str) -> None:
    """Green's writer: a fresh writer given blue's roles and schema, then subscribed to blue."""
    green.start_first_writer(instance, master_user, master_password, database)
    work = instance.root / "blue-green"
    work.mkdir(exist_ok=True)
    green.registry.give_to_engine_user(work)
    blue = source.writer()
    env = {"PGPASSFILE": str(source.passfile)}
    roles = work / "roles.sql"
    green.registry.run([green.bins("pg_dumpall"), "--roles-only", "-h", str(blue.socket_dir), "-p", str(source.port),
                        "-U", ADMIN_USER, "-f", str(roles)], env=env, timeout=120)
    _psql(green, instance, "postgres", roles)  # existing roles (rdsadmin, the master user) only complain
    with green.admin(instance) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_catalog.pg_database").fetchall()}
        for name, owner in databases(source):
            if name not in existing:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))
    for name, _ in databases(source):
        schema = work / f"schema-{name}.sql"
        green.registry.run([green.bins("pg_dump"), "--schema-only", "--no-publications", "--no-subscriptions",
                            "-h", str(blue.socket_dir), "-p", str(source.port), "-U", ADMIN_USER, "-d", name,
                            "-f", str(schema)], env=env, timeout=120)
        _psql(green, instance, name, schema)
        with source.admin(blue, name) as conn:
            conn.execute("SET default_transaction_read_only = off")
            if not conn.execute("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = %s",
                                (PUBLICATION,)).fetchone():
                conn.execute(sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(sql.Identifier(PUBLICATION)))
        conninfo = (f"host={link_host} port={source.port} user={ADMIN_USER} passfile={green.passfile} "
                    f"dbname={name} connect_timeout=2 application_name={_subscription(green, name)}")
        with green.admin(instance, name) as conn:
            conn.execute(sql.SQL("CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (copy_data = true)")
                         .format(sql.Identifier(_subscription(green, name)), sql.Literal(conninfo),
                                 sql.Identifier(PUBLICATION)))
    _wait_synchronised(green, instance, [name for name, _ in databases(source)])
    with green.admin(instance) as conn:
        for statement in READ_ONLY_SQL:
            conn.execute(statement)


def _psql(cluster: PgCluster, instance: EngineInstance, database: str, script: object) -> None:
    """Run a dump on green; objects that already exist (the template's) are reported and skipped."""
    try:
        cluster.registry.run([cluster.bins("psql"), "-X", "-q", "-h", str(instance.socket_dir), "-p",
                              str(cluster.port), "-U", ADMIN_USER, "-d", database, "-f", str(script)],
                             env={"PGPASSFILE": str(cluster.passfile)}, timeout=120)
    except CommandError as exc:  # psql itself failed (statement errors alone do not stop it)
        raise CommandError(f"loading {script} into {instance.identifier} failed: {exc}") from exc


def _wait_synchronised(green: PgCluster, instance: EngineInstance, names: list[str]) -> None:
    """Every table's initial copy done (`pg_subscription_rel` state `r`eady)."""
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    for name in names:
        with green.admin(instance, name) as conn:
            while True:
                pending = conn.execute("SELECT count(*) FROM pg_catalog.pg_subscription_rel "
                                       "WHERE srsubstate <> 'r'").fetchone()[0]
                if not pending:
                    break
                if time.monotonic() > deadline:
                    raise CommandError(f"the initial copy of {name} did not finish within {SYNC_TIMEOUT_S:g} s")
                time.sleep(0.1)


def positions(green: PgCluster, source: PgCluster) -> tuple[int, int] | None:
    """Blue's WAL position and how far green has confirmed it (the slowest subscription)."""
    prefix = f"aurora_bg_{green.link_prefix}_"
    with source.admin(source.writer(), timeout=2) as conn:
        row = conn.execute("SELECT pg_catalog.pg_current_wal_flush_lsn()::text, min(confirmed_flush_lsn)::text "
                           "FROM pg_catalog.pg_replication_slots WHERE slot_name LIKE %s",
                           (prefix.replace("_", "\\_") + "%",)).fetchone()
    if row is None or row[1] is None:
        return None
    return lsn_value(row[0]), lsn_value(row[1])


def replication_fault(green: PgCluster, source: PgCluster) -> str | None:
    """Why replication to green is broken for good, or None: DDL on blue (the schemas differ). (An
    apply worker's errors are not counted: a cut link makes it time out and reconnect, which is not
    broken; a conflict that really stops it shows as lag, which the switchover's catch-up meets.)"""
    for name, _ in databases(source):
        with source.admin(source.writer(), name, timeout=2) as blue, \
                green.admin(green.writer(), name, timeout=2) as conn:
            if blue.execute(SCHEMA_SQL).fetchone()[0] != conn.execute(SCHEMA_SQL).fetchone()[0]:
                return (f"Replication degraded: a DDL statement ran on the blue environment (database {name}); "
                        f"logical replication does not replicate DDL. Delete and recreate the blue/green "
                        f"deployment.")
    return None


def active_writes(cluster: PgCluster, older_than_s: float) -> list[str]:
    """Client sessions holding a write transaction open longer than `older_than_s`, and any DDL."""
    found = []
    with cluster.admin(cluster.writer(), timeout=2) as conn:
        for pid, user, query, age, ddl in conn.execute(LONG_WRITES_SQL).fetchall():
            if ddl:
                found.append(f"a DDL statement is running (session {pid} of {user}: {query!r})")
            elif age is not None and age >= older_than_s:
                found.append(f"a write transaction has been open for {age:.0f} s (session {pid} of {user})")
    return found


def sync_sequences(green: PgCluster, source: PgCluster) -> int:
    """Bring every sequence on green to blue's value (logical replication does not carry them)."""
    synced = 0
    for name, _ in databases(source):
        with source.admin(source.writer(), name) as blue:
            values = blue.execute("SELECT schemaname, sequencename, last_value FROM pg_catalog.pg_sequences "
                                  "WHERE last_value IS NOT NULL").fetchall()
        with green.admin(green.writer(), name) as conn:
            conn.execute("SET default_transaction_read_only = off")
            for schema, sequence, value in values:
                conn.execute("SELECT pg_catalog.setval(%s, %s, true)",
                             (sql.Identifier(schema, sequence).as_string(conn), value))
                synced += 1
    return synced


def stop_green_replication(green: PgCluster, source: PgCluster | None, *, open_writes: bool) -> None:
    """Drop green's subscriptions (and their slots on blue, when blue still answers); with
    `open_writes`, green's writer takes writes from now on (a switchover's last step)."""
    writer = green.writer()
    with green.admin(writer) as conn:
        names = [str(r[0]) for r in conn.execute("SELECT datname FROM pg_catalog.pg_database "
                                                 "WHERE datallowconn AND NOT datistemplate").fetchall()]
    for name in names:
        with green.admin(writer, name) as conn:
            conn.execute("SET default_transaction_read_only = off")
            for (subscription,) in conn.execute("SELECT subname FROM pg_catalog.pg_subscription s JOIN "
                                                "pg_catalog.pg_database d ON d.oid = s.subdbid "
                                                "WHERE d.datname = current_database()").fetchall():
                ident = sql.Identifier(subscription)
                conn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident))
                conn.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident))
                conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(ident))
                if source is not None:
                    _drop_slot(source, subscription)
    if open_writes:
        with green.admin(writer) as conn:
            for statement in READ_WRITE_SQL:
                conn.execute(statement)


def _drop_slot(source: PgCluster, slot: str) -> None:
    try:
        with source.admin(source.writer(), timeout=2) as conn:
            deadline = time.monotonic() + 10
            while conn.execute("SELECT active FROM pg_catalog.pg_replication_slots WHERE slot_name = %s",
                               (slot,)).fetchone() == (True,) and time.monotonic() < deadline:
                time.sleep(0.05)  # the disabled subscription's walsender is still exiting
            conn.execute("SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots "
                         "WHERE slot_name = %s", (slot,))
    except Exception:  # blue gone or down: its slot goes with it
        log.warning("could not drop replication slot %s on the blue writer", slot, exc_info=True)


def drop_publications(source: PgCluster) -> None:
    """Blue no longer publishes to green (the deployment is gone)."""
    for name, _ in databases(source):
        with source.admin(source.writer(), name) as conn:
            conn.execute("SET default_transaction_read_only = off")
            conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(PUBLICATION)))


def restart_renamed(cluster: PgCluster, instances: list[EngineInstance]) -> None:
    """Renamed instances restart, in parallel: who each is (`aurora_db_instance_identifier()`,
    `cluster_name`, its standby name) is set when its postmaster starts."""
    failures: list[BaseException] = []

    def restart(instance: EngineInstance) -> None:
        try:
            rename_instance(cluster, instance)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread below
            failures.append(exc)

    threads = [threading.Thread(target=restart, args=(i,), name=f"rename {i.identifier}") for i in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def rename_instance(cluster: PgCluster, instance: EngineInstance) -> None:
    """A renamed instance restarts: who it is (`aurora_db_instance_identifier()`, `cluster_name`,
    its standby name) is set when the postmaster starts."""
    writer = instance.role == "writer"
    read_only = False
    if writer:
        with cluster.admin(instance) as conn:
            read_only = conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
    cluster.stop(instance, "fast")
    cluster._start(instance, standby=not writer)  # noqa: SLF001 - the engine's own start (resets ALTER SYSTEM)
    if read_only:  # a fenced old blue writer stays read-only
        with cluster.admin(instance) as conn:
            for statement in READ_ONLY_SQL:
                conn.execute(statement)
