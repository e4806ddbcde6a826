"""Then: what the probes saw of the writes and the readers, each a PolicyMet / PolicyBreached verdict.

A breached verdict does not stop the scenario: every Then step is judged, and the scenario
fails at its end if any verdict was breached (see `plugin.py`).
"""

from __future__ import annotations

from pytest_bdd import parsers, then

from harness.drivers import AWS_WRAPPER
from harness.gameday import GameDay
from harness.judgements import drivers, replicas, writes


@then("writes are back within the documented failover time")
def writes_back_documented(game_day: GameDay) -> None:
    game_day.judge(writes.recovery, target=game_day.target("failover-with-replicas"))


@then(parsers.parse("writes are back within {seconds:d} seconds"))
def writes_back_within(game_day: GameDay, seconds: int) -> None:
    game_day.judge(writes.recovery, limit=float(seconds))


@then(parsers.parse("the AWS Advanced Python Wrapper saw writes back within {seconds:d} seconds"))
def wrapper_writes_back_within(game_day: GameDay, seconds: int) -> None:
    game_day.judge(writes.recovery, limit=float(seconds), driver=AWS_WRAPPER,
                   check="writes back (RTO), AWS Advanced Python Wrapper")


@then("writes are not interrupted")
def writes_not_interrupted(game_day: GameDay) -> None:
    game_day.judge(writes.uninterrupted)


@then("no acknowledged write is lost")
def no_write_lost(game_day: GameDay) -> None:
    game_day.judge(writes.data_loss, target=game_day.target("in-region-acknowledged-writes"))


@then("replica lag after recovery stays within the documented replica lag")
def lag_after_recovery(game_day: GameDay) -> None:
    game_day.judge(replicas.lag_after_recovery, target=game_day.target("in-cluster-replica-lag"))


@then("reads stay available on every reader")
def reads_available(game_day: GameDay) -> None:
    game_day.judge(replicas.reads_available, finish=False)  # the scenario may go on after it


@then("the report compares the RTO each driver saw")
def rto_by_driver(game_day: GameDay) -> None:
    game_day.judge(drivers.driver_comparison)
