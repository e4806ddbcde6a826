"""Aurora MySQL's fault-injection statements and SQL surface, through the emulator's endpoints.

Every statement goes through a real endpoint (cluster, reader, custom, instance) as PyMySQL
sends it, and every effect is checked on the real MariaDB processes behind it: a crash changes
(or keeps) the engine's process, a replica failure really lags a reader, disk faults really
hold or slow the writer's commits. Tests wait on state (a process, a row, a role); the only
timing assertions are the effects themselves (a commit held for an interval, a latency band).

The module runs its own emulator on 127.64.x.y (or 63, 65 when that is taken), apart from the
session's: other suites may run at the same time on this machine.
"""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest
from test_mysql import connect, create_mysql_cluster, scalar

from harness.emulator.emulator import Emulator
from tests.emulator.support import (
    PASSWORD,
    USER,
    Cluster,
    delete_cluster,
    running_emulator,
    wait_for,
)

NETS = (64, 61, 62)  # 127.<net>.x.y for this module's own emulator


def free_net() -> int:
    """The first of NETS whose first cluster endpoint (127.<net>.1.1:3306) nobody holds."""
    for net in NETS:
        with socket.socket() as probe:
            try:
                probe.bind((f"127.{net}.1.1", 3306))
            except OSError:
                continue
            return net
    pytest.skip(f"127.{{{','.join(map(str, NETS))}}}.1.1:3306 are all taken by other emulators")

TOPOLOGY_QUERY = ("SELECT SERVER_ID, CASE WHEN SESSION_ID = 'MASTER_SESSION_ID' THEN TRUE ELSE FALSE END, "
                  "CPU, REPLICA_LAG_IN_MILLISECONDS, LAST_UPDATE_TIMESTAMP "
                  "FROM information_schema.replica_host_status "
                  "WHERE time_to_sec(timediff(now(), LAST_UPDATE_TIMESTAMP)) <= 300 "
                  "OR SESSION_ID = 'MASTER_SESSION_ID' ")  # the AWS Advanced Python Wrapper's, verbatim


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """An emulator of this module's own, so crashes and stalled links here disturb no other test."""
    with running_emulator(free_net(), "fi-mysql") as emu:
        yield emu


@pytest.fixture(scope="module")
def rds(emulator: Emulator) -> Any:
    return emulator.client()


@pytest.fixture(scope="module")
def cluster(rds: Any) -> Iterator[Cluster]:
    made = create_mysql_cluster(rds, "myfi", [1, 0, 2])
    with connect(made.endpoint) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS probe (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40))")
    yield made
    made.wait_settled()
    delete_cluster(made)


@pytest.fixture
def settled(emulator: Any, cluster: Cluster) -> Iterator[Cluster]:
    """The cluster with no operation in flight and no timed fault left over, before and after."""
    cluster.wait_settled()
    yield cluster
    emulator.controls.clear_faults(cluster=cluster.identifier)
    cluster.wait_settled()


def engine_pid(emulator: Any, cluster: Cluster, instance: str) -> int | None:
    """The process behind an instance right now (None while it is down)."""
    runtime = emulator.store.runtime("us-east-1", cluster.identifier)
    child = runtime.engine.instances[instance].child
    return child.pid if child is not None and child.alive() else None


