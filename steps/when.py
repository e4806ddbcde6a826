"""When: the faults."""

from __future__ import annotations

from pytest_bdd import parsers, when

from harness.faults import Failover, Reboot, StorageNodesDown, StorageNodesUp, UnsafeFailover
from harness.gameday import GameDay
from steps.words import reader_at

RECOVERY_TIMEOUT_S = 600.0


@when("the cluster fails over")
def failover(game_day: GameDay) -> None:
    game_day.inject(Failover())
    game_day.await_recovery(RECOVERY_TIMEOUT_S)


@when(parsers.parse("the cluster fails over to the {ordinal} reader"))
def failover_to(game_day: GameDay, ordinal: str) -> None:
    game_day.inject(Failover(reader_at(game_day, ordinal)))
    game_day.await_recovery(RECOVERY_TIMEOUT_S)


@when("the writer is rebooted")
def reboot_writer(game_day: GameDay) -> None:
    game_day.inject(Reboot(game_day.initial_writer))
    game_day.await_recovery(RECOVERY_TIMEOUT_S)


@when(parsers.parse("the {ordinal} reader is rebooted"))
def reboot_reader(game_day: GameDay, ordinal: str) -> None:
    game_day.inject(Reboot(reader_at(game_day, ordinal)))
    game_day.await_recovery(RECOVERY_TIMEOUT_S)


@when(parsers.parse('the storage nodes of Availability Zone "{zone}" are lost'))
def storage_of_zone_lost(game_day: GameDay, zone: str) -> None:
    game_day.inject(StorageNodesDown([f"sn_{zone}1", f"sn_{zone}2"]))


@when("one more storage node is lost")
def one_more_storage_node_lost(game_day: GameDay) -> None:
    down = game_day.stopped_storage_nodes()
    spare = next(n for n in game_day.storage_nodes() if n not in down)
    game_day.inject(StorageNodesDown([spare]))


@when("the lost storage nodes return")
def storage_nodes_return(game_day: GameDay) -> None:
    game_day.inject(StorageNodesUp(game_day.stopped_storage_nodes()))
    game_day.await_recovery(RECOVERY_TIMEOUT_S)


@when(parsers.parse("the {ordinal} reader is promoted without catching up"))
def unsafe_promotion(game_day: GameDay, ordinal: str) -> None:
    game_day.inject(UnsafeFailover(reader_at(game_day, ordinal)))
    game_day.await_recovery(RECOVERY_TIMEOUT_S)
