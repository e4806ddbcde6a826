"""Aurora's fault-injection queries, as typed values: what to inject, not how an engine spells it.

Aurora offers the same four faults on both engines, spelt differently: SQL functions on Aurora
PostgreSQL (`SELECT aurora_inject_crash('instance')`), `ALTER SYSTEM ...` statements on Aurora
MySQL. A scenario names the fault once; each dialect renders it (`fault_injection_sql`). The
queries run on the instance the connection reaches, through its instance endpoint, against
real Aurora exactly as against the emulator.

Validation here mirrors what Aurora documents, so a scenario with an impossible fault fails
before it touches a cluster, with a message naming the bad value.
"""

from __future__ import annotations

from dataclasses import dataclass

CRASH_KINDS = ("instance", "dispatcher", "node")


class BadFaultQuery(ValueError):
    """A fault-injection query Aurora would refuse; the message says which value and why."""


def _percent(value: float) -> None:
    if not 0 <= value <= 100:
        raise BadFaultQuery(f"the percentage of failure must be between 0 and 100, not {value:g}")


def _interval(seconds: int) -> None:
    if seconds <= 0:
        raise BadFaultQuery(f"the interval must be a positive number of seconds, not {seconds}")


def _index(index: int) -> None:
    if index < 0:
        raise BadFaultQuery(f"a disk or node index cannot be negative ({index})")


@dataclass(frozen=True)
class Crash:
    """A crash of the instance reached: 'instance' (the database), 'dispatcher' (its client
    connections) or 'node' (both, with a cold cache). Never a failover."""

    kind: str = "instance"

    def __post_init__(self) -> None:
        if self.kind not in CRASH_KINDS:
            raise BadFaultQuery(f"the crash type must be one of {', '.join(CRASH_KINDS)}, not {self.kind!r}")

    @property
    def interval_s(self) -> int:
        return 0


@dataclass(frozen=True)
class ReplicaFailure:
    """Block `percent` of replication from the writer to `replica` (None: every reader)."""

    percent: float
    seconds: int
    replica: str | None = None

    def __post_init__(self) -> None:
        _percent(self.percent)
        _interval(self.seconds)

    @property
    def interval_s(self) -> int:
        return self.seconds


@dataclass(frozen=True)
class DiskFailure:
    """Storage stops answering `percent` of requests to a logical block (`is_disk`) or a storage node."""

    percent: float
    index: int
    is_disk: bool
    seconds: int

    def __post_init__(self) -> None:
        _percent(self.percent)
        _index(self.index)
        _interval(self.seconds)

    @property
    def interval_s(self) -> int:
        return self.seconds


@dataclass(frozen=True)
class DiskCongestion:
    """Storage answers `percent` of requests to a block or node `min_ms`..`max_ms` late."""

    percent: float
    index: int
    is_disk: bool
    seconds: int
    min_ms: float
    max_ms: float

    def __post_init__(self) -> None:
        _percent(self.percent)
        _index(self.index)
        _interval(self.seconds)
        if not (0 <= self.min_ms <= 100 and 0 <= self.max_ms <= 100):
            raise BadFaultQuery(f"congestion delays must be between 0 and 100 ms, not {self.min_ms:g}..{self.max_ms:g}")
        if self.max_ms <= self.min_ms:
            raise BadFaultQuery(f"the maximum delay ({self.max_ms:g} ms) must be greater than the minimum "
                                f"({self.min_ms:g} ms)")

    @property
    def interval_s(self) -> int:
        return self.seconds


FaultQuery = Crash | ReplicaFailure | DiskFailure | DiskCongestion
