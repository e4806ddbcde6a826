"""How scenarios name things ("the second reader") and what that means in the cluster."""

from __future__ import annotations

from harness.actions import Action
from harness.errors import ScenarioError
from harness.gameday import GameDay

ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4}
RECOVERY_TIMEOUT_S = 600.0


def reader_at(game_day: GameDay, ordinal: str) -> str:
    """The n-th reader of the cluster as it was handed to the scenario (stable through failovers)."""
    if ordinal not in ORDINALS:
        raise ScenarioError(f"unknown ordinal {ordinal!r}; say first, second, third, fourth or fifth")
    readers = game_day.initial_readers
    index = ORDINALS[ordinal]
    if index >= len(readers):
        raise ScenarioError(f"the scenario names the {ordinal} reader, but the cluster has {len(readers)} "
                            f"reader(s): {', '.join(readers) or 'none'}")
    return readers[index]


def inject_and_recover(game_day: GameDay, fault: Action) -> None:
    """Inject the fault, then wait (on state, not time) until the cluster settles and writes go on."""
    game_day.inject(fault)
    game_day.await_recovery(RECOVERY_TIMEOUT_S)
