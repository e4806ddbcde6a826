"""The Blue/Green actions: what each asks of the RDS API, where the profile must allow it, and what
each puts back (a fake RDS client and fake controls; the real thing runs end to end in
tests/e2e/test_blue_green_game_day.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from harness.actions import Context
from harness.blue_green_actions import CreateGreen, StallGreenLink, Switchover
from harness.environments import (AllowedCluster, AwsEnvironment, CreationPolicy, EmulatorEnvironment, Profile,
                                  TargetUnavailable)

ARN = "arn:aws:rds:us-east-1:123456789012:cluster:"


@dataclass
class FakeRds:
    """Enough of RDS for the actions: a deployment that becomes AVAILABLE at once."""

    status: str = "AVAILABLE"
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    refuse: str | None = None

    def describe_db_engine_versions(self, **kw: Any) -> dict[str, Any]:
        return {"DBEngineVersions": [{"ValidUpgradeTarget": [
            {"EngineVersion": "15.12", "IsMajorVersionUpgrade": False},
            {"EngineVersion": "15.13", "IsMajorVersionUpgrade": False},
            {"EngineVersion": "16.4", "IsMajorVersionUpgrade": True}]}]}

    def create_blue_green_deployment(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("create", kw))
        self.deployments["bgd-1"] = {"BlueGreenDeploymentIdentifier": "bgd-1", "Status": self.status,
                                     "Source": ARN + "orders", "Target": ARN + "orders-green-x"}
        return {"BlueGreenDeployment": self.deployments["bgd-1"]}

    def describe_blue_green_deployments(self, BlueGreenDeploymentIdentifier: str | None = None,
                                        Filters: Any = None) -> dict[str, Any]:
        identifier = BlueGreenDeploymentIdentifier or Filters[0]["Values"][0]
        found = self.deployments.get(identifier)
        return {"BlueGreenDeployments": [found] if found else []}

    def switchover_blue_green_deployment(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("switchover", kw))
        if self.refuse:
            raise ClientError({"Error": {"Code": "InvalidBlueGreenDeploymentStateFault", "Message": self.refuse}},
                              "SwitchoverBlueGreenDeployment")
        self.deployments["bgd-1"]["Status"] = "SWITCHOVER_IN_PROGRESS"
        return {"BlueGreenDeployment": self.deployments["bgd-1"]}

    def delete_blue_green_deployment(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("delete", kw))
        return {"BlueGreenDeployment": self.deployments.pop(kw["BlueGreenDeploymentIdentifier"])}


class FakeCluster:
    def __init__(self, rds: FakeRds) -> None:
        self.rds = rds

    def describe(self) -> dict[str, Any]:
        return {"Engine": "aurora-postgresql", "EngineVersion": "15.10", "DBClusterArn": ARN + "orders"}

    def wait_until(self, predicate: Any, timeout: float, what: str) -> None:
        assert predicate(), what


def context(environment: Any, created: bool = False) -> tuple[Context, FakeRds]:
    rds = FakeRds()
    cut = SimpleNamespace(identifier="orders", created=created, cluster=FakeCluster(rds))
    return Context(cut, environment), rds  # type: ignore[arg-type]


def aws(*clusters: AllowedCluster, creation: CreationPolicy | None = None) -> AwsEnvironment:
    environment = AwsEnvironment.__new__(AwsEnvironment)
    environment.allowed, environment.creation, environment.global_allowed = list(clusters), creation, []
    environment.profile, environment.name = None, "aws"
    return environment


ORDERS = AllowedCluster("orders", "us-east-1", "PW")
POLICY = CreationPolicy("gd-", "db.r6g.large")


def test_a_green_environment_is_created_only_where_the_profile_allows_it() -> None:
    ctx, rds = context(aws(ORDERS))
    with pytest.raises(TargetUnavailable, match="does not let the harness create clusters"):
        CreateGreen("run123456789").apply(ctx)
    assert rds.calls == []


def test_a_created_green_is_named_tagged_upgraded_and_deleted_with_its_target() -> None:
    ctx, rds = context(aws(ORDERS, creation=POLICY))
    create = CreateGreen("run123456789")
    assert create.apply(ctx) == {"deployment": "bgd-1", "created": True, "status": "AVAILABLE"}
    (_, asked), = rds.calls
    assert asked["BlueGreenDeploymentName"] == "gd-orders-bg-run12345"
    assert asked["TargetEngineVersion"] == "15.13", "the newest minor upgrade target, not the major one"
    assert {"Key": "gameday:created-by", "Value": "aurora-gameday"} in asked["Tags"]
    assert create.rollback(ctx) == "deleted blue/green deployment bgd-1 and its green environment"
    assert rds.calls[-1] == ("delete", {"BlueGreenDeploymentIdentifier": "bgd-1", "DeleteTarget": True})


def test_after_a_switchover_on_a_cluster_the_harness_does_not_own_the_old_blue_is_kept() -> None:
    ctx, rds = context(aws(ORDERS, creation=POLICY))
    create = CreateGreen("run123456789")
    create.apply(ctx)
    rds.deployments["bgd-1"]["Status"] = "SWITCHOVER_COMPLETED"
    assert "the old blue orders is kept" in create.rollback(ctx)
    assert rds.calls[-1] == ("delete", {"BlueGreenDeploymentIdentifier": "bgd-1"}), \
        "no DeleteTarget: green is production"


def test_an_existing_deployment_named_in_the_profile_is_taken_and_never_deleted() -> None:
    ctx, rds = context(aws(AllowedCluster("orders", "us-east-1", "PW", blue_green_deployment="bgd-1")))
    rds.create_blue_green_deployment()  # the user's own
    rds.calls.clear()
    create = CreateGreen("run123456789")
    assert create.apply(ctx)["created"] is False
    assert create.rollback(ctx) is None and rds.calls == []


def test_a_switchover_needs_the_profiles_consent_on_aws() -> None:
    ctx, rds = context(aws(ORDERS, creation=POLICY))
    create = CreateGreen("run123456789")
    create.apply(ctx)
    with pytest.raises(TargetUnavailable, match="may_switch_over = true"):
        Switchover(create).apply(ctx)
    assert [c for c, _ in rds.calls] == ["create"]
    allowed, rds = context(aws(AllowedCluster("orders", "us-east-1", "PW", may_switch_over=True), creation=POLICY))
    create.apply(allowed)
    assert Switchover(create, 30).apply(allowed)["outcome"] == "started"
    assert rds.calls[-1] == ("switchover", {"BlueGreenDeploymentIdentifier": "bgd-1", "SwitchoverTimeout": 30})


def test_a_guardrail_refusal_is_recorded_not_raised() -> None:
    environment = EmulatorEnvironment.__new__(EmulatorEnvironment)
    ctx, rds = context(environment, created=True)
    rds.refuse = "can't be switched over: Long-running activity on the blue environment"
    create = CreateGreen("run123456789")
    create.identifier = "bgd-1"
    rds.create_blue_green_deployment()
    detail = Switchover(create).apply(ctx)
    assert detail["outcome"] == "refused" and "Long-running" in detail["message"]


class FakeControls:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def add_toxic(self, cluster: str, link: str, toxic: dict[str, Any]) -> str:
        self.calls.append(f"add {cluster} {link} {toxic['type']}")
        return toxic["name"]

    def remove_toxic(self, cluster: str, link: str, name: str) -> None:
        self.calls.append(f"remove {cluster} {link}")


def test_held_replication_is_always_lifted_unless_the_switchover_took_the_link() -> None:
    controls = FakeControls()
    environment = SimpleNamespace(name="emulator", controls=lambda: controls)
    ctx, rds = context(environment, created=True)
    rds.create_blue_green_deployment()
    create = CreateGreen("run123456789")
    create.identifier = "bgd-1"
    stall = StallGreenLink(create)
    stall.apply(ctx)
    assert stall.rollback(ctx) == "replication into orders-green-x flows again"
    assert controls.calls == ["add orders-green-x blue-green stall", "remove orders-green-x blue-green"]
    stall.apply(ctx)
    rds.deployments["bgd-1"]["Status"] = "SWITCHOVER_COMPLETED"
    assert stall.rollback(ctx) is None and controls.calls[-1].startswith("add")


def test_a_profile_reads_the_blue_green_consent_and_deployment(tmp_path: Any) -> None:
    from harness.environments import load_profile

    path = tmp_path / "profile.toml"
    path.write_text('[[clusters]]\nidentifier = "orders"\nregion = "us-east-1"\npassword_env = "PW"\n'
                    'may_switch_over = true\nblue_green_deployment = "bgd-1"\n')
    profile: Profile = load_profile(path)
    assert profile.clusters[0].may_switch_over and profile.clusters[0].blue_green_deployment == "bgd-1"


def test_watching_a_deployment_records_each_status_once_and_times_out_naming_the_last(tmp_path: Any) -> None:
    from harness.blue_green import Deployment
    from harness.timeline import Timeline, read_timeline

    rds = FakeRds()
    rds.create_blue_green_deployment()
    seen = iter(["SWITCHOVER_IN_PROGRESS", "SWITCHOVER_IN_PROGRESS", "SWITCHOVER_COMPLETED"])
    original = rds.describe_blue_green_deployments

    def describe(**kw: Any) -> dict[str, Any]:
        rds.deployments["bgd-1"]["Status"] = next(seen, "SWITCHOVER_COMPLETED")
        return original(**kw)

    rds.describe_blue_green_deployments = describe  # type: ignore[method-assign]
    timeline = Timeline(tmp_path / "timeline.jsonl")
    assert Deployment(rds, "bgd-1").watch(timeline, ("SWITCHOVER_COMPLETED",), 10, interval=0.0)[0] == \
        "SWITCHOVER_COMPLETED"
    timeline.close()
    assert [r["status"] for r in read_timeline(tmp_path / "timeline.jsonl")] == ["SWITCHOVER_IN_PROGRESS",
                                                                                 "SWITCHOVER_COMPLETED"]
    rds.describe_blue_green_deployments = original  # type: ignore[method-assign]
    with pytest.raises(TimeoutError, match="still SWITCHOVER_COMPLETED"):
        Deployment(rds, "bgd-1").watch(None, ("AVAILABLE",), 0.0, interval=0.0)
