"""Aurora PostgreSQL's own SQL functions in the emulator, and the probe that answers them.

Aurora adds built-in functions to PostgreSQL: fault injection (`aurora_inject_crash`,
`aurora_inject_replica_failure`, `aurora_inject_disk_failure`, `aurora_inject_disk_congestion`,
`aurora_show_volume_status`), identity and topology (`aurora_version`,
`aurora_db_instance_identifier`, `aurora_replica_status`) and `aurora_list_builtins`. The
emulator creates them in `pg_catalog` of every database at template time (so unqualified and
`pg_catalog.`-qualified calls both work, and every later CREATE DATABASE inherits them), owned
by the `rdsadmin` superuser, SECURITY DEFINER, with EXECUTE on the fault-injection ones granted to
`rds_superuser` only.

How a call reaches the emulator: the functions are PL/Python (`plpython3u`, Debian package
postgresql-plpython3-15). Each postmaster is started with the emulator's control URL, a token
valid only for the engine-facing actions of its own cluster (`inject`, `aurora_surface`), its
region and its instance identifier in its environment, which only the engine's own OS account
can read. A function posts `{region, instance, ...}` to the control API; the emulator applies
the fault (a crash right after answering) or answers from its live models and the engines.
Errors come back with a condition name and are raised with PostgreSQL's SQLSTATE for it
(22023 invalid_parameter_value, 0A000 feature_not_supported, ...). Everything works on hot
standby readers, where nothing can be written.

Without plpython3u the functions that need the control plane raise feature_not_supported
saying how to install it; `aurora_db_instance_identifier()` and `aurora_list_builtins()` are
plain SQL and always work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import psycopg

from harness.emulator.engines.postgres_volume import QUORUM, lsn_value
from harness.emulator.replication import ReaderPosition, ReplicationSnapshot

if TYPE_CHECKING:
    from harness.emulator.engines.base import EngineInstance

log = logging.getLogger("harness.emulator")

# The postmaster's environment: how the functions reach the emulator (see the module docstring).
ENV_URL = "GAMEDAY_EMULATOR_URL"
ENV_TOKEN = "GAMEDAY_ENGINE_TOKEN"
ENV_REGION = "GAMEDAY_REGION"
ENV_INSTANCE = "GAMEDAY_DB_INSTANCE"

# The extensions Aurora PostgreSQL 15 offers (abridged); `rds.extensions` lists those this
# machine can create. Drivers such as the AWS Advanced Python Wrapper recognise Aurora PostgreSQL
# by 'aurora_stat_utils' in it, so that one is listed whether or not it can be created.
AURORA_EXTENSIONS = [
    "address_standardizer", "amcheck", "apg_plan_mgmt", "aurora_stat_utils", "aws_commons", "aws_lambda",
    "aws_ml", "aws_s3", "bloom", "btree_gin", "btree_gist", "citext", "cube", "dblink", "dict_int",
    "earthdistance", "fuzzystrmatch", "hll", "hstore", "intarray", "isn", "lo", "ltree", "pg_buffercache",
    "pg_cron", "pg_hint_plan", "pg_partman", "pg_prewarm", "pg_repack", "pg_stat_statements", "pg_trgm",
    "pg_visibility", "pgaudit", "pgcrypto", "pglogical", "pgrowlocks", "pgstattuple", "plpgsql", "plperl",
    "plv8", "postgis", "postgres_fdw", "rds_tools", "tablefunc", "tsm_system_rows", "unaccent", "uuid-ossp",
]
ALWAYS_LISTED = "aurora_stat_utils"

# Condition names the emulator gives its refusals -> PostgreSQL SQLSTATEs.
SQLSTATES = {
    "invalid_parameter_value": "22023",
    "feature_not_supported": "0A000",
    "undefined_object": "42704",
    "object_not_in_prerequisite_state": "55000",
    "insufficient_privilege": "42501",
    "internal_error": "XX000",
}

# How long a session waits for the emulator's answer: a topology read must never hold a client
# (a driver's monitor asks it while a failover runs and retries on an error, but not on silence);
# a fault injection may take its instance's restart.
SURFACE_TIMEOUT_S = 10
ACTION_TIMEOUT_S = 60
# The emulator's own queries for the topology (replica positions, the writer's log position).
SNAPSHOT_STATEMENT_TIMEOUT_MS = 5000

# The one PL/Python function: posts to the emulator and returns {"result": ...} or
# {"error", "sqlstate", "hint"}. It raises nothing itself, because PL/Python would prefix the
# message with the exception's class; the plpgsql wrappers raise in PostgreSQL's own style.
_TRANSPORT = f"""
import json, os, urllib.error, urllib.request
sqlstates = {SQLSTATES!r}
env = os.environ
url, token, instance = env.get("{ENV_URL}"), env.get("{ENV_TOKEN}"), env.get("{ENV_INSTANCE}")
if not (url and token and instance):
    return json.dumps({{"error": "this instance is not connected to the Aurora emulator's control plane",
                       "sqlstate": "XX000"}})
