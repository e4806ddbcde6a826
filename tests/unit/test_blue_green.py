"""Blue/Green without engines: green names, which engine versions serve the switchover metadata,
the MySQL endpoints' `mysql.rds_topology`, the Source prerequisites, and the API's own checks.
tests/emulator/test_blue_green.py drives the real thing."""

from __future__ import annotations

import re
from typing import Any

import pytest

from harness.emulator.api import ApiError
from harness.emulator.blue_green import BlueGreenDeployment, RegionNames, green_name
from harness.emulator.fabric.mysql_surface import rds_topology_sql, substitute_rds_topology, substitute_tables
from harness.emulator.jobs import Jobs
from harness.emulator.models import DBCluster, DBInstance
from harness.emulator.operations import Parts, RdsBackend, RegionStore
from harness.emulator.operations.parameter_groups import blue_green_ready
from harness.emulator.surface import has_blue_green_metadata

EAST = "us-east-1"


def test_green_resources_are_named_as_aws_names_them() -> None:
    assert re.fullmatch(r"prod-green-[0-9a-z]{6}", green_name("prod"))
    assert green_name("prod") != green_name("prod")
    long = green_name("x" * 63)
    assert len(long) <= 63 and re.search(r"-green-[0-9a-z]{6}$", long)


def test_the_switchover_metadata_comes_with_the_documented_releases() -> None:
    assert not has_blue_green_metadata("aurora-postgresql", "15.10")
    assert not has_blue_green_metadata("aurora-postgresql", "15.12")
    assert has_blue_green_metadata("aurora-postgresql", "15.13")
    assert not has_blue_green_metadata("aurora-mysql", "8.0.mysql_aurora.3.05.2")
    assert has_blue_green_metadata("aurora-mysql", "8.0.mysql_aurora.3.08.0")
    assert not has_blue_green_metadata("aurora-mysql", "nonsense")


def test_mysql_rds_topology_as_a_derived_table() -> None:
    sql = "SELECT version, endpoint, port, role, status FROM mysql.rds_topology"
    table = rds_topology_sql([{"version": "1.0", "endpoint": "a.cluster-x.us-east-1.rds.amazonaws.com", "port": 3306,
                               "role": "BLUE_GREEN_DEPLOYMENT_SOURCE", "status": "AVAILABLE"}])
    rewritten = substitute_rds_topology(sql, table)
    assert "mysql.rds_topology" not in rewritten and rewritten.endswith(" AS rds_topology")
    assert "'BLUE_GREEN_DEPLOYMENT_SOURCE' AS role" in rewritten and "CAST(1 AS SIGNED) AS id" in rewritten
    assert "WHERE FALSE" in rds_topology_sql([])
    aliased = substitute_rds_topology("SELECT t.status FROM `mysql`.`rds_topology` t", table)
    assert aliased.endswith(") t")
    check = "SELECT 1 FROM information_schema.tables WHERE table_schema = 'mysql' AND table_name = 'rds_topology'"
    assert "'mysql', 'rds_topology'" in substitute_tables(check, rds_topology=True)
    assert "'rds_topology'," not in substitute_tables(check)


def test_a_source_needs_the_replication_parameter_in_its_group() -> None:
    store = RegionStore()
    region = store.region(EAST)
    pg = DBCluster(identifier="pg", region=EAST, engine="aurora-postgresql", parameter_group="default.aurora-postgresql15")
    assert "rds.logical_replication" in (blue_green_ready(store, pg) or "")
    api = backend(store)
    api.dispatch(EAST, "CreateDBClusterParameterGroup", {"DBClusterParameterGroupName": "bg", "Description": "d",
                                                         "DBParameterGroupFamily": "aurora-mysql8.0"})
    my = DBCluster(identifier="my", region=EAST, engine="aurora-mysql", parameter_group="bg")
    assert "binlog_format" in (blue_green_ready(store, my) or "")
    for value in ("ROW", "MIXED"):
        api.dispatch(EAST, "ModifyDBClusterParameterGroup", {"DBClusterParameterGroupName": "bg", "Parameters": [
            {"ParameterName": "binlog_format", "ParameterValue": value}]})
        assert blue_green_ready(store, my) is None
    assert api_error(lambda: api.dispatch(EAST, "ModifyDBClusterParameterGroup", {
        "DBClusterParameterGroupName": "bg", "Parameters": [
            {"ParameterName": "binlog_format", "ParameterValue": "JSON"}]})).code == "InvalidParameterValue"
    assert region.cluster_parameter_groups["bg"].values == {"binlog_format": "MIXED"}


