"""What the harness needs from an engine's SQL, independent of the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol


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

    def classify(self, error: BaseException, sent: bool) -> Outcome:
        """FAILED or UNKNOWN for a failed attempt; `sent` tells if the statement left the client."""

    def describe_error(self, error: BaseException) -> str:
        """One line for the timeline (error code and first line of the message, no secrets)."""