body = dict(json.loads(arguments or "{{}}"), region=env.get("{ENV_REGION}", "us-east-1"), instance=instance)
request = urllib.request.Request(url + "/_emulator/" + action, data=json.dumps(body).encode(),
                                 headers={{"X-Gameday-Engine-Token": token, "Content-Type": "application/json"}},
                                 method="POST")
try:
    timeout = {SURFACE_TIMEOUT_S} if action == "aurora_surface" else {ACTION_TIMEOUT_S}
    with urllib.request.build_opener(urllib.request.ProxyHandler({{}})).open(request, timeout=timeout) as response:
        return json.dumps({{"result": json.loads(response.read())["result"]}})
except urllib.error.HTTPError as err:
    try:
        answer = json.loads(err.read() or b"{{}}")
    except ValueError:
        answer = {{}}
    reason = answer.get("reason") or ("internal_error" if err.code >= 500 else "invalid_parameter_value")
    return json.dumps({{"error": answer.get("error") or str(err.reason), "hint": answer.get("hint"),
                       "sqlstate": sqlstates.get(reason, "XX000")}})
except OSError as err:
    return json.dumps({{"error": "the Aurora emulator's control plane could not be reached: %s" % err,
                       "sqlstate": "XX000"}})
"""

_REQUEST = """
DECLARE
    answer jsonb := pg_catalog._aurora_gameday_call(action, arguments::text)::jsonb;
BEGIN
    IF answer ? 'error' THEN
        IF answer->>'hint' IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = answer->>'sqlstate', MESSAGE = answer->>'error';
        END IF;
        RAISE EXCEPTION USING ERRCODE = answer->>'sqlstate', MESSAGE = answer->>'error', HINT = answer->>'hint';
    END IF;
    RETURN answer->'result';
END
"""

_NO_PLPYTHON = """
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
        MESSAGE = 'Aurora''s built-in functions need PL/Python in the Aurora emulator',
        HINT = 'Install postgresql-plpython3-15 (make engines) and restart the emulator.';
END
"""


def _inject(fault: str) -> str:
    return f"""
BEGIN
    RETURN pg_catalog._aurora_gameday_request('inject', jsonb_build_object('fault', {fault}))->>'message';
END
"""


_CRASH = """
BEGIN
    PERFORM pg_catalog._aurora_gameday_request('inject', jsonb_build_object('fault',
        jsonb_build_object('type', 'crash', 'kind', crash_type)));
    -- The crash takes this session down (the emulator applies it just after answering): as on
    -- Aurora, the query never returns normally.
    FOR i IN 1..600 LOOP
        PERFORM pg_catalog.pg_sleep(0.05);
    END LOOP;
    RAISE EXCEPTION USING ERRCODE = 'internal_error',
        MESSAGE = format('the %s crash did not happen within 30 seconds', crash_type);
