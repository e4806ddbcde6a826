"""Recovery from a bad change: the bad change, snapshots, point-in-time restores, Backtrack, and their verdicts."""

from __future__ import annotations

import time

from pytest_bdd import given, parsers, then, when

from harness.gameday import GameDay
from harness.judgements import restore
from harness.faults import RestoreLandsEarly
from harness.recovery import Backtrack, BadChange, RestoreCluster, TakeSnapshot

JUST_BEFORE_S = 0.001  # how far before the bad change's start (server clock) "just before" is


def _offset(game_day: GameDay) -> float:
    clocks = game_day.recorded("clock")
    return float(clocks[-1]["offset_s"]) if clocks else 0.0


def _restore(game_day: GameDay, how: str, point: float | None = None, snapshot: str | None = None,
             snapshot_window: tuple[float, float] | None = None) -> None:
    game_day.act(RestoreCluster(game_day.timeline, game_day.run_id, how, game_day.probes, point=point,
                                snapshot=snapshot, snapshot_window=snapshot_window, clock_offset_s=_offset(game_day),
                                with_orders=bool(game_day.load_specs)))


def _bad_change_start(game_day: GameDay) -> float | None:
    """The bad change's start on the server's clock (None on a dry run: the plan says it in words)."""
    changes = game_day.recorded("bad-change")
    return changes[-1]["server_start"] if changes else None


@when("a bad change deletes every order")
def bad_change(game_day: GameDay) -> None:
    game_day.load_names()  # a bad change needs the load's orders
    game_day.act(BadChange(game_day.timeline, game_day.run_id))


@when("the cluster is restored to just before the bad change")
def restore_before_bad_change(game_day: GameDay) -> None:
    start = _bad_change_start(game_day)
    _restore(game_day, "point-in-time", point=start - JUST_BEFORE_S if start is not None else None)


@when("the cluster is restored to its latest restorable time")
def restore_latest(game_day: GameDay) -> None:
    _restore(game_day, "latest")


@when("a snapshot of the cluster is taken")
def take_snapshot(game_day: GameDay) -> None:
    game_day.act(TakeSnapshot(game_day.timeline, game_day.run_id, _offset(game_day)))


@when("the snapshot is restored")
def restore_snapshot(game_day: GameDay) -> None:
    snapshots = game_day.recorded("snapshot")
    last = snapshots[-1] if snapshots else None
    _restore(game_day, "snapshot", snapshot=last["snapshot"] if last else None,
             snapshot_window=(last["server_requested"], last["server_available"]) if last else None)


@when(parsers.parse("writes go on for {seconds:d} seconds"))
def writes_go_on(game_day: GameDay, seconds: int) -> None:
    game_day.hold("more writes", seconds)


@given(parsers.parse("the next restore lands {seconds:g} seconds early"))
def restore_lands_early(game_day: GameDay, seconds: float) -> None:
    game_day.act(RestoreLandsEarly(seconds))


@when("the cluster is backtracked to just before the bad change")
def backtrack_before_bad_change(game_day: GameDay) -> None:
    start = _bad_change_start(game_day)
    game_day.inject(Backtrack(game_day.timeline, game_day.run_id, game_day.probes,
                              start - JUST_BEFORE_S if start is not None else None, "just before the bad change",
                              with_orders=bool(game_day.load_specs)))


@when(parsers.parse("the cluster is backtracked to {seconds:g} seconds after the bad change"))
def backtrack_after_bad_change(game_day: GameDay, seconds: float) -> None:
    start = _bad_change_start(game_day)
    game_day.inject(Backtrack(game_day.timeline, game_day.run_id, game_day.probes,
                              start + seconds if start is not None else None, f"{seconds:g} s after the bad change",
                              with_orders=bool(game_day.load_specs)))


@when(parsers.parse("a backtrack to {hours:d} hours ago is asked for"))
def backtrack_hours_ago(game_day: GameDay, hours: int) -> None:
    clocks = game_day.recorded("clock")
    offset = clocks[-1]["offset_s"] if clocks else 0.0
    game_day.act(Backtrack(game_day.timeline, game_day.run_id, game_day.probes, time.time() + offset - hours * 3600,
                           f"{hours} hours ago", refusal_expected=True))


@then(parsers.parse("the backtrack is refused with {code}"))
def backtrack_refused(game_day: GameDay, code: str) -> None:
    game_day.judge(restore.refused, finish=False, operation="BacktrackDBCluster", code=code)


@then("the backtrack takes less than the documented backtrack duration")
def backtrack_duration(game_day: GameDay) -> None:
    game_day.judge(restore.backtrack_duration, target=game_day.target("backtrack-duration"))


@then("the bad change is in the cluster again")
def bad_change_present(game_day: GameDay) -> None:
    game_day.judge(restore.bad_change_present)


@then(parsers.re(r"every write acknowledged before the (?:restore point|snapshot|backtrack point) is in the "
                 r"(?:restored )?cluster"))
def nothing_lost(game_day: GameDay) -> None:
    game_day.judge(restore.nothing_lost)


@then(parsers.re(r"no write begun after the (?:restore point|snapshot|backtrack point) is in the (?:restored )?cluster"))
def nothing_leaked(game_day: GameDay) -> None:
    game_day.judge(restore.nothing_leaked)


@then(parsers.re(r"the bad change is not in the (?:restored )?cluster"))
def bad_change_undone(game_day: GameDay) -> None:
    game_day.judge(restore.bad_change_undone)


@then(parsers.parse("the restore takes less than {seconds:d} seconds"))
def restore_time(game_day: GameDay, seconds: int) -> None:
    game_day.judge(restore.restore_time, limit_s=float(seconds))


@then("the restore gives up no more than the documented latest restorable time")
def latest_restorable(game_day: GameDay) -> None:
    game_day.judge(restore.latest_restorable_time, target=game_day.target("pitr-latest-restorable-time"))
