"""Given: the cluster, the probes, the steady state."""

from __future__ import annotations

import pytest
from pytest_bdd import given, parsers

from harness.environments import ClusterRequirement, EngineNotAllowed, parse_engine
from harness.faults import ReaderLag
from harness.gameday import GameDay
from steps.words import reader_at


@given(parsers.re(r"an (?P<engine>Aurora \w+) cluster with a writer and (?P<readers>\d+) readers?"))
def cluster_with_readers(game_day: GameDay, engine: str, readers: str) -> None:
    try:
        game_day.provide_cluster(ClusterRequirement(engine=parse_engine(engine), readers=int(readers)))
    except EngineNotAllowed as error:
        pytest.skip(str(error))


@given(parsers.parse("the {ordinal} reader has promotion tier {tier:d}"))
def reader_tier(game_day: GameDay, ordinal: str, tier: int) -> None:
    reader = reader_at(game_day, ordinal)
    game_day.cluster.cluster.rds.modify_db_instance(DBInstanceIdentifier=reader, PromotionTier=tier,
                                                    ApplyImmediately=True)


@given("the probes are watching the cluster")
def probes_running(game_day: GameDay) -> None:
    game_day.start_probes()


@given("a write probe also runs through the AWS Advanced Python Wrapper")
def wrapper_probe_running(game_day: GameDay) -> None:
    game_day.start_wrapper_probe()


@given(parsers.parse("a steady state of {seconds:d} seconds"))
def steady_state(game_day: GameDay, seconds: int) -> None:
    game_day.hold("steady-state", seconds)


@given(parsers.parse("the {ordinal} reader lags {milliseconds:d} milliseconds behind the writer"))
def lagging_reader(game_day: GameDay, ordinal: str, milliseconds: int) -> None:
    game_day.inject_condition(ReaderLag(reader_at(game_day, ordinal), milliseconds))
