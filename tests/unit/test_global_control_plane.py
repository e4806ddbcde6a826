"""Global Database without engines: the inter-Region network's routes and round trips (a fake
fabric), the GlobalCluster shape, the API's own checks and the cluster parameter groups, and the
SQL the MySQL endpoints serve for the global views. tests/emulator drives the real thing."""

from __future__ import annotations

from typing import Any

import pytest

from harness.emulator.api import ApiError
from harness.emulator.fabric.mysql_surface import (
    global_view_sql,
    global_views_in,
    substitute_global_views,
    substitute_tables,
)
from harness.emulator.global_cluster import FailoverState, GlobalCluster, GlobalMember, global_arn
from harness.emulator.interregion import RTT_TOXIC, InterRegionNetwork
from harness.emulator.jobs import Jobs
from harness.emulator.operations import Parts, RdsBackend, RegionStore

EAST, WEST = "us-east-1", "us-west-2"
TARGET = {"id": "db-1", "host": "127.44.1.60", "port": 5432}


class FakeFabric:
    """Records what the network asks of the fabric."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Any]] = {}
        self.toxics: dict[str, dict[str, dict[str, Any]]] = {}
        self.dropped: list[tuple[str, str]] = []

    def set_listener(self, name: str, host: str, port: int, route: dict[str, Any], *, fast: bool = False) -> int:
        self.routes[name] = route["targets"]
        return port

    def drop(self, target: str, listener: str | None = None) -> int:
        self.dropped.append((target, listener or ""))
        return 1

    def add_toxic(self, listener: str, name: str, type: str, **fields: Any) -> dict[str, Any]:
        self.toxics.setdefault(listener, {})[name] = {"type": type, **fields}
        return {}

    def remove_toxic(self, listener: str, name: str) -> None:
        self.toxics.get(listener, {}).pop(name, None)

    def remove_listener(self, name: str) -> None:
        self.routes.pop(name, None)


def test_a_link_reaches_its_target_with_half_the_round_trip_each_way() -> None:
    fabric = FakeFabric()
    network = InterRegionNetwork(fabric)  # type: ignore[arg-type]
    assert network.rtt_ms(EAST, WEST) == network.rtt_ms(WEST, EAST) == 70.0
    assert network.rtt_ms(EAST, "sa-east-1") == 60.0
    network.connect("c2-link-global", "127.44.2.90", 5432, EAST, WEST, TARGET)
    assert fabric.routes["c2-link-global"] == [TARGET]
    toxic = fabric.toxics["c2-link-global"][RTT_TOXIC]
    assert (toxic["type"], toxic["stream"], toxic["attributes"]["latency_ms"]) == ("latency", "both", 35.0)
    network.set_rtt(WEST, EAST, 400)
    assert fabric.toxics["c2-link-global"][RTT_TOXIC]["attributes"]["latency_ms"] == 200.0
    with pytest.raises(ValueError):
        network.set_rtt(EAST, EAST, 10)


def test_cut_links_and_a_region_down_reach_nothing_until_restored() -> None:
    fabric = FakeFabric()
    network = InterRegionNetwork(fabric)  # type: ignore[arg-type]
    network.connect("west", "127.44.2.90", 5432, EAST, WEST, TARGET)
    network.connect("eu", "127.44.3.90", 5432, EAST, "eu-west-1", {**TARGET, "id": "db-2"})
    network.cut(WEST, EAST)
    assert fabric.routes["west"] == [] and fabric.routes["eu"] != []
    assert ("db-1", "west") in fabric.dropped
    network.restore(EAST, WEST)
    assert fabric.routes["west"] == [TARGET]
    network.region_down(EAST)
    assert fabric.routes["west"] == [] and fabric.routes["eu"] == []
    network.region_up(EAST)
    assert fabric.routes["west"] == [TARGET] and network.status()["down"] == []
    network.connect("west", "127.44.2.90", 5432, EAST, WEST, None)  # between roles: nothing
    assert fabric.routes["west"] == []


def test_the_global_cluster_shape() -> None:
    model = GlobalCluster(identifier="shop", engine="aurora-postgresql", engine_version="15.10", endpoint="127.44.0.1")
    east = GlobalMember(EAST, "shop-east", "arn:aws:rds:us-east-1:123456789012:cluster:shop-east")
    west = GlobalMember(WEST, "shop-west", "arn:aws:rds:us-west-2:123456789012:cluster:shop-west",
                        synchronization="pending-resync")
    model.members += [east, west]
    model.writer = east.key()
    described = model.describe()
    assert described["GlobalClusterArn"] == global_arn("shop") == "arn:aws:rds::123456789012:global-cluster:shop"
    writer, secondary = described["GlobalClusterMembers"]
    assert writer["IsWriter"] and writer["Readers"] == [west.arn]
    assert not secondary["IsWriter"] and secondary["Readers"] == []
    assert secondary["SynchronizationStatus"] == "pending-resync"
    assert "FailoverState" not in described and described["Endpoint"] == "127.44.0.1"
    model.failover = FailoverState("switching-over", east.arn, west.arn, False)
    assert model.describe()["FailoverState"] == {"Status": "switching-over", "FromDbClusterArn": east.arn,
                                                 "ToDbClusterArn": west.arn, "IsDataLossAllowed": False}
    assert model.endpoint_name.startswith("shop.global-") and model.endpoint_name.endswith(".global.rds.amazonaws.com")


def backend() -> RdsBackend:
    return RdsBackend(Parts(store=RegionStore(), net=44, new_runtime=lambda cluster, addresses: None,  # type: ignore[arg-type,return-value]
                            jobs=Jobs()))


def api_error(call: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


def test_global_cluster_api_checks() -> None:
    api = backend()
    created = api.dispatch(EAST, "CreateGlobalCluster", {"GlobalClusterIdentifier": "shop",
                                                         "Engine": "aurora-postgresql"})["GlobalCluster"]
    assert created["GlobalClusterMembers"] == [] and created["Endpoint"] is None
    assert api_error(lambda: api.dispatch(WEST, "CreateGlobalCluster", {
        "GlobalClusterIdentifier": "shop", "Engine": "aurora-postgresql"})).code == "GlobalClusterAlreadyExistsFault"
    listed = api.dispatch(WEST, "DescribeGlobalClusters", {})["GlobalClusters"]  # not regional
    assert [g["GlobalClusterIdentifier"] for g in listed] == ["shop"]
    assert api_error(lambda: api.dispatch(EAST, "DescribeGlobalClusters", {"GlobalClusterIdentifier": "nope"})
                     ).code == "GlobalClusterNotFoundFault"
    assert api_error(lambda: api.dispatch(WEST, "CreateDBCluster", {
        "DBClusterIdentifier": "c", "Engine": "aurora-postgresql", "GlobalClusterIdentifier": "nope",
        "MasterUsername": "master", "MasterUserPassword": "unit-test-pw-1"})).code == "GlobalClusterNotFoundFault"
    assert api_error(lambda: api.dispatch(WEST, "CreateDBCluster", {
        "DBClusterIdentifier": "c", "Engine": "aurora-mysql", "GlobalClusterIdentifier": "shop",
        "MasterUsername": "master", "MasterUserPassword": "unit-test-pw-1"})).code == "InvalidParameterCombination"
    assert api_error(lambda: api.dispatch(WEST, "CreateDBCluster", {
        "DBClusterIdentifier": "c", "Engine": "aurora-postgresql", "GlobalClusterIdentifier": "shop",
        "BacktrackWindow": 3600, "MasterUsername": "master", "MasterUserPassword": "unit-test-pw-1"}
    )).code in ("InvalidParameterCombination", "InvalidParameterValue")  # Backtrack: no global database
    assert api_error(lambda: api.dispatch(EAST, "FailoverGlobalCluster", {
        "GlobalClusterIdentifier": "shop", "TargetDbClusterIdentifier": "x", "AllowDataLoss": True,
        "Switchover": True})).code == "InvalidParameterCombination"
    assert api_error(lambda: api.dispatch(EAST, "SwitchoverGlobalCluster", {
        "GlobalClusterIdentifier": "shop", "TargetDbClusterIdentifier": "x"})).code == "DBClusterNotFoundFault"
    deleted = api.dispatch(EAST, "DeleteGlobalCluster", {"GlobalClusterIdentifier": "shop"})["GlobalCluster"]
    assert deleted["Status"] == "deleting"
    assert api.dispatch(EAST, "DescribeGlobalClusters", {})["GlobalClusters"] == []


def test_cluster_parameter_groups_take_rds_global_db_rpo_only_within_its_range() -> None:
    api = backend()
    api.dispatch(EAST, "CreateDBClusterParameterGroup", {
        "DBClusterParameterGroupName": "rpo", "DBParameterGroupFamily": "aurora-postgresql15", "Description": "d"})
    assert api_error(lambda: api.dispatch(EAST, "CreateDBClusterParameterGroup", {
        "DBClusterParameterGroupName": "rpo", "DBParameterGroupFamily": "aurora-postgresql15",
        "Description": "d"})).code == "DBParameterGroupAlreadyExists"
    unset = api.dispatch(EAST, "DescribeDBClusterParameters", {"DBClusterParameterGroupName": "rpo"})["Parameters"]
    assert [(p["ParameterName"], p.get("ParameterValue"), p["Source"]) for p in unset] == [
        ("rds.global_db_rpo", None, "engine-default"), ("rds.logical_replication", "0", "engine-default")]
    for value in ("19", "2147483648", "soon"):
        assert api_error(lambda: api.dispatch(EAST, "ModifyDBClusterParameterGroup", {  # noqa: B023
            "DBClusterParameterGroupName": "rpo", "Parameters": [
                {"ParameterName": "rds.global_db_rpo", "ParameterValue": value}]})).code == "InvalidParameterValue"
    api.dispatch(EAST, "ModifyDBClusterParameterGroup", {"DBClusterParameterGroupName": "rpo", "Parameters": [
        {"ParameterName": "rds.global_db_rpo", "ParameterValue": "20"}]})
    assert api.dispatch(EAST, "DescribeDBClusterParameters", {"DBClusterParameterGroupName": "rpo",
                                                              "Source": "user"})["Parameters"][0]["ParameterValue"] == "20"
    assert api_error(lambda: api.dispatch(EAST, "ModifyDBClusterParameterGroup", {
        "DBClusterParameterGroupName": "default.aurora-postgresql15", "Parameters": [
            {"ParameterName": "rds.global_db_rpo", "ParameterValue": "20"}]})).code == "InvalidParameterValue"
    assert api_error(lambda: api.dispatch(WEST, "DescribeDBClusterParameters", {
        "DBClusterParameterGroupName": "rpo"})).code == "DBParameterGroupNotFound"  # groups are regional
    api.dispatch(EAST, "DeleteDBClusterParameterGroup", {"DBClusterParameterGroupName": "rpo"})


def test_the_mysql_global_views_as_derived_tables() -> None:
    sql = "SELECT AWS_REGION FROM information_schema.aurora_global_db_status WHERE RPO_LAG_IN_MILLISECONDS > 0"
    assert global_views_in(sql) == ["aurora_global_db_status"]
    table = global_view_sql("aurora_global_db_status", [
        {"aws_region": EAST, "highest_lsn_written": 10, "durability_lag_in_msec": -1, "rpo_lag_in_msec": -1,
         "last_lag_calculation_time": "1970-01-01T00:00:00+00:00"},
        {"aws_region": WEST, "highest_lsn_written": 9, "durability_lag_in_msec": 12.4, "rpo_lag_in_msec": 80}])
    assert "CAST(0 AS SIGNED) AS RPO_LAG_IN_MILLISECONDS" in table  # 0 on the primary, as Aurora MySQL says
    assert "CAST(80 AS SIGNED) AS RPO_LAG_IN_MILLISECONDS" in table
    rewritten = substitute_global_views(sql, {"aurora_global_db_status": table})
    assert rewritten.startswith("SELECT AWS_REGION FROM (SELECT ") and " AS aurora_global_db_status WHERE" in rewritten
    empty = global_view_sql("aurora_global_db_instance_status", [])
    assert "WHERE FALSE" in empty and "VISIBILITY_LAG_IN_MSEC" in empty
    check = ("SELECT 1 AS tmp FROM information_schema.tables WHERE upper(table_schema) = 'INFORMATION_SCHEMA' "
             "AND upper(table_name) = 'AURORA_GLOBAL_DB_STATUS'")
    assert "'AURORA_GLOBAL_DB_INSTANCE_STATUS', 'SYSTEM VIEW'" in substitute_tables(check)
