"""Failovers and reboots (When), and who the writer is afterwards (Then)."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from harness.faults import Failover, Reboot, UnsafeFailover
from harness.gameday import GameDay
from harness.judgements import writer

from .words import inject_and_recover, reader_at


@when("the cluster fails over")
def failover(game_day: GameDay) -> None:
    inject_and_recover(game_day, Failover())


@when(parsers.parse("the cluster fails over to the {ordinal} reader"))
def failover_to(game_day: GameDay, ordinal: str) -> None:
    inject_and_recover(game_day, Failover(reader_at(game_day, ordinal)))


@when("the writer is rebooted")
def reboot_writer(game_day: GameDay) -> None:
    inject_and_recover(game_day, Reboot(game_day.initial_writer))


@when(parsers.parse("the {ordinal} reader is rebooted"))
def reboot_reader(game_day: GameDay, ordinal: str) -> None:
    inject_and_recover(game_day, Reboot(reader_at(game_day, ordinal)))


@when(parsers.parse("the {ordinal} reader is promoted without catching up"))
def unsafe_promotion(game_day: GameDay, ordinal: str) -> None:
    inject_and_recover(game_day, UnsafeFailover(reader_at(game_day, ordinal)))


@then("the reader with the best promotion tier becomes the writer")
def best_tier_promoted(game_day: GameDay) -> None:
    game_day.judge(writer.promoted_by_tier, finish=False, members_at_fault=game_day.members_at_fault,
                   writer=game_day.current_writer())


@then(parsers.parse("the {ordinal} reader becomes the writer"))
def named_reader_promoted(game_day: GameDay, ordinal: str) -> None:
    game_day.judge(writer.promoted_reader, finish=False, expected=reader_at(game_day, ordinal),
                   writer=game_day.current_writer())


@then("the writer does not change")
def writer_unchanged(game_day: GameDay) -> None:
    game_day.judge(writer.writer_unchanged, finish=False, before=game_day.initial_writer,
                   writer=game_day.current_writer())
