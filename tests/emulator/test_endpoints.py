"""Client endpoints as applications meet them: writer, reader, instance endpoints and stale DNS."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import psycopg
import pytest

from tests.emulator.support import Cluster, create_cluster, delete_cluster, wait_for


def instance_name(conn: psycopg.Connection) -> str:
    """Which DB instance a session landed on (the emulator names each engine after its instance)."""
    return conn.execute("SELECT current_setting('cluster_name')").fetchone()[0]


@pytest.fixture(scope="module")
def cluster(rds: Any) -> Any:
    made = create_cluster(rds, [1, 0, 2], prefix="ep")
    yield made
    made.wait_settled()
    delete_cluster(made)


def test_writes_succeed_through_the_cluster_endpoint(cluster: Cluster) -> None:
    with cluster.connect() as conn:
        assert instance_name(conn) == cluster.writer()
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
        conn.execute("CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO notes VALUES (1, 'hello') ON CONFLICT DO NOTHING")
        assert conn.execute("SELECT body FROM notes WHERE id = 1").fetchone()[0] == "hello"


def test_writes_through_the_reader_endpoint_fail_with_sqlstate_25006(cluster: Cluster) -> None:
    with cluster.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY, body text)")
    with cluster.connect(cluster.reader_endpoint) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as err:
            conn.execute("INSERT INTO notes VALUES (2, 'nope')")
    assert err.value.sqlstate == "25006"


def test_new_reader_endpoint_connections_land_on_both_readers(cluster: Cluster) -> None:
    landed = Counter()
    for _ in range(10):
        with cluster.connect(cluster.reader_endpoint) as conn:
            landed[instance_name(conn)] += 1
    assert set(landed) == set(cluster.readers())
    assert min(landed.values()) >= 3, landed


def test_instance_endpoints_reach_their_own_instance(cluster: Cluster) -> None:
    for name in cluster.instances:
        with cluster.connect(cluster.instance_address(name)) as conn:
            assert instance_name(conn) == name


def test_the_master_user_needs_its_password(cluster: Cluster) -> None:
    with pytest.raises(psycopg.OperationalError) as err:
        cluster.connect(password="not-the-password")
    assert "password authentication failed" in str(err.value)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=cluster.endpoint, port=5432, user="master", dbname="app", connect_timeout=3,
                        password="")


def test_reader_endpoint_falls_back_to_the_writer_without_readers(rds: Any) -> None:
    solo = create_cluster(rds, [1], prefix="solo")
    try:
        with solo.connect(solo.reader_endpoint) as conn:
            assert instance_name(conn) == solo.instances[0]
    finally:
        delete_cluster(solo)


def completed_at(rds: Any, cluster: Cluster, since: float) -> float:
    """Wall time of the failover-completed event (the moment the emulator moved the endpoint)."""
    def find() -> float | None:
        for event in rds.describe_events(SourceType="db-cluster", SourceIdentifier=cluster.identifier,
                                         Duration=10)["Events"]:
            at = event["Date"].timestamp()
            if event["Message"].startswith("Completed failover") and at >= since:
                return at
        return None

    return wait_for(find, what="the failover-completed event")


def probe(cluster: Cluster) -> tuple[float, str]:
    """One new connection through the cluster endpoint: what did the application reach?"""
    try:
        with cluster.connect(connect_timeout=1) as conn:
            read_only = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            return time.time(), "reader" if read_only else f"writer:{instance_name(conn)}"
    except psycopg.Error:
        return time.time(), "error"


def test_cluster_endpoint_keeps_the_old_writer_address_for_the_dns_ttl(emulator: Any, rds: Any,
                                                                       cluster: Cluster) -> None:
    ttl = 2.0
    emulator.controls.set_dns_ttl(cluster=cluster.identifier, seconds=ttl)
    try:
        old_writer = cluster.writer()
        started = time.time()
        rds.failover_db_cluster(DBClusterIdentifier=cluster.identifier)
        flipped = completed_at(rds, cluster, started - 1)
        new_writer = cluster.writer()
        assert new_writer != old_writer
        samples = []
        while time.time() < flipped + ttl + 1.5:
            samples.append(probe(cluster))
            time.sleep(0.05)
    finally:
        emulator.controls.set_dns_ttl(cluster=cluster.identifier, seconds=0)
    stale = [outcome for at, outcome in samples if at < flipped + ttl - 0.3]
    fresh = [outcome for at, outcome in samples if at > flipped + ttl + 0.3]
    assert stale and fresh
    assert f"writer:{new_writer}" not in stale, "within the TTL new connections still reach the old address"
    assert set(fresh) == {f"writer:{new_writer}"}, "after the TTL every connection reaches the new writer"
    cluster.wait_settled()


def test_with_a_zero_ttl_the_cluster_endpoint_moves_at_once(rds: Any, cluster: Cluster) -> None:
    started = time.time()
    rds.failover_db_cluster(DBClusterIdentifier=cluster.identifier)
    flipped = completed_at(rds, cluster, started - 1)
    new_writer = cluster.writer()
    at, outcome = probe(cluster)
    assert outcome == f"writer:{new_writer}", (outcome, at - flipped)
    cluster.wait_settled()


def test_a_failover_drops_the_old_writers_sessions(rds: Any, cluster: Cluster) -> None:
    cluster.wait_settled()
    conn = cluster.connect()
    assert instance_name(conn) == cluster.writer()
    rds.failover_db_cluster(DBClusterIdentifier=cluster.identifier)
    deadline = time.monotonic() + 20
    with pytest.raises(psycopg.OperationalError):
        while time.monotonic() < deadline:  # the session works until the failover cuts it
            conn.execute("SELECT 1")
            time.sleep(0.02)
    conn.close()
    cluster.wait_settled()
