"""Engine-specific SQL, one module per engine; nothing else in the harness builds engine SQL."""

from __future__ import annotations

from harness.dialects.base import Dialect, Outcome
from harness.dialects.postgres import PostgresDialect

DIALECTS: dict[str, type[Dialect]] = {"aurora-postgresql": PostgresDialect}


def dialect_for(engine: str) -> Dialect:
    if engine not in DIALECTS:
        raise ValueError(f"no dialect for engine {engine!r}; supported: {', '.join(DIALECTS)}")
    return DIALECTS[engine]()


__all__ = ["DIALECTS", "Dialect", "Outcome", "PostgresDialect", "dialect_for"]
