"""Engine-specific SQL, one module per engine; nothing else in the harness builds engine SQL.

Each engine's class serves both the probes (`Dialect`) and the load's users (`WorkloadDialect`).
"""

from __future__ import annotations

from harness.dialects.base import Dialect, Outcome, WorkloadDialect
from harness.dialects.mysql import MySQLDialect
from harness.dialects.postgres import PostgresDialect

DIALECTS: dict[str, type[MySQLDialect] | type[PostgresDialect]] = {
    "aurora-postgresql": PostgresDialect,
    "aurora-mysql": MySQLDialect,
}


def dialect_for(engine: str) -> Dialect:
    """The probes' SQL for `engine`."""
    return _dialect(engine)


def workload_dialect_for(engine: str) -> WorkloadDialect:
    """The load's SQL for `engine`."""
    return _dialect(engine)


def _dialect(engine: str) -> MySQLDialect | PostgresDialect:
    if engine not in DIALECTS:
        raise ValueError(f"no dialect for engine {engine!r}; supported: {', '.join(DIALECTS)}")
    return DIALECTS[engine]()


__all__ = ["DIALECTS", "Dialect", "MySQLDialect", "Outcome", "PostgresDialect", "WorkloadDialect", "dialect_for",
           "workload_dialect_for"]