END
"""

REPLICA_STATUS_COLUMNS = (
    ("server_id", "text"), ("session_id", "text"), ("durable_lsn", "bigint"), ("highest_lsn_rcvd", "bigint"),
    ("current_read_lsn", "bigint"), ("cur_replay_latency_in_usec", "bigint"), ("active_txns", "integer"),
    ("is_current", "boolean"), ("last_transport_error", "integer"),
    ("last_error_timestamp", "timestamp with time zone"), ("last_update_timestamp", "timestamp with time zone"),
    ("feedback_xmin", "bigint"), ("feedback_epoch", "integer"), ("replica_lag_in_msec", "real"),
    ("log_stream_speed_in_kib_per_second", "real"), ("log_buffer_sequence_number", "bigint"),
    ("oldest_read_view_trx_id", "bigint"), ("oldest_read_view_lsn", "bigint"), ("pending_read_ios", "integer"),
    ("read_ios", "bigint"), ("iops", "integer"), ("cpu", "real"),
)
_REPLICA_COLUMNS = ", ".join(f"{n} {t}" for n, t in REPLICA_STATUS_COLUMNS)
GLOBAL_STATUS_COLUMNS = (
    ("aws_region", "text"), ("highest_lsn_written", "bigint"), ("durability_lag_in_msec", "bigint"),
    ("rpo_lag_in_msec", "bigint"), ("last_lag_calculation_time", "timestamp with time zone"),
    ("feedback_epoch", "integer"), ("feedback_xmin", "bigint"),
)
GLOBAL_INSTANCE_STATUS_COLUMNS = (
    ("server_id", "text"), ("session_id", "text"), ("aws_region", "text"), ("durable_lsn", "bigint"),
    ("highest_lsn_rcvd", "bigint"), ("feedback_epoch", "integer"), ("feedback_xmin", "bigint"),
    ("oldest_read_view_lsn", "bigint"), ("visibility_lag_in_msec", "real"),
)
_GLOBAL_COLUMNS = ", ".join(f"{n} {t}" for n, t in GLOBAL_STATUS_COLUMNS)
_BLUE_GREEN_COLUMNS = "version text, endpoint text, port integer, role text, status text"
_GLOBAL_INSTANCE_COLUMNS = ", ".join(f"{n} {t}" for n, t in GLOBAL_INSTANCE_STATUS_COLUMNS)


def _rows_of(part: str, columns: str) -> str:
    """The body of a view function: the rows the emulator answers for one part of its surface."""
    return f"""
SELECT * FROM pg_catalog.jsonb_to_recordset(pg_catalog._aurora_gameday_request('aurora_surface',
    '{{"parts": ["{part}"]}}')->'{part}') AS status({columns})