def run(conn: pymysql.Connection, sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


def timed(conn: pymysql.Connection, sql: str) -> float:
    started = time.monotonic()
    run(conn, sql)
    return time.monotonic() - started


def until_connected(host: str, check: Callable[[pymysql.Connection], Any], timeout: float = 30) -> Any:
    """Reconnect until a fresh session answers `check` truthily (sessions may die during a crash)."""
    def attempt() -> Any:
        try:
            with connect(host, connect_timeout=2, read_timeout=5) as conn:
                return check(conn)
        except pymysql.MySQLError:
            return None
    return wait_for(attempt, timeout, interval=0.05, what=f"a working session on {host}")


def fault_error(conn: pymysql.Connection, sql: str) -> tuple[int, str]:
    with pytest.raises(pymysql.MySQLError) as err:
        run(conn, sql)
    return err.value.args[0], err.value.args[1]


def insert(conn: pymysql.Connection, tag: str) -> float:
    return timed(conn, f"INSERT INTO probe (tag) VALUES ('{tag}')")


def visible(host: str, tag: str) -> int:
    with connect(host) as conn:
        return scalar(conn, f"SELECT count(*) FROM probe WHERE tag = '{tag}'")


def lag_of(conn: pymysql.Connection, reader: str) -> float:
    rows = run(conn, f"SELECT REPLICA_LAG_IN_MILLISECONDS FROM information_schema.replica_host_status "
                     f"WHERE SERVER_ID = '{reader}'")
    return float(rows[0][0])


# --- the SQL surface ------------------------------------------------------------------------------------------------
def test_show_volume_status_and_aurora_version_answer_on_every_kind_of_endpoint(rds: Any, settled: Cluster) -> None:
    cluster = settled
    custom = rds.create_db_cluster_endpoint(DBClusterIdentifier=cluster.identifier, DBClusterEndpointIdentifier="myfi-any",
                                            EndpointType="ANY", StaticMembers=cluster.instances)["Endpoint"]
    try:
        hosts = [cluster.endpoint, cluster.reader_endpoint, custom] + [cluster.instance_address(i)
                                                                      for i in cluster.instances]
        for host in hosts:
            with connect(host) as conn:
                assert run(conn, "SHOW VOLUME STATUS") == [("Disks", "6"), ("Nodes", "6")], host
                assert run(conn, "show volume status ;") == [("Disks", "6"), ("Nodes", "6")], host
                assert run(conn, "SHOW VARIABLES LIKE 'aurora_version'") == [("aurora_version", "3.05.2")], host
                role = "OFF" if scalar(conn, "SELECT @@aurora_server_id") == cluster.writer() else "ON"
                assert run(conn, "SHOW GLOBAL VARIABLES LIKE 'innodb_read_only'") == [("innodb_read_only", role)]
                # A simulated failure of 0 % is accepted (and harmless) through any endpoint.
                run(conn, "ALTER SYSTEM SIMULATE 0 PERCENT DISK FAILURE FOR INTERVAL 1 SECOND")
                assert scalar(conn, "SELECT 1") == 1
    finally:
        rds.delete_db_cluster_endpoint(DBClusterEndpointIdentifier="myfi-any")


def test_aurora_variables_come_back_under_their_own_column_names(settled: Cluster) -> None:
    """PyMySQL's DictCursor (and every ORM that reads rows by column name) sees what MySQL names them."""
    import pymysql.cursors

    with connect(settled.endpoint) as conn:
        with conn.cursor(pymysql.cursors.DictCursor) as cursor:
            cursor.execute("SELECT @@aurora_server_id, @@aurora_version")
            assert cursor.fetchall() == [{"@@aurora_server_id": settled.writer(), "@@aurora_version": "3.05.2"}]


def test_each_instance_has_a_host_id_of_its_own(settled: Cluster) -> None:
    """The AWS Advanced Python Wrapper tells hosts apart by CONCAT(@@hostname, ':', @@port): one
    machine's engines must not all answer with the machine's name."""
    query = "SELECT @@hostname AS host, CONCAT(@@hostname, ':', @@port) AS host_id"
    ids = {}
    for instance in settled.instances:
        with connect(settled.instance_address(instance)) as conn:
            host, host_id = run(conn, query)[0]
            assert host.startswith("ip-") and host_id.startswith(host + ":"), (instance, host, host_id)
            ids[instance] = host_id
    assert len(set(ids.values())) == len(settled.instances), ids
    with connect(settled.endpoint) as conn:
        assert run(conn, query)[0][1] == ids[settled.writer()], "the cluster endpoint reaches the writer's host"


def test_replica_host_status_answers_the_wrappers_topology_query_and_follows_a_failover(
        rds: Any, settled: Cluster) -> None:
    cluster = settled
    before = cluster.writer()
    with connect(cluster.reader_endpoint) as conn:
        rows = run(conn, TOPOLOGY_QUERY)
        assert sorted(r[0] for r in rows) == sorted(cluster.instances)
        assert [r[0] for r in rows if r[1]] == [before], "one writer row: MASTER_SESSION_ID"
        assert run(conn, "SELECT SERVER_ID FROM information_schema.replica_host_status "
                         "WHERE SESSION_ID = 'MASTER_SESSION_ID' AND SERVER_ID = @@aurora_server_id") == []
        sessions = run(conn, "SELECT SESSION_ID, IS_CURRENT FROM information_schema.replica_host_status r "
                             "WHERE r.SESSION_ID <> 'MASTER_SESSION_ID'")
        assert len({s for s, _ in sessions}) == 2 and all(current == 1 for _, current in sessions)
    target = next(r for r in cluster.readers())
    rds.failover_db_cluster(DBClusterIdentifier=cluster.identifier, TargetDBInstanceIdentifier=target)
    wait_for(lambda: cluster.writer() == target, timeout=60, what=f"{target} to become the writer")
    cluster.wait_settled()

    def topology(conn: pymysql.Connection) -> list[tuple[Any, ...]]:
        return run(conn, TOPOLOGY_QUERY)

    rows = until_connected(cluster.endpoint, topology)
    assert [r[0] for r in rows if r[1]] == [target]
    assert sorted(r[0] for r in rows) == sorted(cluster.instances)
    with connect(cluster.endpoint) as conn:
        assert run(conn, "SELECT SERVER_ID FROM information_schema.replica_host_status "
                         "WHERE SESSION_ID = 'MASTER_SESSION_ID' AND SERVER_ID = @@aurora_server_id") == [(target,)]
    with connect(cluster.instance_address(before)) as conn:
        assert [r[0] for r in run(conn, TOPOLOGY_QUERY) if r[1]] == [target], "the old writer sees the new one"


# --- errors ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sql,code,words", [
    ("ALTER SYSTEM CRASH NOW", 1064, "right syntax to use near 'NOW' at line 1"),
    ("ALTER SYSTEM SIMULATE 50 PERCENT DISK FAILURE FOR INTERVAL 1 FORTNIGHT", 1064, "near 'FORTNIGHT'"),
    ("ALTER SYSTEM SIMULATE 101 PERCENT DISK FAILURE FOR INTERVAL 1 SECOND", 1210, "between 0 and 100"),
    ("ALTER SYSTEM SIMULATE 50 PERCENT DISK CONGESTION BETWEEN 20 AND 10 MILLISECONDS FOR INTERVAL 1 SECOND", 1210,
     "below the minimum"),
    ("ALTER SYSTEM SIMULATE 50 PERCENT DISK FAILURE IN DISK 6 FOR INTERVAL 1 SECOND", 1210, "maximum index is 5"),
    ("ALTER SYSTEM SIMULATE 50 PERCENT DISK CONGESTION BETWEEN 1 AND 2 MILLISECONDS IN NODE 9 FOR INTERVAL 1 SECOND",
     1210, "maximum index is 5"),
    ('ALTER SYSTEM SIMULATE 50 PERCENT READ REPLICA FAILURE TO "no-such-replica" FOR INTERVAL 1 SECOND', 1210,
     'replica "no-such-replica" not found'),
])
def test_errors_come_back_in_mysql_words_and_the_session_goes_on(settled: Cluster, sql: str, code: int,
                                                                  words: str) -> None:
    with connect(settled.endpoint) as conn:
        got, message = fault_error(conn, sql)
        assert got == code and words in message, message
        assert scalar(conn, "SELECT @@aurora_server_id") == settled.writer()


