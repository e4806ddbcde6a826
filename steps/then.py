"""Then: judgements over what the probes recorded, each a PolicyMet / PolicyBreached verdict.

A breached verdict does not stop the scenario: every Then step is judged, and the scenario
fails at its end if any verdict was breached (see `steps/conftest.py`).
"""

from __future__ import annotations

from pytest_bdd import parsers, then

from harness.drivers import AWS_WRAPPER
from harness.gameday import GameDay, ScenarioError
from steps.words import reader_at


@then("the reader with the best promotion tier becomes the writer")
def best_tier_promoted(game_day: GameDay) -> None:
    game_day.judge_promotion_by_tier()


@then(parsers.parse("the {ordinal} reader becomes the writer"))
def named_reader_promoted(game_day: GameDay, ordinal: str) -> None:
    expected = reader_at(game_day, ordinal)
    actual = game_day.current_writer()
    game_day.judge_fact("promoted reader", f"{actual} became the writer; expected {expected}", actual == expected)


@then("the writer does not change")
def writer_unchanged(game_day: GameDay) -> None:
    actual = game_day.current_writer()
    game_day.judge_fact("no failover", f"the writer is {actual}; it was {game_day.initial_writer}",
                        actual == game_day.initial_writer)


@then("writes are back within the documented failover time")
def writes_back_documented(game_day: GameDay) -> None:
    target = game_day.target("failover-with-replicas")
    game_day.judge_recovery("writes back (RTO)", target.limit, target)


@then(parsers.parse("writes are back within {seconds:d} seconds"))
def writes_back_within(game_day: GameDay, seconds: int) -> None:
    game_day.judge_recovery("writes back (RTO)", float(seconds))


@then(parsers.parse("the AWS Advanced Python Wrapper saw writes back within {seconds:d} seconds"))
def wrapper_writes_back_within(game_day: GameDay, seconds: int) -> None:
    game_day.judge_recovery("writes back (RTO), AWS Advanced Python Wrapper", float(seconds), driver=AWS_WRAPPER)


@then("the report compares the RTO each driver saw")
def rto_by_driver(game_day: GameDay) -> None:
    game_day.judge_driver_comparison()


@then("writes are not interrupted")
def writes_not_interrupted(game_day: GameDay) -> None:
    game_day.judge_uninterrupted_writes()


@then("no acknowledged write is lost")
def no_write_lost(game_day: GameDay) -> None:
    game_day.judge_data_loss(game_day.target("in-region-acknowledged-writes"))


@then("replica lag after recovery stays within the documented replica lag")
def lag_after_recovery(game_day: GameDay) -> None:
    game_day.judge_lag_after_recovery(game_day.target("in-cluster-replica-lag"))


@then("reads stay available on every reader")
def reads_available(game_day: GameDay) -> None:
    game_day.judge_reads_available()


@then("writes halt while the quorum is lost")
def writes_halt(game_day: GameDay) -> None:
    if not game_day.faults:
        raise ScenarioError("'writes halt' needs a fault before it")
    game_day.judge_writes_halted(observe_seconds=3.0)