"""


@dataclass(frozen=True)
class SurfaceFunction:
    """One Aurora built-in: signature, body, description, and who may run it."""

    name: str
    arguments: str
    returns: str
    description: str
    body: str
    language: str = "plpgsql"
    volatility: str = "VOLATILE"
    security_definer: bool = True  # runs as rdsadmin, which may call the internal transport
    fault_injection: bool = False  # EXECUTE for rds_superuser only
    needs_plpython: bool = True

    @property
    def argument_types(self) -> str:
        return ", ".join(" ".join(a.split()[1:]) for a in self.arguments.split(", ")) if self.arguments else ""

    def ddl(self, plpython: bool) -> list[str]:
        ident = f"pg_catalog.{self.name}({self.argument_types})"
        body, language = self.body, self.language
        if self.needs_plpython and not plpython:
            body, language = _NO_PLPYTHON, "plpgsql"
        security = " SECURITY DEFINER SET search_path = pg_catalog, pg_temp" if self.security_definer else ""
        create = (f"CREATE FUNCTION pg_catalog.{self.name}({self.arguments}) RETURNS {self.returns} "
                  f"LANGUAGE {language} {self.volatility}{security} AS $gameday${body}$gameday$")
        comment = self.description.replace("'", "''")
        return [create, f"REVOKE ALL ON FUNCTION {ident} FROM PUBLIC",
                f"GRANT EXECUTE ON FUNCTION {ident} TO {'rds_superuser' if self.fault_injection else 'PUBLIC'}",
                f"COMMENT ON FUNCTION {ident} IS '{comment}'"]


FUNCTIONS = (
    SurfaceFunction(
        "aurora_inject_crash", "crash_type text", "text",
        "Simulates a crash of the instance, the dispatcher or the node (both, with the cache cleared) of the "
        "DB instance it runs on; no failover follows",
        _CRASH, fault_injection=True),
    SurfaceFunction(
        "aurora_inject_replica_failure",
        "percentage_of_failure double precision, time_interval integer, replica_name text", "text",
        "Blocks the given percentage of replication from the writer to one Aurora Replica (or to all, for an "
        "empty name) for time_interval seconds",
        _inject("jsonb_build_object('type', 'replica_failure', 'percent', percentage_of_failure, "
                "'seconds', time_interval, 'replica', coalesce(replica_name, ''))"), fault_injection=True),
    SurfaceFunction(
        "aurora_inject_disk_failure",
        "percentage_of_failure double precision, index integer, is_disk boolean, time_interval integer", "text",
        "Fails the given percentage of requests to a logical block (is_disk true) or a storage node (false) "
        "of the cluster volume for time_interval seconds",
        _inject("jsonb_build_object('type', 'disk_failure', 'percent', percentage_of_failure, 'index', index, "
                "'is_disk', is_disk, 'seconds', time_interval)"), fault_injection=True),
    SurfaceFunction(
        "aurora_inject_disk_congestion",
        "percentage_of_failure double precision, index integer, is_disk boolean, time_interval integer, "
        "minimum double precision, maximum double precision", "text",
        "Delays the given percentage of requests to a logical block (is_disk true) or a storage node (false) "
        "by minimum to maximum milliseconds (0.0 to 100.0) for time_interval seconds",
        _inject("jsonb_build_object('type', 'disk_congestion', 'percent', percentage_of_failure, "
                "'index', index, 'is_disk', is_disk, 'seconds', time_interval, 'min_ms', minimum, "
                "'max_ms', maximum)"), fault_injection=True),
    SurfaceFunction(
        "aurora_show_volume_status", "", "TABLE(disks integer, nodes integer)",
        "Shows the number of logical blocks (disks) and storage nodes of the cluster volume: the index ranges "
        "of aurora_inject_disk_failure and aurora_inject_disk_congestion",
        """
SELECT (v->>'disks')::integer, (v->>'nodes')::integer
  FROM (SELECT pg_catalog._aurora_gameday_request('aurora_surface',
                   '{"parts": ["volume_status"]}')->'volume_status' AS v) AS status
""", language="sql", fault_injection=True),
    SurfaceFunction(
        "aurora_version", "", "text", "Returns the Aurora PostgreSQL version of the DB instance",
        """
SELECT pg_catalog._aurora_gameday_request('aurora_surface', '{"parts": ["version"]}')->>'version'
""", language="sql", volatility="STABLE"),
    SurfaceFunction(
        "aurora_db_instance_identifier", "", "text",
        "Returns the identifier of the DB instance you are connected to",
        " SELECT pg_catalog.current_setting('cluster_name') ", language="sql", volatility="STABLE",
        security_definer=False, needs_plpython=False),
    SurfaceFunction(
        "aurora_replica_status", "", f"TABLE({_REPLICA_COLUMNS})",
        "Shows the status of every DB instance of the cluster: the writer (session_id MASTER_SESSION_ID) and "
        "each Aurora Replica with its replica lag",
        _rows_of("replica_status", _REPLICA_COLUMNS), language="sql"),
    SurfaceFunction(
        "aurora_global_db_status", "", f"TABLE({_GLOBAL_COLUMNS})",
        "Shows every AWS Region of the global database: the highest log position written there and its "
        "durability and RPO lag behind the primary (-1 on the primary)",
        _rows_of("global_db_status", _GLOBAL_COLUMNS), language="sql"),
    SurfaceFunction(
        "aurora_global_db_instance_status", "", f"TABLE({_GLOBAL_INSTANCE_COLUMNS})",
        "Shows every DB instance of the global database in every AWS Region: the global writer "
        "(session_id MASTER_SESSION_ID) and each reader with its visibility lag",
        _rows_of("global_db_instance_status", _GLOBAL_INSTANCE_COLUMNS), language="sql"),
    SurfaceFunction(
        "get_blue_green_fast_switchover_metadata", "driver text", f"TABLE({_BLUE_GREEN_COLUMNS})",
        "Shows the endpoints of a blue/green deployment's environments, their role and the switchover's "
        "status, for drivers that hold and reroute traffic during a switchover (Aurora PostgreSQL 15.13 and "
        "later; no rows outside a deployment)",
        f"""
