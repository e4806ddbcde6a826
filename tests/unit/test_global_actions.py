"""The global game day's actions: what each puts back, and where (fakes for the global database and
the emulator's controls; the real thing runs end to end in tests/e2e/test_global_game_day.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from harness.actions import Context
from harness.environments import PRIMARY, SECONDARY, GlobalUnderTest
from harness.global_actions import GlobalFailover, GlobalSwitchover, LinkSlowed, RegionOutage, RegionReturns

EAST, WEST = "us-east-1", "us-west-2"


@dataclass
class FakeDatabase:
    identifier: str = "orders-global"
    writer: str = EAST
    calls: list[str] = field(default_factory=list)

    def writer_region(self) -> str:
        return self.writer

    def settled(self) -> bool:
        return True

    def wait_until(self, predicate: Any, timeout: float, what: str) -> None:
        assert predicate()

    def wait_writer(self, region: str, timeout: float) -> None:
        assert self.writer == region

    def switchover(self, to_region: str) -> dict[str, Any]:
        self.calls.append(f"switchover {to_region}")
        self.writer = to_region
        return {"FailoverState": {"Status": "pending"}}

    def failover(self, to_region: str) -> dict[str, Any]:
        self.calls.append(f"failover {to_region}")
        self.writer = to_region
        return {"FailoverState": {"Status": "pending"}}


class FakeControls:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def region_down(self, region: str) -> list[str]:
        self.calls.append(f"down {region}")
        return ["orders"]

    def region_up(self, region: str) -> list[str]:
        self.calls.append(f"up {region}")
        return ["orders"]

    def region_network(self) -> dict[str, Any]:
        return {"links": {"l": {"from": EAST, "to": WEST, "rtt_ms": 70.0}}}

    def set_region_rtt(self, region_a: str, region_b: str, milliseconds: float) -> float:
        self.calls.append(f"rtt {milliseconds:g}")
        return milliseconds


def context(kept: bool, controls: FakeControls | None = None) -> tuple[Context, FakeDatabase]:
    database = FakeDatabase()
    cut = SimpleNamespace(identifier="orders", created=not kept)
    gut = GlobalUnderTest(database, {PRIMARY: cut, SECONDARY: cut}, {PRIMARY: EAST, SECONDARY: WEST},  # type: ignore
                          created=not kept)
    environment = SimpleNamespace(name="fake", controls=lambda: controls)
    return Context(cut, environment, gut), database  # type: ignore[arg-type]


def test_a_switchover_or_failover_is_switched_back_on_a_global_database_that_outlives_the_scenario() -> None:
    for action in (GlobalSwitchover("orders-global", WEST), GlobalFailover("orders-global", WEST)):
        kept, database = context(kept=True)
        detail = action.apply(kept)
        assert detail["from_region"] == EAST and database.writer == WEST
        assert action.rollback(kept) == f"switched the writer back to {EAST}"
        assert database.calls[-1] == f"switchover {EAST}" and database.writer == EAST
        created, database = context(kept=False)
        action.apply(created)
        assert action.rollback(created) is None and database.writer == WEST, "deleted afterwards: nothing to put back"


def test_a_region_outage_is_always_put_back_once() -> None:
    controls = FakeControls()
    created, _ = context(kept=False, controls=controls)
    outage = RegionOutage(EAST)
    outage.apply(created)
    RegionReturns(outage).apply(created)
    assert outage.rollback(created) is None, "it came back already"
    outage.apply(created)
    assert outage.rollback(created) == f"{EAST} back", "even on a cluster deleted afterwards"
    assert controls.calls == [f"down {EAST}", f"up {EAST}", f"down {EAST}", f"up {EAST}"]


def test_a_slowed_link_goes_back_to_its_round_trip() -> None:
    controls = FakeControls()
    created, _ = context(kept=False, controls=controls)
    slowed = LinkSlowed(EAST, WEST, 3000)
    assert slowed.apply(created)["previous_ms"] == 70.0
    assert slowed.rollback(created) is not None
    assert controls.calls == ["rtt 3000", "rtt 70"]
