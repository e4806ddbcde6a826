"""Blue/Green deployments: a green environment, its switchover (completed, refused by a guardrail,
rolled back past its timeout), DDL on blue, the negative control, and their verdicts."""

from __future__ import annotations

import pytest
from pytest_bdd import given, parsers, then, when

from harness import blue_green as bg
from harness.blue_green_actions import CreateGreen, DdlOnBlue, LongRunningWrite, StallGreenLink, Switchover, \
    UnsafeSwitchover
from harness.environments import EngineNotAllowed
from harness.errors import ScenarioError
from harness.gameday import GameDay
from harness.judgements import blue_green

from .words import RECOVERY_TIMEOUT_S

NOT_SWITCHABLE_WITHIN_S = 120.0  # how long the game day watches for the deployment to report DDL on blue


def _create(game_day: GameDay) -> CreateGreen:
    found = next((a for a in reversed(game_day.requested) if isinstance(a, CreateGreen)), None)
    if found is None:
        raise ScenarioError("this needs a Blue/Green deployment: 'Given a Blue/Green deployment of the cluster'")
    return found


@given(parsers.re(r"an Aurora cluster with a writer and (?P<readers>\d+) readers? ready for Blue/Green deployments"))
def cluster_for_blue_green(game_day: GameDay, readers: str) -> None:
    try:
        game_day.provide_cluster(int(readers), blue_green=True)
    except EngineNotAllowed as error:
        pytest.skip(str(error))


@given(parsers.re(r"a Blue/Green deployment of the cluster(?P<upgrade> with its green environment on the next "
                  r"engine version)?"))
def deployment_given(game_day: GameDay, upgrade: str | None) -> None:
    create = CreateGreen(game_day.run_id, upgrade=bool(upgrade))
    game_day.act(create)
    bg.record_deployment(game_day, create.identifier)


@given(parsers.parse("a write transaction has been open on blue for {seconds:d} seconds"))
def long_running_write(game_day: GameDay, seconds: int) -> None:
    held = LongRunningWrite(game_day.run_id)
    game_day.act(held)
    if held.opened is not None:
        game_day.cluster.cluster.wait_until(lambda: held.age_s() >= seconds, seconds + 30,
                                            f"the write transaction open for {seconds} s")


@given("replication into the green environment is held")
def replication_held(game_day: GameDay) -> None:
    game_day.act(StallGreenLink(_create(game_day)))


@given("the switchover does not wait for green to catch up")
def unsafe_switchover(game_day: GameDay) -> None:
    game_day.act(UnsafeSwitchover(_create(game_day)))


@when(parsers.re(r"the deployment switches over(?: with a timeout of (?P<seconds>\d+) seconds)?"))
def switch_over(game_day: GameDay, seconds: str | None) -> None:
    create = _create(game_day)
    timeout = int(seconds) if seconds else 300
    detail = game_day.inject(Switchover(create, timeout))
    bg.await_switchover(game_day, create.identifier, detail, timeout + RECOVERY_TIMEOUT_S)


@when("a DDL statement runs on blue")
def ddl_on_blue(game_day: GameDay) -> None:
    game_day.act(DdlOnBlue())
    bg.await_not_switchable(game_day, _create(game_day).identifier, NOT_SWITCHABLE_WITHIN_S)


@then("the switchover completes")
def completes(game_day: GameDay) -> None:
    game_day.judge(blue_green.switched_over)


@then("no acknowledged write is lost in the Blue/Green switchover")
def nothing_lost(game_day: GameDay) -> None:
    game_day.judge(blue_green.no_write_lost, target=game_day.target("blue-green-switchover-rpo"))


@then("each client's downtime is within the documented switchover downtime")
def downtime(game_day: GameDay) -> None:
    game_day.judge(blue_green.downtime, loads=game_day.load_names(),
                   target=game_day.target("blue-green-switchover-downtime"))


@then(parsers.parse("each client was refused writes for no longer than {seconds:d} seconds"))
def refused_for(game_day: GameDay, seconds: int) -> None:
    game_day.judge(blue_green.downtime, loads=game_day.load_names(), limit_s=float(seconds), check="writes refused")


@then("the application's endpoints are unchanged")
def endpoints(game_day: GameDay) -> None:
    game_day.judge(blue_green.endpoints_unchanged)


@then("the old blue refuses writes")
def old_blue(game_day: GameDay) -> None:
    bg.check_old_blue(game_day)
    game_day.judge(blue_green.old_blue_refuses_writes)


@then("the production cluster runs the green environment's engine version")
def engine_version(game_day: GameDay) -> None:
    game_day.judge(blue_green.production_engine_version)


@then("the switchover is refused and nothing changes")
def refused(game_day: GameDay) -> None:
    game_day.judge(blue_green.nothing_changed)


@then("the switchover is rolled back: nothing renamed and writes back on blue")
def rolled_back(game_day: GameDay) -> None:
    game_day.judge(blue_green.rolled_back)


@then("the game day reports the deployment as not switchable before a switchover is tried")
def not_switchable(game_day: GameDay) -> None:
    game_day.judge(blue_green.not_switchable, finish=False)
