"""Global Database: a primary and a secondary Region, a switchover, a Region lost and a failover
with data loss, managed RPO, and their verdicts."""

from __future__ import annotations

import pytest
from pytest_bdd import given, parsers, then, when

from harness.environments import PRIMARY, SECONDARY, EngineNotAllowed
from harness.errors import ScenarioError
from harness.gameday import GameDay
from harness.global_actions import (GlobalFailover, GlobalSwitchover, LinkCut, LinkSlowed, ManagedRpo, RegionOutage,
                                    RegionReturns)
from harness.judgements import global_database, writes

from .words import RECOVERY_TIMEOUT_S

RPO_TOLERANCE_S = 5.0  # how far past rds.global_db_rpo a commit may still be acknowledged (the lag is sampled)
QUIET_S = 2.0  # commits count as held once none is acknowledged for this long


def _regions(game_day: GameDay) -> tuple[str, str]:
    regions = game_day.global_database.regions
    return regions[PRIMARY], regions[SECONDARY]


@given(parsers.re(r"an Aurora global database with a writer and (?P<readers>\d+) readers? and a secondary Region "
                  r"of (?P<instances>\d+) instances?"))
def global_database_given(game_day: GameDay, readers: str, instances: str) -> None:
    try:
        game_day.provide_global(int(readers), int(instances))
    except EngineNotAllowed as error:
        pytest.skip(str(error))


@given(parsers.parse("the primary cluster's rds.global_db_rpo is {seconds:d} seconds"))
def managed_rpo(game_day: GameDay, seconds: int) -> None:
    game_day.act(ManagedRpo(seconds))


@given(parsers.parse("the inter-Region link is slowed to {milliseconds:d} milliseconds round trip"))
def link_slowed(game_day: GameDay, milliseconds: int) -> None:
    game_day.act(LinkSlowed(*_regions(game_day), float(milliseconds)))


@when("the global database switches over to the secondary Region")
def switchover(game_day: GameDay) -> None:
    _, secondary = _regions(game_day)
    game_day.inject(GlobalSwitchover(game_day.global_database.identifier, secondary))
    game_day.await_global_writer(secondary, RECOVERY_TIMEOUT_S)


@when("the primary Region goes out")
def region_out(game_day: GameDay) -> None:
    primary, _ = _regions(game_day)
    game_day.inject(RegionOutage(primary))
    game_day.await_writes_refused(RECOVERY_TIMEOUT_S)


@when("a failover with data loss promotes the secondary Region")
def failover(game_day: GameDay) -> None:
    _, secondary = _regions(game_day)
    game_day.inject(GlobalFailover(game_day.global_database.identifier, secondary))
    game_day.await_global_writer(secondary, RECOVERY_TIMEOUT_S)


@when("the primary Region comes back")
def region_back(game_day: GameDay) -> None:
    outage = next((a for a in reversed(game_day.requested) if isinstance(a, RegionOutage)), None)
    if outage is None:
        raise ScenarioError("the primary Region comes back only after it went out: 'When the primary Region goes out'")
    game_day.act(RegionReturns(outage))
    game_day.await_global_settled(RECOVERY_TIMEOUT_S)


@when("the inter-Region link is cut")
def link_cut(game_day: GameDay) -> None:
    game_day.inject(LinkCut(*_regions(game_day)))


@when("commits on the primary are held")
def commits_held_when(game_day: GameDay) -> None:
    game_day.await_commits_held(QUIET_S, RECOVERY_TIMEOUT_S)


@then("cross-Region visibility lag stays within the documented replication latency")
def replication_lag(game_day: GameDay) -> None:
    game_day.judge(global_database.replication_lag, target=game_day.target("global-database-replication-latency"))


@then("no acknowledged write is lost in the switchover")
def switchover_lost_nothing(game_day: GameDay) -> None:
    game_day.judge(writes.data_loss, target=game_day.target("global-database-switchover-rpo"))


@then(parsers.parse("writes are refused for no longer than {seconds:d} seconds"))
def writes_refused(game_day: GameDay, seconds: int) -> None:
    """Per client: each write probe's outage and each load's error window."""
    game_day.judge(global_database.writes_refused, limit_s=float(seconds),
                   loads=[spec.name for spec in game_day.load_specs])


@then("the secondary Region holds the writer and the primary Region's cluster is a secondary")
def roles_swapped(game_day: GameDay) -> None:
    primary, secondary = _regions(game_day)
    game_day.judge(global_database.roles_swapped, writer_region=secondary, secondary_region=primary)


@then(parsers.parse("writes are back in the secondary Region within the documented global RTO, counted from the "
                    "{since}"))
def writes_back(game_day: GameDay, since: str) -> None:
    _, secondary = _regions(game_day)
    game_day.judge(global_database.recovery, target=game_day.target("global-database-rto"), since=since,
                   new_region=secondary)


@then("the failover loses no more than the documented global RPO")
def failover_rpo(game_day: GameDay) -> None:
    game_day.judge(global_database.failover_rpo, target=game_day.target("global-database-failover-rpo"))


@then("the primary Region's cluster rejoins as a secondary")
def rejoined(game_day: GameDay) -> None:
    primary, _ = _regions(game_day)
    game_day.judge(global_database.rejoined, region=primary)


@then("commits were held once the RPO lag passed rds.global_db_rpo")
def commits_held_then(game_day: GameDay) -> None:
    game_day.judge(global_database.commits_held, rpo_s=float(_rpo(game_day)), tolerance_s=RPO_TOLERANCE_S)


@then("the failover loses no more than rds.global_db_rpo of acknowledged writes")
def loss_within_managed_rpo(game_day: GameDay) -> None:
    game_day.judge(global_database.failover_rpo, limit_s=_rpo(game_day) + RPO_TOLERANCE_S,
                   check="data loss within rds.global_db_rpo")


@then("no acknowledged write is lost in the failover")
def failover_lost_nothing(game_day: GameDay) -> None:
    game_day.judge(global_database.no_write_lost)


def _rpo(game_day: GameDay) -> int:
    rpo = next((a for a in game_day.requested if isinstance(a, ManagedRpo)), None)
    if rpo is None:
        raise ScenarioError("set rds.global_db_rpo first: 'Given the primary cluster's rds.global_db_rpo is ...'")
    return rpo.seconds
