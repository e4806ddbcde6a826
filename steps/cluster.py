"""Given: the cluster (of the run's engine), its promotion tiers, the probes, the steady state."""

from __future__ import annotations

import pytest
from pytest_bdd import given, parsers

from harness.actions import SetPromotionTier
from harness.environments import EngineNotAllowed
from harness.faults import ReaderLag
from harness.gameday import GameDay

from .words import reader_at


@given(parsers.re(r"an Aurora cluster with a writer and (?P<readers>\d+) readers?"
                  r"(?: and a backtrack window of (?P<hours>\d+) hours?)?"))
def cluster_with_readers(game_day: GameDay, readers: str, hours: str | None) -> None:
    try:
        game_day.provide_cluster(int(readers), backtrack_window_s=int(hours or 0) * 3600)
    except EngineNotAllowed as error:
        pytest.skip(str(error))


@given(parsers.parse("the {ordinal} reader has promotion tier {tier:d}"))
def reader_tier(game_day: GameDay, ordinal: str, tier: int) -> None:
    game_day.act(SetPromotionTier(reader_at(game_day, ordinal), tier))


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
    game_day.act(ReaderLag(reader_at(game_day, ordinal), milliseconds))
