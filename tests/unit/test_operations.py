"""The control plane's dispatch by API family, without engines: which family answers which
operation, what an unknown one gets, how a new family plugs in, and the shared request checks.
Clusters are created with a fake runtime factory (no engine starts), so only the control plane's
own logic is exercised here; tests/emulator drives the real thing through boto3."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from harness.emulator.api import ApiError, rds_model
from harness.emulator.jobs import Jobs
from harness.emulator.operations import FAMILIES, Family, Parts, RdsBackend, Region, RegionStore
from harness.emulator.operations.clusters import CLUSTER_FILTERS
from harness.emulator.operations.common import apply_filters, paginate, snake_case

REGION = "eu-west-1"
PASSWORD = "unit-test-pw-1"


class FakeRuntime(SimpleNamespace):
    """Stands in for a ClusterRuntime: the control plane only publishes endpoints and events here."""

    def publish_endpoints(self) -> None:
        self.published = getattr(self, "published", 0) + 1

    def cluster_event(self, message: str, *categories: str) -> None:
        self.events = [*getattr(self, "events", []), message]


def parts(store: RegionStore | None = None, jobs: Jobs | None = None) -> Parts:
    return Parts(store=store or RegionStore(), net=44, new_runtime=lambda cluster, addresses: FakeRuntime(cluster=cluster),
                 jobs=jobs or Jobs())


def api_error(call: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


def test_every_family_operation_is_a_real_rds_operation_answered_by_its_snake_case_method() -> None:
    backend = RdsBackend(parts())
    model = set(rds_model().operation_names)
    declared = [op for family in FAMILIES for op in family.operations]
    assert set(backend.handlers) == set(declared) and len(declared) == len(set(declared))
    assert set(declared) <= model
    assert backend.handlers["FailoverDBCluster"].__name__ == "failover_db_cluster"
    assert snake_case("DescribeDBClusterEndpoints") == "describe_db_cluster_endpoints"


def test_an_operation_no_family_declares_is_an_invalid_action() -> None:
    error = api_error(lambda: RdsBackend(parts()).dispatch(REGION, "CreateDBProxy", {}))
    assert error.code == "InvalidAction"
    assert error.message == "The action CreateDBProxy is not supported by the aurora-gameday emulator."


def test_a_new_family_is_one_class_and_one_entry_in_the_list() -> None:
    class Proxies(Family):
        operations = ("DescribeDBProxies",)

        def describe_db_proxies(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
            return {"DBProxies": [], "Region": region.name, "Asked": p["DBProxyName"]}

    backend = RdsBackend(parts(), [*FAMILIES, Proxies])
    answer = backend.dispatch(REGION, "DescribeDBProxies", {"DBProxyName": "proxy1"})
    assert answer == {"DBProxies": [], "Region": REGION, "Asked": "proxy1"}


def test_families_that_contradict_themselves_are_refused_when_the_backend_is_built() -> None:
    class Again(Family):
        operations = ("DescribeEvents",)

        def describe_events(self, region: Region, p: dict[str, Any]) -> None:
            return None

    class Missing(Family):
        operations = ("DescribeDBClusterBacktracks",)

    with pytest.raises(ValueError, match="DescribeEvents is declared by two API families"):
        RdsBackend(parts(), [*FAMILIES, Again])
    with pytest.raises(TypeError, match="Missing declares DescribeDBClusterBacktracks but has no "
                                        r"describe_db_cluster_backtracks\(\) method"):
        RdsBackend(parts(), [Missing])


def create(backend: RdsBackend, identifier: str, **extra: Any) -> dict[str, Any]:
    params = {"DBClusterIdentifier": identifier, "Engine": "aurora-postgresql", "MasterUsername": "master",
              "MasterUserPassword": PASSWORD, **extra}
    result = backend.dispatch(REGION, "CreateDBCluster", params)
    assert result is not None
    return result["DBCluster"]


def test_clusters_are_created_in_the_callers_region_on_their_own_address_block() -> None:
    store, jobs = RegionStore(), Jobs()
    backend = RdsBackend(parts(store, jobs))
    first, second = create(backend, "Orders"), create(backend, "billing", Engine="aurora-mysql")
    assert (first["DBClusterIdentifier"], first["Status"], first["Port"]) == ("orders", "creating", 5432)
    assert first["Endpoint"] == "127.44.1.1" and second["Endpoint"] == "127.44.2.1"
    jobs.wait()
    described = backend.dispatch(REGION, "DescribeDBClusters", {"DBClusterIdentifier": "orders"})
    assert described is not None and described["DBClusters"][0]["Status"] == "available"
    runtime = store.runtime(REGION, "orders")
    assert runtime.published == 1 and runtime.events == ["DB cluster created."]
    assert store.used_cluster_slots() == {0, 1, 2}
    assert api_error(lambda: create(backend, "orders")).code == "DBClusterAlreadyExistsFault"
    assert api_error(lambda: store.runtime("us-east-1", "orders")).code == "DBClusterNotFoundFault"


def test_describe_filters_are_declared_once_and_unknown_ones_named() -> None:
    backend = RdsBackend(parts())
    create(backend, "orders")
    create(backend, "billing", Engine="aurora-mysql")

    def described(filters: list[dict[str, Any]]) -> list[str]:
        result = backend.dispatch(REGION, "DescribeDBClusters", {"Filters": filters})
        assert result is not None
        return [c["DBClusterIdentifier"] for c in result["DBClusters"]]

    assert described([{"Name": "engine", "Values": ["aurora-mysql"]}]) == ["billing"]
    assert described([{"Name": "db-cluster-id", "Values": ["orders", "billing"]}]) == ["orders", "billing"]
    error = api_error(lambda: described([{"Name": "status", "Values": ["available"]}]))
    assert error.code == "InvalidParameterValue"
    assert error.message == ("Unrecognized filter name: status. Supported: clone-group-id, db-cluster-id, "
                             "db-cluster-resource-id, engine.")
    assert set(CLUSTER_FILTERS) == {"db-cluster-id", "engine", "db-cluster-resource-id", "clone-group-id"}


def test_filters_can_look_at_one_member_of_each_item() -> None:
    pairs = [("c1", SimpleNamespace(identifier="i1")), ("c1", SimpleNamespace(identifier="i2"))]
    kept = apply_filters(pairs, [{"Name": "id", "Values": ["i2"]}], {"id": lambda i: i.identifier},
                         key=lambda pair: pair[1])
    assert kept == [pairs[1]]


def test_pages_carry_an_opaque_marker() -> None:
    items = list(range(45))
    page, marker = paginate(items, {"MaxRecords": 20})
    assert page == items[:20] and marker
    page, marker = paginate(items, {"MaxRecords": 20, "Marker": marker})
    assert page == items[20:40] and marker
    assert paginate(items, {"MaxRecords": 20, "Marker": marker}) == (items[40:], None)
    assert api_error(lambda: paginate(items, {"MaxRecords": 10})).code == "InvalidParameterValue"
