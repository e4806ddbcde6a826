"""Where the AWS Advanced Python Wrapper's write probe and load connect on a global database, on AWS
(real DNS), and what the plan of such a load says."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from harness.actions import Context
from harness.environments import PRIMARY, SECONDARY, GlobalUnderTest
from harness.drivers import AWS_WRAPPER
from harness.global_probes import global_wrapper_names, global_wrapper_target
from harness.load.runner import Distribution, LoadSpec
from harness.observation import StartLoad


def cut(identifier: str, address: str) -> Any:
    return SimpleNamespace(identifier=identifier, endpoint=lambda: (f"{identifier}.cluster-x", 5432),
                           reader_endpoint=lambda: (f"{identifier}.cluster-ro-x", 5432),
                           members=lambda: [SimpleNamespace(address=address)])


def aws_context() -> Context:
    roles = {PRIMARY: cut("orders", "orders-1.abc123.us-east-1.rds.amazonaws.com"),
             SECONDARY: cut("orders-west", "orders-west-1.def456.us-west-2.rds.amazonaws.com")}
    database = SimpleNamespace(identifier="orders-global", describe=lambda: {
        "Endpoint": "orders-global.global-xyz.global.rds.amazonaws.com"})
    regions = {PRIMARY: "us-east-1", SECONDARY: "us-west-2"}
    gut = GlobalUnderTest(database, roles, regions, created=False)  # type: ignore[arg-type]
    environment = SimpleNamespace(aurora_names=lambda _cut: None)  # real DNS: AWS
    return Context(roles[PRIMARY], environment, gut)  # type: ignore[arg-type]


def test_on_aws_the_global_writer_endpoint_and_each_regions_instance_pattern(tmp_path: Any) -> None:
    host, port, properties, hosts = global_wrapper_target(aws_context(), tmp_path)
    assert (host, port, hosts) == ("orders-global.global-xyz.global.rds.amazonaws.com", 5432, None)
    assert properties == {"plugins": "gdb_failover", "failover_home_region": "us-east-1",
                          "global_cluster_instance_host_patterns": "us-east-1:?.abc123.us-east-1.rds.amazonaws.com,"
                                                                   "us-west-2:?.def456.us-west-2.rds.amazonaws.com"}


def test_a_load_reads_through_the_secondary_regions_reader_endpoint(tmp_path: Any) -> None:
    target = global_wrapper_names(aws_context(), tmp_path)
    assert (target.writer, target.reader, target.home_region) == (
        "orders-global.global-xyz.global.rds.amazonaws.com", "orders-west.cluster-ro-x", "us-east-1")
    assert target.properties["plugins"] == "gdb_failover"


def test_the_plan_names_the_global_plugin_only_on_a_global_database(tmp_path: Any) -> None:
    def describe(spec: LoadSpec, global_database: bool) -> str:
        return StartLoad(spec, Distribution(), None, "r", tmp_path,  # type: ignore[arg-type]
                         global_database=global_database).describe()

    wrapper = LoadSpec("oltp", 2, driver=AWS_WRAPPER)
    assert describe(wrapper, True) == ("start 2 users running the oltp workload through the AWS Advanced Python "
                                       "Wrapper (plugin gdb_failover, global writer endpoint)")
    assert describe(wrapper, False) == "start 2 users running the oltp workload through the AWS Advanced Python Wrapper"
    assert describe(LoadSpec("oltp", 2), True) == "start 2 users running the oltp workload with the naive client"
