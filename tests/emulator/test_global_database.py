"""Aurora Global Database on the emulator, on both engines, through boto3 and real SQL.

One global cluster per engine for the whole module: a primary in us-east-1 (a writer and a
reader), a secondary in us-west-2 (a replica head and a reader) 70 ms of round trip away, and a
headless secondary in eu-west-1. The tests run in order, each leaving the global cluster
healthy for the next: replication and its lag, Aurora's global views, the errors AWS models, a
switchover that must lose nothing (an independent ledger of acknowledged writes), the primary
Region lost and a failover with data loss that must lose exactly what had not crossed, the old
primary's resync, managed RPO (Aurora PostgreSQL), and detach-and-promote.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pymysql
import pytest

from harness.emulator.emulator import Emulator
from tests.emulator.global_support import (
    HEADLESS_REGION,
    PRIMARY_REGION,
    SECONDARY_REGION,
    GlobalSetup,
    Ledger,
    build_global,
    delete_everything,
    ids,
    sql,
    tear_down,
    wait_available,
)
from tests.emulator.support import wait_for

ENGINES = ["aurora-postgresql", "aurora-mysql"]
IDENTITY = {"aurora-postgresql": "SELECT aurora_db_instance_identifier()", "aurora-mysql": "SELECT @@aurora_server_id"}
GLOBAL_STATUS = {"aurora-postgresql": "SELECT aws_region, rpo_lag_in_msec FROM aurora_global_db_status()",
                 "aurora-mysql": "SELECT AWS_REGION, RPO_LAG_IN_MILLISECONDS FROM information_schema.aurora_global_db_status"}
INSTANCE_STATUS = {
    "aurora-postgresql": "SELECT server_id, session_id, aws_region, visibility_lag_in_msec "
                         "FROM aurora_global_db_instance_status()",
    "aurora-mysql": "SELECT SERVER_ID, SESSION_ID, AWS_REGION, VISIBILITY_LAG_IN_MSEC "
                    "FROM information_schema.aurora_global_db_instance_status"}


@pytest.fixture(scope="module", params=ENGINES)
def setup(request: pytest.FixtureRequest, emulator: Emulator) -> Iterator[GlobalSetup]:
    made = build_global(emulator, request.param, "pg" if request.param == "aurora-postgresql" else "my")
    yield made
    tear_down(made)


# --- replication --------------------------------------------------------------------------------------
def test_secondary_replicates_the_primary_across_the_link(setup: GlobalSetup) -> None:
    engine = setup.engine
    described = setup.describe()
    members = {m["DBClusterArn"].split(":")[3]: m for m in described["GlobalClusterMembers"]}
    assert members[PRIMARY_REGION]["IsWriter"] and not members[SECONDARY_REGION]["IsWriter"]
    assert set(members[PRIMARY_REGION]["Readers"]) == {setup.arn(SECONDARY_REGION), setup.arn(HEADLESS_REGION)}
    assert all(m["SynchronizationStatus"] == "connected" for m in members.values())
    assert setup.cluster(SECONDARY_REGION)["GlobalClusterIdentifier"] == setup.identifier
    # A secondary has no writer: every instance read-only.
    assert not any(m["IsClusterWriter"] for m in setup.cluster(SECONDARY_REGION)["DBClusterMembers"])
    head, reader = setup.addresses(SECONDARY_REGION)
    with pytest.raises((psycopg.Error, pymysql.MySQLError)):
        sql(engine, head, "INSERT INTO ledger (id) VALUES (-1)")

    # A commit on the primary reaches both secondary instances, no sooner than the link's one-way
    # latency (set to 400 ms round trip for this, then back to the default).
    assert setup.controls.region_network()["links"], "no inter-Region link"
    setup.controls.set_region_rtt(region_a=PRIMARY_REGION, region_b=SECONDARY_REGION, milliseconds=400)
    try:
        committed = time.monotonic()  # before the commit: its WAL cannot leave earlier
        sql(engine, setup.endpoint(), "INSERT INTO ledger (id) VALUES (0)")
        for address in (head, reader):
            wait_for(lambda: 0 in ids(engine, address), timeout=30, interval=0.01,  # noqa: B023
                     what=f"the commit on {address}")
        took = time.monotonic() - committed
    finally:
        setup.controls.set_region_rtt(region_a=PRIMARY_REGION, region_b=SECONDARY_REGION, milliseconds=70)
    assert 0.19 <= took < 15.0, took  # the floor is the link; the ceiling only catches a stuck replica


# --- Aurora's global views -------------------------------------------------------------------------------
def test_global_views_answer_from_any_instance_in_any_region(setup: GlobalSetup) -> None:
    engine = setup.engine
    every_instance = {i: region for region in (PRIMARY_REGION, SECONDARY_REGION) for i in setup.instances[region]}
    writer = next(m["DBInstanceIdentifier"] for m in setup.cluster(PRIMARY_REGION)["DBClusterMembers"]
                  if m["IsClusterWriter"])
    addresses = setup.addresses(PRIMARY_REGION) + setup.addresses(SECONDARY_REGION)
    with Ledger(engine, setup.endpoint(), acknowledged=[1_000_000]) as ledger:
        ledger.wait_acknowledged(20)
        for address in addresses:
            regions = dict(sql(engine, address, GLOBAL_STATUS[engine]))
            assert set(regions) == {PRIMARY_REGION, SECONDARY_REGION, HEADLESS_REGION}, regions
            primary_rpo = -1 if engine == "aurora-postgresql" else 0
            assert regions[PRIMARY_REGION] == primary_rpo
            assert regions[SECONDARY_REGION] is not None and 0 <= regions[SECONDARY_REGION] < 5000
            rows = sql(engine, address, INSTANCE_STATUS[engine])
            assert {r[0]: r[2] for r in rows} == every_instance, rows
            assert [r[0] for r in rows if r[1] == "MASTER_SESSION_ID"] == [writer]
            assert all(r[3] is not None and 0 <= r[3] < 5000 for r in rows), rows
    # The wrapper's existence check (Aurora MySQL lists the views in information_schema.tables).
    if engine == "aurora-mysql":
        assert sql(engine, addresses[-1], "SELECT 1 AS tmp FROM information_schema.tables WHERE upper(table_schema) = "
                                          "'INFORMATION_SCHEMA' AND upper(table_name) = 'AURORA_GLOBAL_DB_STATUS'")


def test_lag_rises_while_the_link_is_cut_and_recovers(setup: GlobalSetup) -> None:
    engine = setup.engine
    head = setup.addresses(SECONDARY_REGION)[0]

    def secondary_rpo_ms() -> int:
        return dict(sql(engine, setup.endpoint(), GLOBAL_STATUS[engine]))[SECONDARY_REGION]

    with Ledger(engine, setup.endpoint(), acknowledged=[2_000_000]) as ledger:
        ledger.wait_acknowledged(10)
        setup.controls.cut_region_link(region_a=PRIMARY_REGION, region_b=SECONDARY_REGION)
        try:
            wait_for(lambda: secondary_rpo_ms() > 1500, timeout=30, interval=0.2, what="RPO lag above 1.5 s")
            frozen = max(ids(engine, head))
            ledger.wait_acknowledged(10)
            assert max(ids(engine, head)) == frozen, "the secondary received writes across a cut link"
        finally:
            setup.controls.restore_region_link(region_a=PRIMARY_REGION, region_b=SECONDARY_REGION)
        wait_for(lambda: secondary_rpo_ms() < 1000, timeout=60, interval=0.2, what="RPO lag back under 1 s")
    last = ledger.acknowledged[-1]
    wait_for(lambda: last in ids(engine, head), timeout=30, what="the secondary to catch up")


def test_a_secondary_region_lost_and_back_catches_up(setup: GlobalSetup) -> None:
    engine, west = setup.engine, setup.rds[SECONDARY_REGION]
    setup.controls.region_down(region=SECONDARY_REGION)
    try:
        statuses = {west.describe_db_instances(DBInstanceIdentifier=i)["DBInstances"][0]["DBInstanceStatus"]
                    for i in setup.instances[SECONDARY_REGION]}
        assert statuses == {"inaccessible"}
        with pytest.raises((psycopg.Error, pymysql.MySQLError)):
            sql(engine, setup.addresses(SECONDARY_REGION)[1], "SELECT 1", timeout=2)
        sql(engine, setup.endpoint(), "INSERT INTO ledger (id) VALUES (2600000)")  # the primary goes on
    finally:
        setup.controls.region_up(region=SECONDARY_REGION)
    setup.wait_settled()
    for address in setup.addresses(SECONDARY_REGION):
        wait_for(lambda: 2_600_000 in ids(engine, address), timeout=60, what=f"{address} to catch up")  # noqa: B023


def test_secondary_follows_an_in_region_failover_of_the_primary(setup: GlobalSetup) -> None:
    engine, east = setup.engine, setup.rds[PRIMARY_REGION]
    writer = next(m["DBInstanceIdentifier"] for m in setup.cluster(PRIMARY_REGION)["DBClusterMembers"]
                  if m["IsClusterWriter"])
    east.failover_db_cluster(DBClusterIdentifier=setup.clusters[PRIMARY_REGION])
    wait_for(lambda: next(m["DBInstanceIdentifier"] for m in setup.cluster(PRIMARY_REGION)["DBClusterMembers"]
                          if m["IsClusterWriter"]) != writer, timeout=120, interval=0.1, what="the in-Region failover")
    setup.wait_settled()
    wait_for(lambda: not _fails(lambda: sql(engine, setup.endpoint(), "INSERT INTO ledger (id) VALUES (2500000)")),
             timeout=60, what="the global writer endpoint to reach the new writer")
    for address in setup.addresses(SECONDARY_REGION):
        wait_for(lambda: 2_500_000 in ids(engine, address), timeout=60, what=f"{address} to follow")  # noqa: B023


# --- the errors AWS models ---------------------------------------------------------------------------------
def test_modelled_errors(setup: GlobalSetup) -> None:
    east, west, eu = (setup.rds[r] for r in (PRIMARY_REGION, SECONDARY_REGION, HEADLESS_REGION))
    with pytest.raises(east.exceptions.GlobalClusterNotFoundFault):
        east.describe_global_clusters(GlobalClusterIdentifier="no-such-global")
    with pytest.raises(west.exceptions.GlobalClusterNotFoundFault):
        west.create_db_cluster(DBClusterIdentifier="orphan", Engine=setup.engine, GlobalClusterIdentifier="no-such")
    with pytest.raises(east.exceptions.GlobalClusterAlreadyExistsFault):
        east.create_global_cluster(GlobalClusterIdentifier=setup.identifier, Engine=setup.engine)
    with pytest.raises(east.exceptions.InvalidGlobalClusterStateFault):
        east.delete_global_cluster(GlobalClusterIdentifier=setup.identifier)
    with pytest.raises(west.exceptions.InvalidDBClusterStateFault):  # a member cannot be deleted
        west.delete_db_cluster(DBClusterIdentifier=setup.clusters[SECONDARY_REGION], SkipFinalSnapshot=True)
    # A headless secondary cannot take the primary role until it has an instance.
    for call in (east.switchover_global_cluster, eu.failover_global_cluster):
        with pytest.raises(east.exceptions.InvalidDBClusterStateFault):
            call(GlobalClusterIdentifier=setup.identifier, TargetDbClusterIdentifier=setup.arn(HEADLESS_REGION),
                 **({"AllowDataLoss": True} if call == eu.failover_global_cluster else {}))
    # Not a member (a cluster name in a Region where the global cluster has none).
    with pytest.raises(east.exceptions.DBClusterNotFoundFault):
        east.switchover_global_cluster(GlobalClusterIdentifier=setup.identifier,
                                       TargetDbClusterIdentifier="arn:aws:rds:ap-south-1:123456789012:cluster:nowhere")
    with pytest.raises(east.exceptions.InvalidGlobalClusterStateFault):  # the primary is already the primary
        east.switchover_global_cluster(GlobalClusterIdentifier=setup.identifier,
                                       TargetDbClusterIdentifier=setup.arn(PRIMARY_REGION))
    with pytest.raises(east.exceptions.ClientError, match="InvalidParameterCombination"):
        east.failover_global_cluster(GlobalClusterIdentifier=setup.identifier, AllowDataLoss=True, Switchover=True,
                                     TargetDbClusterIdentifier=setup.arn(SECONDARY_REGION))
    with pytest.raises(west.exceptions.InvalidDBClusterStateFault):  # no in-Region failover on a secondary
        west.failover_db_cluster(DBClusterIdentifier=setup.clusters[SECONDARY_REGION])
    assert "FailoverState" not in setup.describe()


# --- switchover ------------------------------------------------------------------------------------------
def switch_over(setup: GlobalSetup, to_region: str, via_failover: bool = False) -> list[str]:
    """SwitchoverGlobalCluster (or FailoverGlobalCluster with Switchover) to `to_region`'s cluster;
    the FailoverState statuses seen on the way."""
    if via_failover:
        answer = setup.rds[to_region].failover_global_cluster(
            GlobalClusterIdentifier=setup.identifier, TargetDbClusterIdentifier=setup.arn(to_region), Switchover=True)
    else:
        answer = setup.rds[setup.writer_region()].switchover_global_cluster(
            GlobalClusterIdentifier=setup.identifier, TargetDbClusterIdentifier=setup.arn(to_region))
    state = answer["GlobalCluster"]["FailoverState"]
    assert (state["Status"], state["ToDbClusterArn"], state["IsDataLossAllowed"]) == (
        "pending", setup.arn(to_region), False)
    seen = ["pending"]

    def done() -> bool:
        described = setup.describe()
        if "FailoverState" in described:
            if described["FailoverState"]["Status"] != seen[-1]:
                seen.append(described["FailoverState"]["Status"])
            return False
        return setup.writer_region() == to_region

    wait_for(done, timeout=180, interval=0.05, what=f"the switchover to {to_region}")
    return seen


def test_switchover_loses_no_acknowledged_write(setup: GlobalSetup) -> None:
    engine = setup.engine
    started = setup.describe()  # noqa: F841 - the starting point, for the reader of a failure
    since = time.time() - 1
    waiting = []

    def restore_once_waiting() -> None:
        """The switchover must wait for the lagging secondary (RDS-EVENT-0183); then the link returns."""
        try:
            waiting.append(wait_for(lambda: [m for m in setup.events(PRIMARY_REGION, since)
                                             if m.startswith("Waiting for data synchronization")], timeout=60))
        finally:
            setup.controls.restore_region_link(region_a=PRIMARY_REGION, region_b=SECONDARY_REGION)

    with Ledger(engine, setup.endpoint(), acknowledged=[3_000_000]) as ledger:
        ledger.wait_acknowledged(30)
        setup.controls.cut_region_link(region_a=PRIMARY_REGION, region_b=SECONDARY_REGION)
        ledger.wait_acknowledged(30)  # acknowledged on the primary only: the switchover must carry them over
        restorer = threading.Thread(target=restore_once_waiting)
        restorer.start()
        try:
            seen = switch_over(setup, SECONDARY_REGION)
        finally:
            restorer.join(90)
        ledger.wait_acknowledged(30, timeout=60)  # writes go on through the global writer endpoint
    assert waiting, "the switchover did not wait for the secondary to catch up"
    assert seen == ["pending", "switching-over"], seen
    acknowledged = set(ledger.acknowledged) - {3_000_000}
    new_writer = setup.cluster(SECONDARY_REGION)["Endpoint"]
    missing = acknowledged - ids(engine, new_writer)
    assert not missing, f"{len(missing)} acknowledged writes lost by the switchover: {sorted(missing)[:20]}"
    # Roles swapped: the old primary is a read-only secondary that receives the new primary's writes.
    assert not any(m["IsClusterWriter"] for m in setup.cluster(PRIMARY_REGION)["DBClusterMembers"])
    assert any(m["IsClusterWriter"] for m in setup.cluster(SECONDARY_REGION)["DBClusterMembers"])
    last = max(acknowledged)
    for address in setup.addresses(PRIMARY_REGION):
        wait_for(lambda: last in ids(engine, address), timeout=60, what=f"{address} to replicate")  # noqa: B023
        with pytest.raises((psycopg.Error, pymysql.MySQLError)):
            sql(engine, address, "INSERT INTO ledger (id) VALUES (-2)")
    events = setup.events(SECONDARY_REGION, since)
    target, region = setup.clusters[SECONDARY_REGION], SECONDARY_REGION
    assert f"Global switchover to DB cluster {target} in Region {region} started." in events
    assert f"New primary DB cluster {target} in Region {region} was successfully promoted." in events
    assert f"Global switchover to DB cluster {target} in Region {region} finished." in events
    assert "Aurora finished changing the DNS name that the global writer endpoint resolves to." in events
    old_events = setup.events(PRIMARY_REGION, since)
    assert (f"Old primary DB cluster {setup.clusters[PRIMARY_REGION]} in Region {PRIMARY_REGION} successfully "
            f"shut down.") in old_events

    # And back (FailoverGlobalCluster with Switchover: the same, RPO 0), so the next tests start
    # from the same roles.
    setup.wait_settled()
    with Ledger(engine, setup.endpoint(), acknowledged=[7_000_000]) as ledger:
        ledger.wait_acknowledged(10)
        switch_over(setup, PRIMARY_REGION, via_failover=True)
        ledger.wait_acknowledged(10, timeout=60)
    back = set(ledger.acknowledged) - {7_000_000}
    assert not back - ids(engine, setup.cluster(PRIMARY_REGION)["Endpoint"]), "a switchover back lost writes"
    setup.wait_settled()
    sql(engine, setup.endpoint(), "INSERT INTO ledger (id) VALUES (3999999)")
    wait_for(lambda: 3_999_999 in ids(engine, setup.addresses(SECONDARY_REGION)[1]), timeout=60,
             what="replication from the original primary again")


# --- the primary Region lost: failover with data loss, then the old primary's resync ----------------------
def test_failover_after_a_region_outage_loses_exactly_what_had_not_crossed(setup: GlobalSetup) -> None:
    engine = setup.engine
    head = setup.addresses(SECONDARY_REGION)[0]
    since = time.time() - 1
    with Ledger(engine, setup.endpoint(), acknowledged=[4_000_000]) as ledger:
        ledger.wait_acknowledged(20)
        # Replication stops first, writes go on: what is acknowledged from now on never crosses.
        setup.controls.cut_region_link(region_a=PRIMARY_REGION, region_b=SECONDARY_REGION)
        ledger.wait_acknowledged(30)
        setup.controls.region_down(region=PRIMARY_REGION)
        failures = ledger.failures
        wait_for(lambda: ledger.failures > failures + 3, timeout=30, what="writes to fail with the Region")
    setup.controls.restore_region_link(region_a=PRIMARY_REGION, region_b=SECONDARY_REGION)
    crossed = {i for i in ids(engine, head) if 4_000_000 < i < 4_999_999}

    answer = setup.rds[SECONDARY_REGION].failover_global_cluster(
        GlobalClusterIdentifier=setup.identifier, TargetDbClusterIdentifier=setup.arn(SECONDARY_REGION),
        AllowDataLoss=True)
    assert answer["GlobalCluster"]["FailoverState"]["IsDataLossAllowed"] is True
    wait_for(lambda: "FailoverState" not in setup.describe() and setup.writer_region() == SECONDARY_REGION,
             timeout=120, interval=0.1, what="the failover")
    new_writer = setup.cluster(SECONDARY_REGION)["Endpoint"]
    held = {i for i in ids(engine, new_writer) if 4_000_000 < i < 4_999_999}
    acknowledged = set(ledger.acknowledged) - {4_000_000}
    lost = acknowledged - held
    assert held == crossed, "the new primary holds other than what had crossed"
    assert lost == acknowledged - crossed and len(lost) >= 30, (len(lost), len(acknowledged))
    sql(engine, setup.endpoint(), "INSERT INTO ledger (id) VALUES (4999999)")  # the global writer endpoint moved
    members = {m["DBClusterArn"].split(":")[3]: m for m in setup.describe()["GlobalClusterMembers"]}
    assert members[PRIMARY_REGION]["SynchronizationStatus"] == "pending-resync"
    assert members[SECONDARY_REGION]["IsWriter"]

    # The old primary's Region returns: it is rebuilt from the new primary, its unreplicated writes gone.
    # An application still pointed at it (its cluster endpoint) must not get a write acknowledged.
    with Ledger(engine, setup.cluster(PRIMARY_REGION)["Endpoint"], acknowledged=[4_500_000]) as stale_writes:
        setup.controls.region_up(region=PRIMARY_REGION)
        setup.wait_settled()
        for address in setup.addresses(PRIMARY_REGION):
            wait_for(lambda: 4_999_999 in ids(engine, address), timeout=60, what=f"{address} to rejoin")  # noqa: B023
            assert not lost & ids(engine, address), "the old primary kept writes the failover lost"
    assert stale_writes.acknowledged == [4_500_000], "the old primary took writes after the failover"
    assert stale_writes.failures > 0, "nothing tried to write to the old primary"
    target, region = setup.clusters[SECONDARY_REGION], SECONDARY_REGION
    assert f"Global failover to DB cluster {target} in Region {region} completed." in setup.events(region, since)
    old, old_region = setup.clusters[PRIMARY_REGION], PRIMARY_REGION
    old_events = setup.events(old_region, since)
    assert f"Attempt to block writes for DB cluster {old} in Region {old_region} timed out." in old_events
    assert (f"Finished resynchronizing members of DB cluster {old} in Region {old_region} after global failover."
            in old_events)
    # AWS's snapshot of the old primary, taken before the resync, holds what the failover lost.
    east = setup.rds[PRIMARY_REGION]
    snapshots = [s for s in east.describe_db_cluster_snapshots(DBClusterIdentifier=old)["DBClusterSnapshots"]
                 if s["DBClusterSnapshotIdentifier"].startswith(f"rds:unplanned-global-failover-{old}-")]
    assert [s["Status"] for s in snapshots] == ["available"], snapshots
    rescued = f"rescue-{old}"
    east.restore_db_cluster_from_snapshot(DBClusterIdentifier=rescued, Engine=engine,
                                          SnapshotIdentifier=snapshots[0]["DBClusterSnapshotIdentifier"])
    wait_for(lambda: east.describe_db_clusters(DBClusterIdentifier=rescued)["DBClusters"][0]["Status"] == "available",
             timeout=120, interval=0.2, what="the restore of the failover snapshot")
    east.create_db_instance(DBInstanceIdentifier=f"{rescued}-1", DBClusterIdentifier=rescued, Engine=engine,
                            DBInstanceClass="db.r6g.large")
    wait_available(east, [f"{rescued}-1"])
    try:
        rescued_ids = ids(engine, east.describe_db_clusters(DBClusterIdentifier=rescued)["DBClusters"][0]["Endpoint"])
        assert lost <= rescued_ids, f"{len(lost - rescued_ids)} lost writes are not in the failover snapshot either"
    finally:
        delete_everything(east, rescued, [f"{rescued}-1"])

    switch_over(setup, PRIMARY_REGION)  # the original roles again, for the next tests
    setup.wait_settled()


# --- managed RPO (Aurora PostgreSQL) ----------------------------------------------------------------------
def test_managed_rpo_holds_commits_beyond_it_and_releases_them(setup: GlobalSetup) -> None:
    if setup.engine != "aurora-postgresql":
        pytest.skip("rds.global_db_rpo is an Aurora PostgreSQL parameter")
    east, engine = setup.rds[PRIMARY_REGION], setup.engine
    group = "global-rpo"
    east.create_db_cluster_parameter_group(DBClusterParameterGroupName=group, DBParameterGroupFamily="aurora-postgresql15",
                                           Description="managed RPO for the game day")
    with pytest.raises(east.exceptions.ClientError, match="InvalidParameterValue"):
        east.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
            {"ParameterName": "rds.global_db_rpo", "ParameterValue": "19", "ApplyMethod": "immediate"}])
    east.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
        {"ParameterName": "rds.global_db_rpo", "ParameterValue": "20", "ApplyMethod": "immediate"}])
    parameter = next(p for p in east.describe_db_cluster_parameters(DBClusterParameterGroupName=group)["Parameters"]
                     if p["ParameterName"] == "rds.global_db_rpo")
    assert (parameter["ParameterValue"], parameter["Source"], parameter["AllowedValues"]) == ("20", "user",
                                                                                              "20-2147483647")
    assert sql(engine, setup.endpoint(), "SHOW rds.global_db_rpo") == [("-1",)]
    east.modify_db_cluster(DBClusterIdentifier=setup.clusters[PRIMARY_REGION], DBClusterParameterGroupName=group)
    assert setup.cluster(PRIMARY_REGION)["DBClusterParameterGroup"] == group
    wait_for(lambda: sql(engine, setup.endpoint(), "SHOW rds.global_db_rpo") == [("20",)], timeout=10,
             what="the writer to show rds.global_db_rpo = 20")
    try:
        with Ledger(engine, setup.endpoint(), acknowledged=[5_000_000]) as ledger:
            ledger.wait_acknowledged(10)
            setup.controls.cut_region_link(region_a=PRIMARY_REGION, region_b=SECONDARY_REGION)
            cut = time.monotonic()
            try:
                def stalled() -> bool:
                    count = len(ledger.acknowledged)
                    time.sleep(2.0)
                    return len(ledger.acknowledged) == count
                wait_for(stalled, timeout=60, interval=0, what="commits to be held")
                held_after = time.monotonic() - 2.0 - cut
                assert 18.0 <= held_after <= 30.0, f"commits were held {held_after:.1f} s after the cut"
            finally:
                setup.controls.restore_region_link(region_a=PRIMARY_REGION, region_b=SECONDARY_REGION)
            ledger.wait_acknowledged(10, timeout=60)  # released once the secondary is back within the RPO
    finally:
        east.modify_db_cluster(DBClusterIdentifier=setup.clusters[PRIMARY_REGION],
                               DBClusterParameterGroupName="default.aurora-postgresql15")
        east.delete_db_cluster_parameter_group(DBClusterParameterGroupName=group)


# --- a headless secondary gets an instance --------------------------------------------------------------
def test_a_headless_secondary_gets_its_first_instance(setup: GlobalSetup) -> None:
    engine, eu = setup.engine, setup.rds[HEADLESS_REGION]
    cluster = setup.clusters[HEADLESS_REGION]
    name = f"{cluster}-1"
    eu.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier=cluster, Engine=engine,
                          DBInstanceClass="db.r6g.large")
    setup.instances[HEADLESS_REGION].append(name)
    setup.wait_settled()
    address = setup.address(HEADLESS_REGION, name)
    sql(engine, setup.endpoint(), "INSERT INTO ledger (id) VALUES (8000001)")
    wait_for(lambda: 8_000_001 in ids(engine, address), timeout=60, what="the new secondary instance to replicate")
    regions = {row[0]: row[2] for row in sql(engine, address, INSTANCE_STATUS[engine])}
    assert regions[name] == HEADLESS_REGION
    assert not any(m["IsClusterWriter"] for m in setup.cluster(HEADLESS_REGION)["DBClusterMembers"])


# --- detach and promote -------------------------------------------------------------------------------------
def test_detach_and_promote_makes_a_standalone_writable_cluster(setup: GlobalSetup) -> None:
    engine, west = setup.engine, setup.rds[SECONDARY_REGION]
    setup.wait_settled()
    answer = west.remove_from_global_cluster(GlobalClusterIdentifier=setup.identifier,
                                             DbClusterIdentifier=setup.arn(SECONDARY_REGION))
    assert setup.arn(SECONDARY_REGION) not in [m["DBClusterArn"] for m in answer["GlobalCluster"]["GlobalClusterMembers"]]
    detached = setup.cluster(SECONDARY_REGION)
    assert detached.get("GlobalClusterIdentifier") is None
    assert any(m["IsClusterWriter"] for m in detached["DBClusterMembers"])
    wait_for(lambda: not _fails(lambda: sql(engine, detached["Endpoint"], "INSERT INTO ledger (id) VALUES (9000001)")),
             timeout=60, what="the detached cluster to take writes")
    sql(engine, setup.endpoint(), "INSERT INTO ledger (id) VALUES (9000002)")
    time.sleep(1.0)  # well beyond the link's latency: the primary's writes no longer arrive
    assert 9000002 not in ids(engine, detached["Endpoint"])


def _fails(call: Any) -> bool:
    try:
        call()
    except (psycopg.Error, pymysql.MySQLError):
        return True
    return False
