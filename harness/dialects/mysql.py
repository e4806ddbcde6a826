"""Aurora MySQL: all the SQL the harness sends to it (PyMySQL: pure Python, gevent-friendly)."""

from __future__ import annotations

import functools
import ssl
from typing import Any

import pymysql
import pymysql.connections

from harness.dialects.base import Credentials, Outcome
from harness.fault_queries import Crash, DiskFailure, FaultQuery, ReplicaFailure

LEDGER = "gameday_ledger"
ORDERS = "gameday_orders"

# Server errors after which the statement certainly did not commit: the server refused it
# (1290 read-only: a reader, or stale DNS; access, schema, syntax, duplicate key, lock waits).
# Anything else (lost connection 2013, gone away 2006, timeouts) may have committed.
REFUSED = {1290, 1045, 1044, 1142, 1146, 1064, 1062, 1205, 1213}
# Worth retrying on a new connection: could not connect (2002/2003), the connection went away
# (2006/2013), the server is shutting down (1053) or full (1040), a reader (1290), a conflict.
TRANSIENT = {2002, 2003, 2006, 2013, 1053, 1040, 1290, 1205, 1213}


@functools.cache
def _preferred_tls() -> ssl.SSLContext:
    """PyMySQL's default "preferred" TLS context (used when the server offers TLS), built once."""
    return pymysql.connections.Connection._create_ssl_ctx(None, {})  # type: ignore[arg-type]


class _Connection(pymysql.connections.Connection):
    """A PyMySQL connection that reuses the preferred-TLS context instead of rebuilding it.

    PyMySQL builds a fresh SSL context (loading the CA bundle, ~40 ms) on every connect; a
    probe reconnecting through a failover pays that on every attempt.
    """

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        return _preferred_tls() if not sslp else super()._create_ssl_ctx(sslp)


