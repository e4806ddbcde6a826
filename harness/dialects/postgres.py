"""Aurora PostgreSQL: all the SQL the harness sends to it."""

from __future__ import annotations

from typing import Any

import psycopg

from harness.dialects.base import Credentials, Outcome
from harness.fault_queries import Crash, DiskFailure, FaultQuery, ReplicaFailure

LEDGER = "gameday_ledger"
ORDERS = "gameday_orders"
ORDERS_LOCK = 0x6A6D_6F72  # advisory lock key: load processes create the orders table one at a time

# SQLSTATEs after which a sent COMMIT may still have happened: the connection or server went
# away (08, 57P), or the wait for the storage quorum was cancelled after the local commit (57014).
UNCERTAIN_SQLSTATE_PREFIXES = ("08", "57P", "57014", "53", "58", "XX")
# SQLSTATEs a retrying client should retry on a new connection: the connection or server went
# away (08, 57P), the statement timed out (57014), too many connections (53300), the session is
# on a reader (25006: the cluster endpoint still pointed at a demoted writer), or a conflict.
TRANSIENT_SQLSTATE_PREFIXES = ("08", "57P", "57014", "53300", "25006", "40001", "40P01")


class PostgresDialect:
    engine = "aurora-postgresql"
    default_port = 5432
    default_database = "postgres"

    def connect(self, host: str, port: int, credentials: Credentials, *, connect_timeout: float = 2.0,
                statement_timeout: float = 5.0, application_name: str = "aurora-gameday",
                hostaddr: str | None = None) -> psycopg.Connection:
        """`statement_timeout` 0 means none; `hostaddr` connects there without resolving `host`."""
        return psycopg.connect(
            host=host, port=port, user=credentials.user, password=credentials.password,
            **({"hostaddr": hostaddr} if hostaddr else {}),
            dbname=credentials.database, autocommit=True, connect_timeout=max(1, round(connect_timeout)),
            application_name=application_name,
            options=f"-c statement_timeout={int(statement_timeout * 1000)}",
            # Detect a dead server quickly, as the Aurora fast-failover guide recommends.
            keepalives=1, keepalives_idle=1, keepalives_interval=1, keepalives_count=5,
        )

    def instance_name(self, conn: psycopg.Connection) -> str:
        return conn.execute("SELECT aurora_db_instance_identifier()").fetchone()[0]

    def is_read_only(self, conn: psycopg.Connection) -> bool:
        return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])

    def create_ledger(self, conn: psycopg.Connection) -> None:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {LEDGER} (run_id text NOT NULL, seq bigint NOT NULL, "
                     f"writer text, committed_at timestamptz NOT NULL DEFAULT clock_timestamp())")
        conn.execute(f"CREATE INDEX IF NOT EXISTS {LEDGER}_run_seq ON {LEDGER} (run_id, seq)")

    def insert(self, conn: psycopg.Connection, run_id: str, seq: int) -> str:
        row = conn.execute(f"INSERT INTO {LEDGER} (run_id, seq, writer) "
                           f"VALUES (%s, %s, aurora_db_instance_identifier()) RETURNING writer",
                           (run_id, seq)).fetchone()
        return row[0]

    def max_seq(self, conn: psycopg.Connection, run_id: str) -> int:
        return conn.execute(f"SELECT coalesce(max(seq), 0) FROM {LEDGER} WHERE run_id = %s",
                            (run_id,)).fetchone()[0]

    def ledger_counts(self, conn: psycopg.Connection, run_id: str) -> dict[int, int]:
        rows = conn.execute(f"SELECT seq, count(*) FROM {LEDGER} WHERE run_id = %s GROUP BY seq", (run_id,))
        return {seq: count for seq, count in rows}

    def delete_ledger_rows(self, conn: psycopg.Connection, run_id: str) -> None:
        conn.execute(f"DELETE FROM {LEDGER} WHERE run_id = %s", (run_id,))

    def server_time(self, conn: psycopg.Connection) -> float:
        return float(conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()[0])

    def classify(self, error: BaseException, sent: bool) -> Outcome:
        if not sent:
            return Outcome.FAILED
        sqlstate = getattr(error, "sqlstate", None)
        if sqlstate is None or sqlstate.startswith(UNCERTAIN_SQLSTATE_PREFIXES):
            return Outcome.UNKNOWN
        return Outcome.FAILED  # the server rejected the statement, e.g. 25006 on a reader

    def is_transient(self, error: BaseException) -> bool:
        if not isinstance(error, psycopg.Error):
            return False
        sqlstate = getattr(error, "sqlstate", None)
        if sqlstate is None:  # raised by the client: the connection failed, broke or timed out
            return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
        return sqlstate.startswith(TRANSIENT_SQLSTATE_PREFIXES)

    # --- the load's OLTP workload -------------------------------------------------------------------
    def create_orders(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (ORDERS_LOCK,))
            conn.execute(f"CREATE TABLE IF NOT EXISTS {ORDERS} (id bigserial PRIMARY KEY, run_id text NOT NULL, "
                         f"customer int NOT NULL, amount numeric(10, 2) NOT NULL, status text NOT NULL DEFAULT 'new', "
                         f"created_at timestamptz NOT NULL DEFAULT now())")
            conn.execute(f"CREATE INDEX IF NOT EXISTS {ORDERS}_customer ON {ORDERS} (customer)")

    def insert_order(self, conn: psycopg.Connection, run_id: str, customer: int, amount: float) -> int:
        return conn.execute(f"INSERT INTO {ORDERS} (run_id, customer, amount) VALUES (%s, %s, %s) RETURNING id",
                            (run_id, customer, amount)).fetchone()[0]

    def pay_order(self, conn: psycopg.Connection, order_id: int) -> int:
        return conn.execute(f"UPDATE {ORDERS} SET status = 'paid' WHERE id = %s", (order_id,)).rowcount

    def recent_orders(self, conn: psycopg.Connection, limit: int) -> list[tuple[Any, ...]]:
        return conn.execute(f"SELECT id, customer, amount, status FROM {ORDERS} ORDER BY id DESC LIMIT %s",
                            (limit,)).fetchall()

    def customer_orders(self, conn: psycopg.Connection, customer: int) -> tuple[int, float]:
        count, total = conn.execute(f"SELECT count(*), coalesce(sum(amount), 0) FROM {ORDERS} WHERE customer = %s",
                                    (customer,)).fetchone()
        return count, float(total)

    def select_one(self, conn: psycopg.Connection) -> int:
        return conn.execute("SELECT 1").fetchone()[0]

    def delete_orders(self, conn: psycopg.Connection, run_id: str) -> int:
        return conn.execute(f"DELETE FROM {ORDERS} WHERE run_id = %s", (run_id,)).rowcount

    def count_orders(self, conn: psycopg.Connection, run_id: str, created_by: float | None = None) -> int:
        if created_by is None:
            return int(conn.execute(f"SELECT count(*) FROM {ORDERS} WHERE run_id = %s", (run_id,)).fetchone()[0])
        return int(conn.execute(f"SELECT count(*) FROM {ORDERS} WHERE run_id = %s AND created_at <= to_timestamp(%s)",
                                (run_id, created_by)).fetchone()[0])

    def replica_status(self, conn: psycopg.Connection) -> list[tuple[str, bool, float | None]]:
        """`aurora_replica_status()`: the writer's row has session_id MASTER_SESSION_ID (aurora-facts §5.1)."""
        rows = conn.execute("SELECT server_id, session_id = 'MASTER_SESSION_ID', replica_lag_in_msec "
                            "FROM aurora_replica_status()").fetchall()
        return [(str(sid), bool(writer), None if lag is None else float(lag)) for sid, writer, lag in rows]

    # --- Aurora's fault-injection queries (aurora-facts §4.2) -----------------------------------------
    def fault_injection_sql(self, query: FaultQuery) -> str:
        """The documented function call for `query`; its arguments are numbers the model checked,
        and a replica name quoted as a literal."""
        if isinstance(query, Crash):
            return f"SELECT aurora_inject_crash('{query.kind}')"
        if isinstance(query, ReplicaFailure):
            replica = (query.replica or "").replace("'", "''")
            return f"SELECT aurora_inject_replica_failure({query.percent:g}, {query.seconds}, '{replica}')"
        if isinstance(query, DiskFailure):
            return (f"SELECT aurora_inject_disk_failure({query.percent:g}, {query.index}, "
                    f"{str(query.is_disk).lower()}, {query.seconds})")
        return (f"SELECT aurora_inject_disk_congestion({query.percent:g}, {query.index}, {str(query.is_disk).lower()}, "
                f"{query.seconds}, {query.min_ms:g}, {query.max_ms:g})")

    def describe_error(self, error: BaseException) -> str:
        """One line for the timeline: SQLSTATE and the first line of the message."""
        sqlstate = getattr(error, "sqlstate", None)
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        return f"{sqlstate}: {first_line}" if sqlstate else f"{type(error).__name__}: {first_line}"
