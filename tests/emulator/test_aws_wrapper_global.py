"""The AWS Advanced Python Wrapper's global failover (plugin `gdb_failover`) on the emulator.

An application on the wrapper (`wrapper_client.py`, as in test_aws_wrapper) connects through the
global writer endpoint's name (`<id>.global-<xyz>.global.rds.amazonaws.com`), with one instance
host pattern per Region. The wrapper must recognise the global database from SQL alone (its
`GlobalAurora*Dialect` reads `aurora_global_db_status()` / `information_schema.aurora_global_db_status`,
more than one Region) and build the topology of every instance in every Region from
`aurora_global_db_instance_status()` / `information_schema.aurora_global_db_instance_status`. When
the test switches the global cluster over to the other Region (and, with a second application,
fails it back with data loss), the query in flight raises FailoverSuccessError and the next one
runs on the new primary's writer, where a write succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.drivers.names import AuroraNames, global_writer_name, namespace_problem
from harness.drivers.wrapper_connection import WRAPPER_PROPERTIES
from harness.emulator.emulator import Emulator
from tests.emulator.global_support import PRIMARY_REGION, SECONDARY_REGION, GlobalSetup, build_global, tear_down
from tests.emulator.support import DATABASE, PASSWORD, USER
from tests.emulator.test_aws_wrapper import identity, start_app  # noqa: F401 - the fixture, shared

ENGINES = ["aurora-postgresql", "aurora-mysql"]
DIALECTS = {"aurora-postgresql": "GlobalAuroraPgDialect", "aurora-mysql": "GlobalAuroraMysqlDialect"}
STARTUP_S = 180.0
FAILOVER_BOUND_S = 120.0
CLIENT_DEADLINE_S = 300.0


@pytest.fixture(scope="module", params=ENGINES)
def global_db(request: pytest.FixtureRequest, emulator: Emulator) -> Iterator[GlobalSetup]:
    problem = namespace_problem()
    if problem:
        pytest.skip(f"the wrapper's child needs a private /etc/hosts: {problem}")
    made = build_global(emulator, request.param, "wpg" if request.param == "aurora-postgresql" else "wmy",
                        headless=False)
    yield made
    tear_down(made)


def names_of(setup: GlobalSetup) -> tuple[AuroraNames, dict[str, AuroraNames], str]:
    """Every Region's names in one hosts file, with the global writer endpoint's; and that name."""
    per_region = {region: AuroraNames.of(setup.rds[region], setup.clusters[region], region)
                  for region in (PRIMARY_REGION, SECONDARY_REGION)}
    described = setup.describe()
    global_name = global_writer_name(described)
    addresses = {global_name: described["Endpoint"]}
    for names in per_region.values():
        addresses.update(names.addresses)
    merged = AuroraNames(setup.identifier, PRIMARY_REGION, addresses=addresses)
    return merged, per_region, global_name


def writer_of(setup: GlobalSetup, region: str) -> str:
    return next(m["DBInstanceIdentifier"] for m in setup.cluster(region)["DBClusterMembers"] if m["IsClusterWriter"])


def run_app(setup: GlobalSetup, start_app: Any, home: str) -> tuple[Any, dict[str, AuroraNames]]:
    merged, per_region, global_name = names_of(setup)
    patterns = ",".join(f"{region}:{names.instance_pattern}" for region, names in per_region.items())
    wrapper = {**WRAPPER_PROPERTIES, "plugins": "gdb_failover", "global_cluster_instance_host_patterns": patterns,
               "failover_home_region": home}
    app = start_app(merged, {
        "engine": setup.engine, "port": setup.cluster(PRIMARY_REGION)["Port"], "user": USER, "password": PASSWORD,
        "database": DATABASE, "cluster_id": f"{setup.identifier}-{time.monotonic_ns()}",
        "cluster_address": setup.endpoint(), "cluster_endpoint": global_name,
        "instance_pattern": per_region[home].instance_pattern, "read_timeout": 30, "deadline_s": CLIENT_DEADLINE_S,
        "warmup_queries": 20, "interval_s": 0.02, "wrapper": wrapper})
    return app, per_region


def expected_topology(setup: GlobalSetup, per_region: dict[str, AuroraNames], writer: str) -> dict[str, tuple[str, str]]:
    return {i: (per_region[region].instance(i), "WRITER" if i == writer else "READER")
            for region in (PRIMARY_REGION, SECONDARY_REGION) for i in setup.instances[region]}


def moves_to_the_new_primary(setup: GlobalSetup, start_app: Any, to_region: str, data_loss: bool) -> None:
    """The application runs on the current primary; the global cluster changes roles; the wrapper follows."""
    setup.wait_settled()
    from_region = setup.writer_region()
    writer = writer_of(setup, from_region)
    app, per_region = run_app(setup, start_app, home=from_region)
    topology = expected_topology(setup, per_region, writer)

    # By address the wrapper settles on its in-Region Aurora dialect (its dialect manager stops at the
    # first match, as it would on Aurora); through the global writer endpoint's name, on the global one.
    assert app.wait("detected", timeout=STARTUP_S)["instance"] == writer
    connected = app.wait("connected", timeout=STARTUP_S)
    assert connected["dialect"] == DIALECTS[setup.engine], app.diagnosis()
    assert connected["host_list_provider"] == "GlobalAuroraHostListProvider", app.diagnosis()
    assert connected["instance"] == writer, app.diagnosis()
    assert {h["host_id"]: (h["host"], h["role"]) for h in connected["topology"]} == topology, app.diagnosis()
    app.wait("looping", timeout=STARTUP_S)

    started = time.monotonic()
    target = setup.arn(to_region)
    if data_loss:
        setup.rds[to_region].failover_global_cluster(GlobalClusterIdentifier=setup.identifier,
                                                     TargetDbClusterIdentifier=target, AllowDataLoss=True)
    else:
        setup.rds[from_region].switchover_global_cluster(GlobalClusterIdentifier=setup.identifier,
                                                         TargetDbClusterIdentifier=target)
    new_writer = setup.cluster(to_region)["DBClusterMembers"][0]["DBInstanceIdentifier"]  # the replica head
    app.send(f"failover {new_writer}")
    after = app.wait("after", timeout=FAILOVER_BOUND_S)
    app.wait("done", timeout=60)
    app.drain()
    assert after["instance"] == new_writer, app.diagnosis()
    assert after["current_host"] == per_region[to_region].instance(new_writer), app.diagnosis()
    assert time.monotonic() - started < FAILOVER_BOUND_S
    setup.wait_settled()
    assert writer_of(setup, to_region) == new_writer
    assert identity(setup.engine, setup.cluster(to_region)["Endpoint"], setup.cluster(to_region)["Port"]) == (
        new_writer, "written after failover")
    statements = next((e["statements"] for e in app.events if e["event"] == "sql"), [])
    assert any("aurora_global_db_instance_status" in s for s in statements), statements


def test_gdb_failover_follows_a_switchover_and_a_failover(global_db: GlobalSetup, start_app: Any) -> None:
    moves_to_the_new_primary(global_db, start_app, SECONDARY_REGION, data_loss=False)
    moves_to_the_new_primary(global_db, start_app, PRIMARY_REGION, data_loss=True)
    global_db.wait_settled()