class MySQLDialect:
    engine = "aurora-mysql"
    default_port = 3306
    default_database = "mysql"

    def connect(self, host: str, port: int, credentials: Credentials, *, connect_timeout: float = 2.0,
                statement_timeout: float = 5.0, application_name: str = "aurora-gameday",
                hostaddr: str | None = None) -> pymysql.Connection:
        """`statement_timeout` bounds each read and write on the socket (0: none); `hostaddr`
        connects there without resolving `host`."""
        timeout = max(1, round(statement_timeout)) if statement_timeout else None
        return _Connection(
            host=hostaddr or host, port=port, user=credentials.user, password=credentials.password,
            database=credentials.database, autocommit=True, connect_timeout=max(1, round(connect_timeout)),
            read_timeout=timeout, write_timeout=timeout, program_name=application_name,
        )

    def instance_name(self, conn: pymysql.Connection) -> str:
        return self._scalar(conn, "SELECT @@aurora_server_id")

    def is_read_only(self, conn: pymysql.Connection) -> bool:
        return bool(int(self._scalar(conn, "SELECT @@innodb_read_only")))

    # --- the probes' ledger ------------------------------------------------------------------------
    def create_ledger(self, conn: pymysql.Connection) -> None:
        self._run(conn, f"CREATE TABLE IF NOT EXISTS {LEDGER} (run_id VARCHAR(64) NOT NULL, seq BIGINT NOT NULL, "
                        f"writer VARCHAR(64), committed_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), "
                        f"KEY {LEDGER}_run_seq (run_id, seq))")

    def insert(self, conn: pymysql.Connection, run_id: str, seq: int) -> str:
        self._run(conn, f"INSERT INTO {LEDGER} (run_id, seq, writer) VALUES (%s, %s, @@aurora_server_id)",
                  (run_id, seq))
        return self.instance_name(conn)

    def max_seq(self, conn: pymysql.Connection, run_id: str) -> int:
        return int(self._scalar(conn, f"SELECT coalesce(max(seq), 0) FROM {LEDGER} WHERE run_id = %s", (run_id,)))

    def ledger_counts(self, conn: pymysql.Connection, run_id: str) -> dict[int, int]:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT seq, count(*) FROM {LEDGER} WHERE run_id = %s GROUP BY seq", (run_id,))
            return {int(seq): int(count) for seq, count in cursor.fetchall()}

    def delete_ledger_rows(self, conn: pymysql.Connection, run_id: str) -> None:
        self._run(conn, f"DELETE FROM {LEDGER} WHERE run_id = %s", (run_id,))

    def server_time(self, conn: pymysql.Connection) -> float:
        return float(self._scalar(conn, "SELECT UNIX_TIMESTAMP(NOW(6))"))

    # --- errors -------------------------------------------------------------------------------------
    @staticmethod
    def _code(error: BaseException) -> int | None:
        return error.args[0] if isinstance(error, pymysql.MySQLError) and error.args else None

    def classify(self, error: BaseException, sent: bool) -> Outcome:
        if not sent:
            return Outcome.FAILED
        return Outcome.FAILED if self._code(error) in REFUSED else Outcome.UNKNOWN

    def is_transient(self, error: BaseException) -> bool:
        if isinstance(error, pymysql.err.InterfaceError):
            return True  # the client's connection is already closed
        return self._code(error) in TRANSIENT

    def replica_status(self, conn: pymysql.Connection) -> list[tuple[str, bool, float | None]]:
        """`information_schema.replica_host_status`: the writer's SESSION_ID is MASTER_SESSION_ID (§5.2)."""
        with conn.cursor() as cursor:
            cursor.execute("SELECT SERVER_ID, SESSION_ID = 'MASTER_SESSION_ID', REPLICA_LAG_IN_MILLISECONDS "
                           "FROM information_schema.replica_host_status")
            rows = cursor.fetchall()
        return [(str(sid), bool(writer), None if lag is None else float(lag)) for sid, writer, lag in rows]

    # --- Aurora's fault-injection queries (aurora-facts §4.1) -----------------------------------------
    def fault_injection_sql(self, query: FaultQuery) -> str:
        """The documented `ALTER SYSTEM` statement for `query` (intervals in seconds)."""
        if isinstance(query, Crash):
            return f"ALTER SYSTEM CRASH {query.kind.upper()}"
        interval = f"FOR INTERVAL {query.seconds} SECOND"
        if isinstance(query, ReplicaFailure):
            to = f'TO "{query.replica}"' if query.replica else "TO ALL"
            return f"ALTER SYSTEM SIMULATE {query.percent:g} PERCENT READ REPLICA FAILURE {to} {interval}"
        where = f"IN {'DISK' if query.is_disk else 'NODE'} {query.index}"
        if isinstance(query, DiskFailure):
            return f"ALTER SYSTEM SIMULATE {query.percent:g} PERCENT DISK FAILURE {where} {interval}"
        return (f"ALTER SYSTEM SIMULATE {query.percent:g} PERCENT DISK CONGESTION BETWEEN {query.min_ms:g} AND "
                f"{query.max_ms:g} MILLISECONDS {where} {interval}")

    def describe_error(self, error: BaseException) -> str:
        """One line: the MySQL error code and the first line of the message."""
        if isinstance(error, pymysql.MySQLError) and len(error.args) >= 2:
            return f"{error.args[0]}: {str(error.args[1]).strip().splitlines()[0][:200]}"
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        return f"{type(error).__name__}: {first_line}"

    # --- the load's OLTP workload ------------------------------------------------------------------
    def create_orders(self, conn: pymysql.Connection) -> None:
        """Load processes may all start at once: a named lock makes them create the table in turn."""
        self._scalar(conn, "SELECT GET_LOCK('gameday_orders', 30)")
        try:
            self._run(conn, f"CREATE TABLE IF NOT EXISTS {ORDERS} (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                            f"run_id VARCHAR(64) NOT NULL, customer INT NOT NULL, amount DECIMAL(10, 2) NOT NULL, "
                            f"status VARCHAR(16) NOT NULL DEFAULT 'new', "
                            f"created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), "
                            f"KEY {ORDERS}_customer (customer))")
        finally:
            self._scalar(conn, "SELECT RELEASE_LOCK('gameday_orders')")

    def insert_order(self, conn: pymysql.Connection, run_id: str, customer: int, amount: float) -> int:
        with conn.cursor() as cursor:
            cursor.execute(f"INSERT INTO {ORDERS} (run_id, customer, amount) VALUES (%s, %s, %s)",
                           (run_id, customer, amount))
            return int(cursor.lastrowid)

    def pay_order(self, conn: pymysql.Connection, order_id: int) -> int:
        with conn.cursor() as cursor:
            return cursor.execute(f"UPDATE {ORDERS} SET status = 'paid' WHERE id = %s", (order_id,))

    def recent_orders(self, conn: pymysql.Connection, limit: int) -> list[tuple[Any, ...]]:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT id, customer, amount, status FROM {ORDERS} ORDER BY id DESC LIMIT %s", (limit,))
            return list(cursor.fetchall())

    def customer_orders(self, conn: pymysql.Connection, customer: int) -> tuple[int, float]:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT count(*), coalesce(sum(amount), 0) FROM {ORDERS} WHERE customer = %s", (customer,))
            count, total = cursor.fetchone()
        return int(count), float(total)

    def select_one(self, conn: pymysql.Connection) -> int:
        return int(self._scalar(conn, "SELECT 1"))

    def delete_orders(self, conn: pymysql.Connection, run_id: str) -> int:
        with conn.cursor() as cursor:
            return int(cursor.execute(f"DELETE FROM {ORDERS} WHERE run_id = %s", (run_id,)))

    def count_orders(self, conn: pymysql.Connection, run_id: str, created_by: float | None = None) -> int:
        if created_by is None:
            return int(self._scalar(conn, f"SELECT count(*) FROM {ORDERS} WHERE run_id = %s", (run_id,)))
        return int(self._scalar(conn, f"SELECT count(*) FROM {ORDERS} WHERE run_id = %s "
                                      f"AND created_at <= FROM_UNIXTIME(%s)", (run_id, created_by)))

    # --- plumbing -----------------------------------------------------------------------------------
    @staticmethod
    def _run(conn: pymysql.Connection, sql: str, args: tuple[Any, ...] | None = None) -> None:
        with conn.cursor() as cursor:
            cursor.execute(sql, args)

    @staticmethod
    def _scalar(conn: pymysql.Connection, sql: str, args: tuple[Any, ...] | None = None) -> Any:
        with conn.cursor() as cursor:
            cursor.execute(sql, args)
            return cursor.fetchone()[0]
