"""Aurora's fault-injection queries: When (run one on an instance) and Then (what it did while it held)."""

from __future__ import annotations

import re

from pytest_bdd import parsers, then, when

from harness.fault_queries import Crash, DiskCongestion, DiskFailure, FaultQuery, ReplicaFailure
from harness.faults import FaultInjectionQueries
from harness.gameday import GameDay
from harness.judgements import latency, replicas, writes

from .words import RECOVERY_TIMEOUT_S, reader_at


def nodes(text: str) -> list[int]:
    """'0', '0 and 1', '0, 1 and 2' → the storage node indexes."""
    return [int(n) for n in re.split(r"\s*(?:,|and)\s*", text.strip()) if n]


def run_queries(game_day: GameDay, instance: str, queries: list[FaultQuery]) -> None:
    """Run the queries on `instance`, hold for their interval, then wait for writes to go on."""
    fault = FaultInjectionQueries(instance, queries)
    fault.render(game_day.cluster)  # spelled for the engine, so the plan shows the statements
    game_day.inject(fault)
    interval = max(q.interval_s for q in queries)
    if interval:
        game_day.hold("fault-interval", interval)
    game_day.await_recovery(RECOVERY_TIMEOUT_S)


@when(parsers.parse('the writer is crashed by a fault-injection query of type "{kind}"'))
def crash_writer(game_day: GameDay, kind: str) -> None:
    run_queries(game_day, game_day.initial_writer, [Crash(kind)])


@when(parsers.parse("a fault-injection query blocks {percent:g} percent of replication to the {ordinal} reader "
                    "for {seconds:d} seconds"))
def replica_failure(game_day: GameDay, percent: float, ordinal: str, seconds: int) -> None:
    run_queries(game_day, game_day.initial_writer, [ReplicaFailure(percent, seconds, reader_at(game_day, ordinal))])


@when(parsers.re(r"a fault-injection query fails (?P<percent>[\d.]+) percent of storage nodes? (?P<which>[\d, and]+?) "
                 r"for (?P<seconds>\d+) seconds"))
def disk_failure(game_day: GameDay, percent: str, which: str, seconds: str) -> None:
    run_queries(game_day, game_day.initial_writer,
                [DiskFailure(float(percent), node, False, int(seconds)) for node in nodes(which)])


@when(parsers.re(r"a fault-injection query congests storage nodes? (?P<which>[\d, and]+?) by (?P<low>[\d.]+) to "
                 r"(?P<high>[\d.]+) milliseconds for (?P<seconds>\d+) seconds"))
def disk_congestion(game_day: GameDay, which: str, low: str, high: str, seconds: str) -> None:
    run_queries(game_day, game_day.initial_writer,
                [DiskCongestion(100, node, False, int(seconds), float(low), float(high)) for node in nodes(which)])


@then(parsers.parse("the median commit latency during the fault is between {low:g} and {high:g} milliseconds"))
def commit_latency_band(game_day: GameDay, low: float, high: float) -> None:
    game_day.judge(latency.commit_latency_band, low_ms=low, high_ms=high)


@then(parsers.parse("the median commit latency after the fault is below {limit:g} milliseconds"))
def commit_latency_after(game_day: GameDay, limit: float) -> None:
    game_day.judge(latency.commit_latency_after, limit_ms=limit)


@then(parsers.parse("the replica lag of the {ordinal} reader reaches {seconds:g} seconds during the fault"))
def lag_peak(game_day: GameDay, ordinal: str, seconds: float) -> None:
    game_day.judge(replicas.lag_peak, reader=reader_at(game_day, ordinal), at_least_s=seconds)


@then(parsers.parse("the {ordinal} reader catches up within {seconds:g} seconds after the fault"))
def catch_up(game_day: GameDay, ordinal: str, seconds: float) -> None:
    game_day.judge(replicas.catch_up, reader=reader_at(game_day, ordinal), within_s=seconds)


@then("writes stall while the fault holds")
def writes_stall(game_day: GameDay) -> None:
    game_day.judge(writes.stalled)