def test_only_the_master_user_may_inject_faults(emulator: Any, settled: Cluster) -> None:
    cluster = settled
    with connect(cluster.endpoint) as conn:
        run(conn, "CREATE USER IF NOT EXISTS 'app_user'@'%' IDENTIFIED BY 'app-user-pw-1'")
        run(conn, "GRANT ALL PRIVILEGES ON app.* TO 'app_user'@'%'")
    writer = cluster.writer()
    pid = engine_pid(emulator, cluster, writer)
    with connect(cluster.endpoint, user="app_user", password="app-user-pw-1") as conn:
        code, message = fault_error(conn, "ALTER SYSTEM CRASH INSTANCE")
        assert code == 1227 and "master user" in message
        code, _ = fault_error(conn, "ALTER SYSTEM SIMULATE 100 PERCENT DISK FAILURE FOR INTERVAL 1 MINUTE")
        assert code == 1227
        assert run(conn, "SHOW VOLUME STATUS") == [("Disks", "6"), ("Nodes", "6")], "anyone may look"
        assert scalar(conn, "SELECT 1") == 1
    assert engine_pid(emulator, cluster, writer) == pid
    assert emulator.controls.active_faults(cluster=cluster.identifier) == []


# --- crashes --------------------------------------------------------------------------------------------------------
def test_crash_instance_restarts_the_writers_engine_in_place_without_failover(emulator: Any, settled: Cluster) -> None:
    cluster = settled
    writer = cluster.writer()
    pid = engine_pid(emulator, cluster, writer)
    with connect(cluster.endpoint) as conn:
        code, _ = fault_error(conn, "ALTER SYSTEM CRASH;")
    assert code == 2013, "the session is lost: the server died under the query"
    wait_for(lambda: engine_pid(emulator, cluster, writer) not in (None, pid), timeout=30, what="a new engine process")
    role = until_connected(cluster.endpoint, lambda c: run(c, "SELECT @@aurora_server_id, @@innodb_read_only")[0])
    assert role == (writer, 0), "the same writer: a crash fails nothing over"
    cluster.wait_settled()
    assert cluster.writer() == writer


