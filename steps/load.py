"""Load: Locust users during the game day, what the application saw, and the stop condition."""

from __future__ import annotations

import os

import pytest
from pytest_bdd import given, parsers, then

from harness.drivers import AWS_WRAPPER
from harness.gameday import GameDay
from harness.judgements import load
from harness.load.runner import Distribution, LoadSpec

CLIENT = r"(?: (?:with|using|of) the (?P<behaviour>[\w-]+) client)?"
# `... workload through the AWS Advanced Python Wrapper` (or `with the aws-wrapper client`): the
# users' sessions go through the wrapper (plugin "failover"; "gdb_failover" on a global database)
# instead of a plain driver.
WRAPPER = r"(?P<wrapper> (?:through|on|with) the AWS Advanced Python Wrapper)?"


@pytest.fixture
def load_distribution() -> Distribution:
    """Where Locust's users run: `gameday run --load-workers N` sets GAMEDAY_LOAD_WORKERS."""
    return Distribution.from_environment(os.environ)


@given(parsers.re(rf'a load of (?P<users>\d+) users? running the "(?P<workload>[\w-]+)" workload{CLIENT}{WRAPPER}$'))
def load_running(game_day: GameDay, load_distribution: Distribution, users: str, workload: str,
                 behaviour: str | None, wrapper: str | None) -> None:
    game_day.start_load(load_spec(workload, int(users), behaviour, wrapper), load_distribution)


def load_spec(workload: str, users: int, behaviour: str | None, wrapper: str | None) -> LoadSpec:
    """The step's words as a LoadSpec: "aws-wrapper" as the client is the same as naming the wrapper."""
    if behaviour == AWS_WRAPPER or wrapper:
        return LoadSpec(workload, users, "naive", driver=AWS_WRAPPER)
    return LoadSpec(workload, users, behaviour or "naive")


@given(parsers.parse("the game day stops before the fault if the load's error rate exceeds {percent:g} percent"))
def stop_condition(game_day: GameDay, percent: float) -> None:
    game_day.set_stop_condition(percent / 100)


@then(parsers.re(rf"the application{CLIENT} saw errors for no longer than (?P<seconds>\d+) seconds"))
def errors_no_longer_than(game_day: GameDay, behaviour: str | None, seconds: str) -> None:
    game_day.judge(load.application_errors, loads=game_day.load_names(behaviour), limit_s=float(seconds))


@then(parsers.re(rf"the application{CLIENT} saw no errors"))
def no_errors(game_day: GameDay, behaviour: str | None) -> None:
    game_day.judge(load.no_application_errors, loads=game_day.load_names(behaviour))


@then(parsers.re(rf"the p95 latency{CLIENT} returns to its baseline within (?P<seconds>\d+) seconds"))
def latency_back(game_day: GameDay, behaviour: str | None, seconds: str) -> None:
    game_day.judge(load.latency_recovery, loads=game_day.load_names(behaviour), limit_s=float(seconds))


@then("the game day stops before the fault")
def stopped_before_the_fault(game_day: GameDay) -> None:
    game_day.judge(load.stopped_before_the_fault, finish=False, even_if_aborted=True, aborted=game_day.aborted,
                   writer=game_day.current_writer(), writer_before=game_day.initial_writer)
