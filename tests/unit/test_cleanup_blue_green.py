"""`gameday cleanup` and Blue/Green deployments: a deployment a killed run left is found by its tag
and deleted with its green cluster (not after a switchover, when green is production); nothing
without the tag is touched (a fake RDS client)."""

from __future__ import annotations

from typing import Any

from harness.cleanup import delete_leftovers, find_leftovers

OURS = [{"Key": "gameday:created-by", "Value": "aurora-gameday"}, {"Key": "gameday:run-id", "Value": "killed"}]


class Pages:
    def __init__(self, key: str, items: list[dict[str, Any]]) -> None:
        self.key, self.items = key, items

    def paginate(self, **kw: Any) -> list[dict[str, Any]]:
        return [{self.key: self.items}]


class FakeRds:
    def __init__(self) -> None:
        self.meta = type("Meta", (), {"region_name": "us-east-1"})()
        self.deployments = {
            "bgd-ours": {"BlueGreenDeploymentIdentifier": "bgd-ours", "Status": "AVAILABLE", "TagList": OURS},
            "bgd-done": {"BlueGreenDeploymentIdentifier": "bgd-done", "Status": "SWITCHOVER_COMPLETED",
                         "TagList": OURS},
            "bgd-theirs": {"BlueGreenDeploymentIdentifier": "bgd-theirs", "Status": "AVAILABLE", "TagList": []}}
        self.deleted: list[dict[str, Any]] = []

    def get_paginator(self, name: str) -> Pages:
        if name == "describe_blue_green_deployments":
            return Pages("BlueGreenDeployments", list(self.deployments.values()))
        return Pages({"describe_db_clusters": "DBClusters"}.get(name, "DBClusterSnapshots"), [])

    def describe_blue_green_deployments(self, BlueGreenDeploymentIdentifier: str) -> dict[str, Any]:
        return {"BlueGreenDeployments": [self.deployments[BlueGreenDeploymentIdentifier]]}

    def delete_blue_green_deployment(self, **kw: Any) -> None:
        self.deleted.append(kw)


def test_leftover_deployments_are_found_by_tag_and_deleted_with_green_unless_switched_over() -> None:
    rds = FakeRds()
    found = find_leftovers(rds)
    assert found.deployments == ["bgd-ours", "bgd-done"] and bool(found)
    assert found.lines()[:2] == ["us-east-1  blue/green  bgd-ours", "us-east-1  blue/green  bgd-done"]
    done = delete_leftovers(rds, found)
    assert rds.deleted == [{"BlueGreenDeploymentIdentifier": "bgd-ours", "DeleteTarget": True},
                           {"BlueGreenDeploymentIdentifier": "bgd-done"}]
    assert done == ["deleted blue/green deployment bgd-ours and its green cluster",
                    "deleted blue/green deployment bgd-done"]
    assert find_leftovers(rds, run_id="another").deployments == []