def test_crash_dispatcher_drops_the_sessions_but_keeps_the_engine(emulator: Any, settled: Cluster) -> None:
    cluster = settled
    reader = cluster.readers()[0]
    host = cluster.instance_address(reader)
    pid = engine_pid(emulator, cluster, reader)
    with connect(host) as bystander, connect(host) as conn:
        code, _ = fault_error(conn, "alter system crash dispatcher")
        assert code == 2013
        with pytest.raises(pymysql.MySQLError):
            run(bystander, "SELECT 1")  # every session to the instance went with it
    role = until_connected(host, lambda c: run(c, "SELECT @@aurora_server_id, @@innodb_read_only")[0])
    assert role == (reader, 1)
    assert engine_pid(emulator, cluster, reader) == pid, "the engine kept running"


def test_crash_node_on_a_reader_restarts_it_cold_as_a_reader(emulator: Any, settled: Cluster) -> None:
    cluster = settled
    with connect(cluster.reader_endpoint) as conn:
        reader = scalar(conn, "SELECT @@aurora_server_id")
        pid = engine_pid(emulator, cluster, reader)
        code, _ = fault_error(conn, "ALTER SYSTEM CRASH NODE")
    assert code == 2013
    wait_for(lambda: engine_pid(emulator, cluster, reader) not in (None, pid), timeout=30, what="a new engine process")
    host = cluster.instance_address(reader)
    assert until_connected(host, lambda c: run(c, "SELECT @@innodb_read_only")[0][0]) == 1
    with connect(cluster.endpoint) as writer:
        insert(writer, "after-node-crash")
    wait_for(lambda: visible(host, "after-node-crash"), timeout=20, what="the reader to replicate again")


# --- replica failure ------------------------------------------------------------------------------------------------
def test_read_replica_failure_lags_one_reader_then_it_catches_up(settled: Cluster) -> None:
    cluster = settled
    failed, healthy = cluster.readers()
    with connect(cluster.endpoint) as writer:
        run(writer, f'ALTER SYSTEM SIMULATE 100 PERCENT READ REPLICA FAILURE TO "{failed}" FOR INTERVAL 3 SECOND')
        started = time.monotonic()
        assert insert(writer, "rf-one") < 1.0, "the writer does not wait for a failed replica"
        wait_for(lambda: visible(cluster.instance_address(healthy), "rf-one"), timeout=5, what="the healthy reader")
        assert visible(cluster.instance_address(failed), "rf-one") == 0
        wait_for(lambda: lag_of(writer, failed) > 500, timeout=5, interval=0.1, what="the failed reader's lag to grow")
        assert lag_of(writer, healthy) < 500
        wait_for(lambda: visible(cluster.instance_address(failed), "rf-one"), timeout=15, interval=0.05,
                 what="the failed reader to catch up")
        assert time.monotonic() - started > 2.0, "not before the interval ends"
        wait_for(lambda: lag_of(writer, failed) < 500, timeout=5, interval=0.1, what="its lag to fall back")


def test_read_replica_failure_to_all_keeps_the_writer_committing(settled: Cluster) -> None:
    cluster = settled
    with connect(cluster.endpoint) as writer:
        run(writer, "ALTER SYSTEM SIMULATE 100 PERCENT READ REPLICA FAILURE TO ALL FOR INTERVAL 2 SECOND")
        started = time.monotonic()
        latencies = [insert(writer, "rf-all") for _ in range(5)]
        assert max(latencies) < 1.0, latencies
        assert all(visible(cluster.instance_address(r), "rf-all") == 0 for r in cluster.readers())
        for reader in cluster.readers():
            host = cluster.instance_address(reader)
            wait_for(lambda host=host: visible(host, "rf-all") == 5, timeout=15, interval=0.05,
                     what=f"{reader} to catch up")
        assert time.monotonic() - started > 1.5



