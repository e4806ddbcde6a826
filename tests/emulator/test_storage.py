"""The cluster volume's quorum, AZ loss and slow replication links, observed through real commits."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import psycopg

from tests.emulator.support import Cluster, WriteLoop, wait_for

AZ_A, AZ_B = "us-east-1a", "us-east-1b"


def commit_in_background(cluster: Cluster, row: int) -> threading.Thread:
    """An INSERT on its own connection; the thread ends when COMMIT returns."""
    def run() -> None:
        with cluster.connect() as conn:
            conn.execute("INSERT INTO quorum_test VALUES (%s)", (row,))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_quorum_of_four_out_of_six_storage_nodes(emulator: Any, cluster_factory: Any) -> None:
    cluster = cluster_factory([1, 0])
    controls = emulator.controls
    with cluster.connect() as conn:
        conn.execute("CREATE TABLE quorum_test (id int)")
    for node in ("sn_a1", "sn_a2"):
        controls.stop_storage_node(cluster=cluster.identifier, node=node)
    first = commit_in_background(cluster, 1)
    first.join(10)
    assert not first.is_alive(), "with two storage nodes down, commits go on"

    controls.stop_storage_node(cluster=cluster.identifier, node="sn_b1")
    assert list(controls.storage_status(cluster=cluster.identifier).values()).count("stopped") == 3
    stalled = commit_in_background(cluster, 2)
    stalled.join(2.0)
    assert stalled.is_alive(), "with three storage nodes down, a commit cannot be acknowledged"
    with cluster.connect() as conn:
        assert conn.execute("SELECT count(*) FROM quorum_test WHERE id = 1").fetchone()[0] == 1, \
            "reads go on on the writer"
    with cluster.connect(cluster.reader_endpoint) as conn:
        assert conn.execute("SELECT count(*) FROM quorum_test").fetchone()[0] >= 1, "reads go on on the readers"

    controls.start_storage_node(cluster=cluster.identifier, node="sn_b1")
    stalled.join(15)
    assert not stalled.is_alive(), "bringing one node back completes the stalled commit"
    with cluster.connect() as conn:
        assert sorted(r[0] for r in conn.execute("SELECT id FROM quorum_test")) == [1, 2]
    for node in ("sn_a1", "sn_a2"):
        controls.start_storage_node(cluster=cluster.identifier, node=node)
    wait_for(lambda: set(controls.storage_status(cluster=cluster.identifier).values()) == {"running"},
             what="all storage nodes running")


def test_losing_the_writers_az_fails_over_and_keeps_every_acknowledged_write(
        emulator: Any, cluster_factory: Any) -> None:
    cluster = cluster_factory([1, 0, 2], zones=[AZ_A, AZ_B, "us-east-1c"])
    old_writer = cluster.writer()
    with WriteLoop(cluster) as load:
        wait_for(lambda: len(load.acknowledged) > 200, what="writes")
        emulator.controls.az_down(az=AZ_A)
        wait_for(lambda: cluster.writer() != old_writer, timeout=60, what="a failover out of the lost AZ")
        before = len(load.acknowledged)
        wait_for(lambda: len(load.acknowledged) > before + 100, timeout=30,
                 what="writes to go on with four storage nodes")
    assert cluster.instance(old_writer)["DBInstanceStatus"] == "inaccessible"
    assert sorted(emulator.controls.storage_status(cluster=cluster.identifier).values()).count("stopped") == 2
    with cluster.connect() as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM ledger")}
    assert not set(load.acknowledged) - stored

    emulator.controls.az_up(az=AZ_A)
    cluster.wait_settled()
    assert old_writer in cluster.readers()
    wait_for(lambda: set(emulator.controls.storage_status(cluster=cluster.identifier).values()) == {"running"},
             what="the AZ's storage nodes back")


def visibility_lag(cluster: Cluster, writer: psycopg.Connection, reader: psycopg.Connection, row: int) -> float:
    """Seconds from COMMIT acknowledged on the writer until the row is visible on the reader."""
    writer.execute("INSERT INTO lag_test VALUES (%s)", (row,))
    committed = time.monotonic()
    while not reader.execute("SELECT 1 FROM lag_test WHERE id = %s", (row,)).fetchone():
        time.sleep(0.002)
    return time.monotonic() - committed


def test_a_latency_toxic_on_a_readers_link_shows_as_replica_lag(emulator: Any, cluster_factory: Any) -> None:
    cluster = cluster_factory([1, 0])
    reader = cluster.readers()[0]
    with cluster.connect() as writer, cluster.connect(cluster.instance_address(reader)) as replica:
        writer.execute("CREATE TABLE lag_test (id int)")
        wait_for(lambda: replica.execute("SELECT to_regclass('lag_test')").fetchone()[0], what="the table")
        baseline = max(visibility_lag(cluster, writer, replica, i) for i in range(5))
        emulator.controls.add_toxic(cluster=cluster.identifier, link=f"reader:{reader}",
                                    toxic={"type": "latency", "name": "slow", "stream": "downstream",
                                           "attributes": {"latency_ms": 200, "jitter_ms": 0}})
        slowed = [visibility_lag(cluster, writer, replica, 10 + i) for i in range(5)]
        emulator.controls.remove_toxic(cluster=cluster.identifier, link=f"reader:{reader}", name="slow")
        rows = itertools.count(100)
        wait_for(lambda: visibility_lag(cluster, writer, replica, next(rows)) < 0.1, what="the lag to recover")
    assert baseline < 0.1
    # The WAL leaves the writer before COMMIT is acknowledged (that waits for the storage quorum),
    # so the lag seen from the acknowledgement is the toxic's 200 ms less a few milliseconds.
    assert min(slowed) >= 0.18, slowed
    assert sum(slowed) / len(slowed) >= 0.19, slowed
    assert max(slowed) < 2.0, slowed


def test_unlag_reader_undoes_lag_reader(emulator: Any, cluster_factory: Any) -> None:
    cluster = cluster_factory([1, 0])
    reader = cluster.readers()[0]
    controls = emulator.controls
    with cluster.connect() as writer, cluster.connect(cluster.instance_address(reader)) as replica:
        writer.execute("CREATE TABLE lag_test (id int)")
        wait_for(lambda: replica.execute("SELECT to_regclass('lag_test')").fetchone()[0], what="the table")
        controls.lag_reader(cluster=cluster.identifier, reader=reader, milliseconds=300)
        lagged = min(visibility_lag(cluster, writer, replica, i) for i in range(3))
        assert controls.unlag_reader(cluster=cluster.identifier, reader=reader) is True
        rows = itertools.count(100)
        wait_for(lambda: visibility_lag(cluster, writer, replica, next(rows)) < 0.1, what="the lag to go")
        assert controls.unlag_reader(cluster=cluster.identifier, reader=reader) is False, "nothing left to undo"
    assert lagged >= 0.25, lagged
