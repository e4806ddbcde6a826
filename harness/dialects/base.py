"""What the harness needs from an engine's SQL, independent of the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from harness.fault_queries import FaultQuery


class Outcome(str, Enum):
    """How a write attempt ended, from the client's point of view."""

    ACKNOWLEDGED = "acknowledged"  # COMMIT returned
    FAILED = "failed"  # certainly not committed (never sent, or rejected by the server)
    UNKNOWN = "unknown"  # sent, then the connection died: it may or may not have committed


@dataclass(frozen=True)
class Credentials:
    """The database login. The password never appears in repr, logs or reports."""

    user: str
    password: str = field(repr=False)
    database: str

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, database={self.database!r}, password=***)"


class Dialect(Protocol):
    engine: str
    default_port: int
    default_database: str

    def connect(self, host: str, port: int, credentials: Credentials, *, connect_timeout: float,
                statement_timeout: float, application_name: str) -> Any:
        """An autocommit connection with short timeouts."""

    def instance_name(self, conn: Any) -> str:
        """The DB instance identifier the session runs on."""

    def is_read_only(self, conn: Any) -> bool:
        """True on a reader."""

    def create_ledger(self, conn: Any) -> None:
        """The ledger table the write probe appends to (no unique key: duplicates must show)."""

    def insert(self, conn: Any, run_id: str, seq: int) -> str:
        """Append one ledger row in its own transaction; return the instance that committed it."""

    def max_seq(self, conn: Any, run_id: str) -> int:
        """The highest ledger seq this session can see."""

    def ledger_counts(self, conn: Any, run_id: str) -> dict[int, int]:
        """seq -> number of rows, for the final data-loss check."""

    def delete_ledger_rows(self, conn: Any, run_id: str) -> None:
        """Remove one run's rows (clean-up on clusters the harness did not create)."""

    def server_time(self, conn: Any) -> float:
        """The server's wall clock now, as epoch seconds with microseconds (restore points are on it)."""

    def classify(self, error: BaseException, sent: bool) -> Outcome:
        """FAILED or UNKNOWN for a failed attempt; `sent` tells if the statement left the client."""

    def describe_error(self, error: BaseException) -> str:
        """One line for the timeline (error code and first line of the message, no secrets)."""

    def replica_status(self, conn: Any) -> list[tuple[str, bool, float | None]]:
        """Aurora's own view of the topology: (instance, is the writer, replica lag in ms) per instance."""

    def fault_injection_sql(self, query: FaultQuery) -> str:
        """Aurora's documented fault-injection query for `query`, in this engine's spelling."""


class WorkloadDialect(Protocol):
    """What the load's database users need from an engine: a client connection, the role check,
    which errors a retrying client may retry, and the OLTP workload's statements.

    Separate from `Dialect` because the load's users run in Locust's processes and one engine
    (Aurora MySQL) has its workload half before its probe half.
    """

    engine: str

    def connect(self, host: str, port: int, credentials: Credentials, *, connect_timeout: float,
                statement_timeout: float, application_name: str, hostaddr: str | None = None) -> Any:
        """An autocommit connection; `hostaddr` skips name resolution (a client that cached it)."""

    def is_read_only(self, conn: Any) -> bool:
        """True on a reader: how a resilient client checks it reached the writer."""

    def is_transient(self, error: BaseException) -> bool:
        """Worth retrying on a new connection: the connection or server went away, or it is a reader."""

    def describe_error(self, error: BaseException) -> str:
        """One line naming the error (code and first line), the same for every occurrence."""

    def create_orders(self, conn: Any) -> None:
        """The workload's table, created once however many load processes start at the same time."""

    def insert_order(self, conn: Any, run_id: str, customer: int, amount: float) -> int:
        """A new order; returns its id."""

    def pay_order(self, conn: Any, order_id: int) -> int:
        """Mark an order paid; returns the rows updated."""

    def recent_orders(self, conn: Any, limit: int) -> list[tuple[Any, ...]]:
        """The newest orders (a short index scan)."""

    def customer_orders(self, conn: Any, customer: int) -> tuple[int, float]:
        """A customer's order count and total (an index lookup and an aggregate)."""

    def select_one(self, conn: Any) -> int:
        """The trivial query: measures the client, the network and the endpoint, not the engine."""

    def delete_orders(self, conn: Any, run_id: str) -> int:
        """Remove one run's orders (clean-up, or a game day's bad change); returns how many went."""

    def count_orders(self, conn: Any, run_id: str, created_by: float | None = None) -> int:
        """How many orders of one run the cluster holds (only those created by `created_by`, server
        epoch seconds, if given: what a bad change at that moment deleted)."""