def test_a_failover_during_a_replica_failure_to_all_loses_no_acknowledged_commit(rds: Any, settled: Cluster) -> None:
    """The commits no reader received are in Aurora's cluster volume: the new writer has them."""
    cluster = settled
    with connect(cluster.endpoint) as writer:
        run(writer, "ALTER SYSTEM SIMULATE 100 PERCENT READ REPLICA FAILURE TO ALL FOR INTERVAL 60 SECOND")
        for _ in range(20):
            insert(writer, "rf-all-failover")
        assert all(visible(cluster.instance_address(r), "rf-all-failover") == 0 for r in cluster.readers())
    target = cluster.readers()[0]
    rds.failover_db_cluster(DBClusterIdentifier=cluster.identifier, TargetDBInstanceIdentifier=target)
    wait_for(lambda: cluster.writer() == target, timeout=60, what=f"{target} to become the writer")
    cluster.wait_settled()
    assert until_connected(cluster.endpoint, lambda conn: scalar(
        conn, "SELECT count(*) FROM probe WHERE tag = 'rf-all-failover'") + 1) - 1 == 20
    for reader in cluster.readers():
        host = cluster.instance_address(reader)
        wait_for(lambda host=host: visible(host, "rf-all-failover") == 20, timeout=30, interval=0.1,
                 what=f"{reader} to hold the caught-up commits")

# --- the cluster volume ---------------------------------------------------------------------------------------------
def test_disk_failure_of_one_node_keeps_writes_going_three_stall_them_until_the_interval_ends(settled: Cluster) -> None:
    cluster = settled
    with connect(cluster.endpoint) as writer, connect(cluster.endpoint) as reader_session:
        run(writer, "ALTER SYSTEM SIMULATE 100 PERCENT DISK FAILURE IN NODE 0 FOR INTERVAL 1 MINUTE")
        assert insert(writer, "one-node") < 1.0, "5 of 6 storage nodes: the quorum holds"
        run(writer, "ALTER SYSTEM SIMULATE 100 PERCENT DISK FAILURE IN NODE 1 FOR INTERVAL 2 SECOND")
        run(writer, "alter system simulate 100 percent disk failure node 2 for interval 2 second;")
        started = time.monotonic()
        assert timed(reader_session, "SELECT count(*) FROM probe") < 1.0, "reads go on"
        held = insert(writer, "three-nodes")
        assert 1.5 < held < 10, f"the commit waited for the quorum to come back ({held:.2f} s)"
        assert time.monotonic() - started >= 1.5
        assert scalar(reader_session, "SELECT count(*) FROM probe WHERE tag = 'three-nodes'") == 1


def test_whole_volume_disk_failure_holds_commits_not_transactions_or_reads(settled: Cluster) -> None:
    cluster = settled
    with connect(cluster.endpoint) as writer, connect(cluster.endpoint) as other:
        run(writer, "ALTER SYSTEM SIMULATE 100 PERCENT DISK FAILURE FOR INTERVAL 2 SECOND")
        assert timed(other, "SELECT count(*) FROM probe") < 1.0
        run(writer, "BEGIN")
        assert insert(writer, "in-txn") < 1.0, "inside a transaction nothing is durable yet"
        held = timed(writer, "COMMIT")
        assert 1.0 < held < 10, f"COMMIT waited for the volume ({held:.2f} s)"
        assert insert(writer, "after") < 1.0


def test_disk_congestion_puts_commit_latency_in_the_band(emulator: Any, settled: Cluster) -> None:
    cluster = settled
    with connect(cluster.endpoint) as writer:
        baseline = statistics.median(insert(writer, "base") for _ in range(5))
        run(writer, "ALTER SYSTEM SIMULATE 100 PERCENT DISK CONGESTION BETWEEN 40 AND 80 MILLISECONDS "
                    "FOR INTERVAL 30 SECOND")
        latencies = [insert(writer, "congested") for _ in range(12)]
        assert min(latencies) >= 0.040, latencies
        assert statistics.median(latencies) <= 0.080 + baseline + 0.05, latencies
        run(writer, "ALTER SYSTEM SIMULATE 100 PERCENT DISK CONGESTION BETWEEN 40 AND 80 MILLISECONDS IN NODE 0 "
                    "FOR INTERVAL 30 SECOND")
        assert len(emulator.controls.active_faults(cluster=cluster.identifier)) == 7
        emulator.controls.clear_faults(cluster=cluster.identifier)
        assert statistics.median(insert(writer, "clear") for _ in range(5)) < 0.040, "back to normal when it ends"


def test_unknown_master_password_cannot_reach_the_statements(settled: Cluster) -> None:
    with pytest.raises(pymysql.err.OperationalError) as err:
        connect(settled.endpoint, password=PASSWORD + "-wrong")
    assert err.value.args[0] == 1045
    with connect(settled.endpoint, user=USER) as conn:
        assert run(conn, "SHOW VOLUME STATUS")