SELECT * FROM pg_catalog.jsonb_to_recordset(coalesce(NULLIF(pg_catalog._aurora_gameday_request('aurora_surface',
    '{{"parts": ["blue_green_metadata"]}}')->'blue_green_metadata', 'null'::jsonb), '[]'::jsonb))
    AS status({_BLUE_GREEN_COLUMNS})
""", language="sql"),
    SurfaceFunction(
        "aurora_list_builtins", "",
        'TABLE("Name" text, "Result data type" text, "Argument data types" text, "Type" text, '
        '"Volatility" text, "Parallel" text, "Security" text, "Description" text)',
        "Lists the Aurora PostgreSQL built-in functions with their descriptions and details",
        """
SELECT p.proname::text, pg_catalog.pg_get_function_result(p.oid), pg_catalog.pg_get_function_arguments(p.oid),
       CASE p.prokind WHEN 'f' THEN 'func' WHEN 'p' THEN 'proc' WHEN 'a' THEN 'agg' ELSE 'window' END,
       CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END,
       CASE p.proparallel WHEN 's' THEN 'safe' WHEN 'r' THEN 'restricted' ELSE 'unsafe' END,
       CASE WHEN p.prosecdef THEN 'definer' ELSE 'invoker' END,
       pg_catalog.obj_description(p.oid, 'pg_proc')
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace AND p.proname LIKE 'aurora\\_%'
 ORDER BY 1, 3
""", language="sql", volatility="STABLE", security_definer=False, needs_plpython=False),
)

# pg_settings lists only settings some module defines; Aurora's rds.extensions comes from RDS's
# own module. The emulator sets it in postgresql.conf (a placeholder, which SHOW and
# current_setting() see) and adds it to the pg_settings view.
_PG_SETTINGS_VIEW = """
CREATE OR REPLACE VIEW pg_catalog.pg_settings AS
    SELECT * FROM pg_catalog.pg_show_all_settings() AS a
    UNION ALL
    SELECT 'rds.extensions', s, NULL, 'Customized Options', 'List of extensions available for installation.',
           NULL, 'sighup', 'string', 'configuration file', NULL, NULL, NULL, s, s, NULL, NULL, false
      FROM (SELECT pg_catalog.current_setting('rds.extensions', true) AS s) AS rds WHERE s IS NOT NULL