def test_the_api_checks_before_any_engine_is_asked() -> None:
    api = backend(RegionStore())
    assert api_error(lambda: api.dispatch(EAST, "CreateBlueGreenDeployment", {
        "BlueGreenDeploymentName": "x", "Source": "arn:aws:rds:us-east-1:123456789012:cluster:nope"})).code == \
        "DBClusterNotFoundFault"
    assert api_error(lambda: api.dispatch(EAST, "CreateBlueGreenDeployment", {
        "BlueGreenDeploymentName": "x", "Source": "arn:aws:rds:us-east-1:123456789012:db:an-instance"})).code == \
        "SourceDatabaseNotSupportedFault"
    assert api_error(lambda: api.dispatch(EAST, "CreateBlueGreenDeployment", {
        "BlueGreenDeploymentName": "two--hyphens", "Source": "x"})).code == "InvalidParameterValue"
    for operation in ("SwitchoverBlueGreenDeployment", "DeleteBlueGreenDeployment"):
        assert api_error(lambda: api.dispatch(EAST, operation, {  # noqa: B023
            "BlueGreenDeploymentIdentifier": "bgd-nope"})).code == "BlueGreenDeploymentNotFoundFault"
    assert api.dispatch(EAST, "DescribeBlueGreenDeployments", {}) == {"BlueGreenDeployments": [], "Marker": None}
    assert api_error(lambda: api.dispatch(EAST, "DescribeBlueGreenDeployments", {
        "Filters": [{"Name": "engine", "Values": ["x"]}]})).code == "InvalidParameterValue"


def test_a_switchover_renames_in_the_region_listing() -> None:
    store = RegionStore()
    region = store.region(EAST)
    blue = DBCluster(identifier="prod", region=EAST, writer_id="prod-1")
    blue.instances["prod-1"] = DBInstance(identifier="prod-1", cluster_id="prod")
    region.clusters["prod"] = blue
    region.runtimes["prod"] = runtime = FakeRuntime(blue)
    names = RegionNames(region)
    assert names.free_name("prod-old") == "prod-old1"
    names.apply(runtime, "prod-old1", {"prod-1": "prod-1-old1"})  # type: ignore[arg-type]
    assert list(region.clusters) == ["prod-old1"] and region.runtimes["prod-old1"] is runtime
    assert blue.writer_id == "prod-1-old1" and list(blue.instances) == ["prod-1-old1"]
    assert blue.instances["prod-1-old1"].cluster_id == "prod-old1"
    region.clusters["prod"] = DBCluster(identifier="prod")
    assert names.free_name("prod-old") == "prod-old2"


def test_the_deployment_lists_each_pair_and_what_is_missing() -> None:
    blue = DBCluster(identifier="prod", region=EAST)
    green = DBCluster(identifier="prod-green-abc123", region=EAST)
    source = DBInstance(identifier="prod-1", region=EAST)
    target = DBInstance(identifier="prod-1-green-def456", region=EAST)
    blue.instances["prod-1"] = source
    model = BlueGreenDeployment(identifier="bgd-x", name="n", region=EAST, blue=FakeRuntime(blue),  # type: ignore[arg-type]
                                green=FakeRuntime(green), pairs=[(source, target)])  # type: ignore[arg-type]
    described = model.describe()
    assert described["Status"] == "PROVISIONING" and described["Source"].endswith(":cluster:prod")
    assert [d["Status"] for d in described["SwitchoverDetails"]] == ["PROVISIONING", "MISSING_TARGET"]
    assert [t["Name"] for t in described["Tasks"]][0] == "CREATING_READ_REPLICA_OF_SOURCE"


class FakeRuntime:
    def __init__(self, cluster: DBCluster):
        self.cluster = cluster


def backend(store: RegionStore) -> RdsBackend:
    return RdsBackend(Parts(store=store, net=44, new_runtime=lambda cluster, addresses: None,  # type: ignore[arg-type,return-value]
                            jobs=Jobs()))


def api_error(call: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


def test_a_block_whose_addresses_a_switchover_moved_is_not_reused() -> None:
    """After a switchover production (slot 2) serves blue's endpoint addresses (block 1): once the old
    blue is gone, a new cluster must not get slot 1 and bind those addresses again."""
    store = RegionStore()
    production = DBCluster(identifier="prod", region=EAST, slot=2, cluster_address="127.44.1.1",
                           reader_address="127.44.1.2")
    production.instances["prod-1"] = DBInstance(identifier="prod-1", address="127.44.1.20")
    store.region(EAST).clusters["prod"] = production
    assert store.used_cluster_slots() == {0, 1, 2}
