"""`GameDay.act()`: the one place that decides dry run, and the rollbacks `close()` runs.

Fakes stand in for the cluster and the environment: this is the bookkeeping of side effects,
pure logic. That real runs put a real cluster back is shown end to end (tests/e2e/test_aws_target.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from harness.actions import Action, Context, SetPromotionTier
from harness.gameday import GameDay, RollbackFailed
from harness.timeline import read_timeline


@dataclass
class Recorder(Action):
    """An action that says what happened to it."""

    label: str
    log: list[str]
    fails_to_roll_back: bool = False
    name: ClassVar[str] = "recorder"

    def describe(self) -> str:
        return f"change {self.label}"

    def apply(self, context: Context) -> dict[str, Any]:
        self.log.append(f"apply {self.label}")
        return {"label": self.label}

    def rollback(self, context: Context) -> str | None:
        if self.fails_to_roll_back:
            raise RuntimeError(f"{self.label} refused")
        self.log.append(f"rollback {self.label}")
        return f"{self.label} put back"


class FakeCluster:
    def __init__(self) -> None:
        self.tiers = {"db-2": 1}
        self.calls: list[tuple[str, int]] = []

    def topology(self) -> dict[str, Any]:
        return {"status": "available", "writer": "db-1", "readers": ["db-2"]}

    def members(self) -> list[Any]:
        return []

    def promotion_tier(self, instance: str) -> int:
        return self.tiers[instance]

    def set_promotion_tier(self, instance: str, tier: int) -> None:
        self.calls.append((instance, tier))
        self.tiers[instance] = tier


@dataclass
class FakeEnvironment:
    dry_run: bool = False
    created: bool = False
    name: str = "fake"
    released: list[str] = field(default_factory=list)

    def provide(self, requirement: Any, purpose: str) -> Any:
        return SimpleNamespace(identifier="orders", cluster=FakeCluster(), created=self.created, members=list)

    def release(self, cut: Any) -> None:
        self.released.append(cut.identifier)


def day_on(environment: FakeEnvironment, tmp_path: Path) -> GameDay:
    day = GameDay(environment, "a scenario", tmp_path / "scenario")  # type: ignore[arg-type]
    day.provide_cluster(readers=1)
    return day


def test_a_dry_run_plans_every_action_and_applies_none(tmp_path: Path) -> None:
    log: list[str] = []
    day = day_on(FakeEnvironment(dry_run=True), tmp_path)
    assert day.act(Recorder("tier", log)) is None
    assert day.inject(Recorder("failover", log)) is None
    day.hold("steady-state", 3600)  # would take an hour if it were applied
    day.close()
    assert log == [], "nothing was applied, so nothing is rolled back"
    assert day.planned == ["change tier on orders", "inject change failover on orders",
                           "observe the steady-state for 3600 s on orders"]


def test_a_real_run_applies_in_order_and_rolls_back_newest_first(tmp_path: Path) -> None:
    log: list[str] = []
    environment = FakeEnvironment()
    day = day_on(environment, tmp_path)
    day.act(Recorder("tier", log))
    day.inject(Recorder("failover", log))
    day.close()
    assert log == ["apply tier", "apply failover", "rollback failover", "rollback tier"]
    records = read_timeline(day.timeline.path)
    assert [r["kind"] for r in records if r["kind"] in ("action", "fault", "rollback")] == [
        "action", "fault", "rollback", "rollback"]
    assert environment.released == ["orders"]


def test_a_failed_rollback_is_recorded_the_others_still_run_and_the_scenario_errs(tmp_path: Path) -> None:
    log: list[str] = []
    environment = FakeEnvironment()
    day = day_on(environment, tmp_path)
    day.act(Recorder("first", log))
    day.act(Recorder("second", log, fails_to_roll_back=True))
    with pytest.raises(RollbackFailed, match="change second: second refused"):
        day.close()
    assert log == ["apply first", "apply second", "rollback first"]
    assert environment.released == ["orders"], "the cluster is released all the same"
    (failed,) = [r for r in read_timeline(day.timeline.path) if r["kind"] == "rollback" and "error" in r]
    assert failed["error"] == "second refused"


def test_a_promotion_tier_is_put_back_on_a_cluster_the_harness_does_not_own(tmp_path: Path) -> None:
    day = day_on(FakeEnvironment(created=False), tmp_path)
    cluster = day.cluster.cluster
    day.act(SetPromotionTier("db-2", 0))
    day.close()
    assert cluster.calls == [("db-2", 0), ("db-2", 1)] and cluster.tiers["db-2"] == 1


def test_nothing_is_put_back_on_a_cluster_deleted_after_the_scenario(tmp_path: Path) -> None:
    day = day_on(FakeEnvironment(created=True), tmp_path)
    cluster = day.cluster.cluster
    day.act(SetPromotionTier("db-2", 0))
    day.close()
    assert cluster.calls == [("db-2", 0)]