"""


def installed_extensions(bins_dir: Path) -> set[str]:
    """The extensions the PostgreSQL whose binaries are in `bins_dir` can create."""
    major = bins_dir.parent.name  # /usr/lib/postgresql/15/bin -> 15
    candidates = [Path("/usr/share/postgresql") / major / "extension",
                  bins_dir.parent / "share" / "extension", bins_dir.parent / "share" / "postgresql" / "extension"]
    return {control.stem for c in candidates if c.is_dir() for control in c.glob("*.control")}


def plpython_available(bins_dir: Path) -> bool:
    """Is plpython3u installed for the PostgreSQL whose binaries are in `bins_dir`?"""
    return "plpython3u" in installed_extensions(bins_dir)


def extension_settings(bins_dir: Path) -> dict[str, str]:
    """`rds.extensions`: Aurora's extensions this machine can create (and aurora_stat_utils). With
    pgextwlist installed, the master user may create each of them, as Aurora's rds_superuser
    can; pg_stat_statements is preloaded, as on Aurora, so its view answers once created."""
    installed = installed_extensions(bins_dir)
    creatable = sorted(e for e in AURORA_EXTENSIONS if e in installed)
    settings = {"rds.extensions": "'" + ", ".join(sorted({*creatable, ALWAYS_LISTED})) + "'"}
    if (bins_dir.parent / "lib" / "plugins" / "pgextwlist.so").exists():
        settings["local_preload_libraries"] = "'pgextwlist'"
        settings["extwlist.extensions"] = "'" + ",".join(creatable) + "'"
    if "pg_stat_statements" in installed:
        settings["shared_preload_libraries"] = "'pg_stat_statements'"
    return settings


def surface_sql(plpython: bool) -> list[str]:
    """Statements run as rdsadmin in each template database (postgres and template1)."""
    statements = ["SET allow_system_table_mods = on", _PG_SETTINGS_VIEW, "RESET allow_system_table_mods"]
    if plpython:
        statements += [
            "CREATE EXTENSION IF NOT EXISTS plpython3u",
            (f"CREATE FUNCTION pg_catalog._aurora_gameday_call(action text, arguments text) RETURNS text "
             f"LANGUAGE plpython3u VOLATILE AS $gameday${_TRANSPORT}$gameday$"),
            "REVOKE ALL ON FUNCTION pg_catalog._aurora_gameday_call(text, text) FROM PUBLIC",
            (f"CREATE FUNCTION pg_catalog._aurora_gameday_request(action text, arguments jsonb) RETURNS jsonb "
             f"LANGUAGE plpgsql VOLATILE AS $gameday${_REQUEST}$gameday$"),
            "REVOKE ALL ON FUNCTION pg_catalog._aurora_gameday_request(text, jsonb) FROM PUBLIC",
        ]
    for function in FUNCTIONS:
        statements += function.ddl(plpython)
    return statements


def instance_environment(base: dict[str, str], identifier: str) -> dict[str, str]:
    """The postmaster environment of one instance: the cluster's control settings plus who it is."""
    return {**base, ENV_INSTANCE: identifier} if base else {}


# --- the probe: what the surface functions and the lag clock read from the engines ----------------------------
class PgAdminAccess(Protocol):
    """What the probe needs of its engine cluster (a `PgCluster`): rdsadmin sessions and the topology."""

    instances: dict[str, EngineInstance]
    writer_id: str | None
    node_names: list[str]

    def admin(self, instance: EngineInstance, dbname: str = "postgres", timeout: int = 5) -> psycopg.Connection: ...


@dataclass
class _Session:
    pid: int
    conn: psycopg.Connection
    lock: threading.Lock


