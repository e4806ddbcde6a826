"""The cluster volume's storage nodes (emulator-only faults) and its write quorum."""

from __future__ import annotations

import time

from pytest_bdd import parsers, then, when

from harness.faults import StorageNodesDown, StorageNodesUp
from harness.gameday import GameDay
from harness.judgements import writes

from .words import inject_and_recover

HALT_OBSERVED_S = 3.0


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
    inject_and_recover(game_day, StorageNodesUp(game_day.stopped_storage_nodes()))


@then("writes halt while the quorum is lost")
def writes_halt(game_day: GameDay) -> None:
    game_day.hold("fault-held", HALT_OBSERVED_S)
    game_day.judge(writes.halted, finish=False, until=time.monotonic())