class PgSurfaceProbe:
    """Persistent rdsadmin sessions (over Unix sockets) to read LSNs cheaply and often.

    A session belongs to one postmaster: when the instance restarts, the next read reconnects.
    Unix-socket sessions have no client address, so a dispatcher crash does not end them.
    """

    def __init__(self, cluster: PgAdminAccess):
        self.cluster = cluster
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self._durable: int | None = None

    def _rows(self, instance: EngineInstance, query: str) -> list[tuple[Any, ...]] | None:
        """The rows, or None when the instance cannot answer (down, restarting, promoting)."""
        if not instance.alive():
            return None
        pid = instance.child.pid  # type: ignore[union-attr]
        with self._lock:
            session = self._sessions.get(instance.identifier)
            if session is not None and session.pid != pid:
                self._close(instance.identifier)
                session = None
            if session is None:
                try:
                    conn = self.cluster.admin(instance, timeout=2)
                except psycopg.Error:
                    return None
                try:  # no query of the snapshot may hold a topology read (and its caller) for long
                    conn.execute(f"SET statement_timeout = {SNAPSHOT_STATEMENT_TIMEOUT_MS}")
                except psycopg.Error:
                    conn.close()
                    return None
                session = self._sessions[instance.identifier] = _Session(pid, conn, threading.Lock())
        with session.lock:
            try:
                return session.conn.execute(query).fetchall()  # type: ignore[arg-type]
            except psycopg.Error:
                with self._lock:
                    if self._sessions.get(instance.identifier) is session:
                        self._close(instance.identifier)
                return None

    def _close(self, identifier: str) -> None:
        session = self._sessions.pop(identifier, None)
        if session is not None:
            try:
                session.conn.close()
            except Exception:
                pass

    def close(self) -> None:
        with self._lock:
            for identifier in list(self._sessions):
                self._close(identifier)

    def _writer(self) -> EngineInstance | None:
        writer_id = self.cluster.writer_id
        return self.cluster.instances.get(writer_id) if writer_id else None

    def write_position(self) -> int | None:
        writer = self._writer()
        rows = self._rows(writer, "SELECT pg_catalog.pg_current_wal_flush_lsn()::text") if writer else None
        return lsn_value(rows[0][0]) if rows else None

    def snapshot(self, observe_writer: Callable[[int], None] | None = None) -> ReplicationSnapshot:
        """The writer first (its position goes to `observe_writer`), then each reader."""
        writer = self._writer()
        written = active = None
        latency: dict[str, tuple[int | None, int | None]] = {}
        head = self._rows(writer, """
            SELECT pg_catalog.pg_current_wal_flush_lsn()::text,
                   (SELECT count(*) FROM pg_catalog.pg_stat_activity
                     WHERE backend_type = 'client backend' AND xact_start IS NOT NULL
                       AND pid <> pg_catalog.pg_backend_pid())::int""") if writer else None
        if head:
            written, active = lsn_value(head[0][0]), head[0][1]
            if observe_writer is not None:
                observe_writer(written)
            replication = self._rows(writer, """
                SELECT application_name, flush_lsn::text,
                       (extract(epoch FROM replay_lag) * 1000000)::bigint, backend_xmin::text
                  FROM pg_catalog.pg_stat_replication""") or []
            nodes = sorted((lsn_value(flush) for name, flush, _, _ in replication
                            if name in self.cluster.node_names and flush), reverse=True)
            if len(nodes) >= QUORUM:
                self._durable = nodes[QUORUM - 1]
            latency = {name: (lag, int(xmin) if xmin else None) for name, _, lag, xmin in replication}
        readers = {}
        for identifier, instance in list(self.cluster.instances.items()):
            if writer is not None and identifier == writer.identifier:
                continue
            # A startup process waiting for WAL has applied everything received (the replay
            # position can stop short of the received one, which may end in page padding).
            rows = self._rows(instance, """
                SELECT pg_catalog.pg_last_wal_receive_lsn()::text, pg_catalog.pg_last_wal_replay_lsn()::text,
                       EXISTS (SELECT FROM pg_catalog.pg_stat_activity WHERE backend_type = 'startup'
                                  AND wait_event IN ('RecoveryWalStream', 'RecoveryRetrieveRetryInterval'))""")
            if not rows:
                continue
            received, replayed, idle = rows[0]
            lag, xmin = latency.get(identifier, (None, None))
            readers[identifier] = ReaderPosition(received=lsn_value(received) if received else None,
                                                 replayed=lsn_value(replayed) if replayed else None,
                                                 replay_latency_us=lag if lag is not None else 0,
                                                 feedback_xmin=xmin, applied_all_received=bool(idle))
        return ReplicationSnapshot(durable=self._durable, written=written, active_txns=active, readers=readers)


def end_client_sessions(cluster: PgAdminAccess, instance: EngineInstance) -> int:
    """End every client session that came in over TCP (through the endpoints); returns how many."""
    with cluster.admin(instance, timeout=3) as conn:
        return int(conn.execute(
            "SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity "
            "WHERE backend_type = 'client backend' AND client_addr IS NOT NULL "
            "AND pid <> pg_catalog.pg_backend_pid()").fetchone()[0])
