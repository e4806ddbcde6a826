"""Aurora PostgreSQL's fault-injection functions and SQL surface, with their real effects.

Every call goes through psycopg and the emulator's endpoints, the way an application or the
harness would make it; effects are observed on real commits, real replication and real
processes, and every wait is on a state, not a fixed sleep.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from harness.emulator.emulator import Emulator
from harness.emulator.engines.postgres_surface import SURFACE_TIMEOUT_S
from tests.emulator.support import (
    Cluster,
    create_cluster,
    delete_cluster,
    running_emulator,
    wait_for,
)

NET = 60  # this module's own emulator (127.60.x.y): apart from the shared session fixture's net

# The AWS Advanced Python Wrapper's Aurora PostgreSQL dialect, verbatim (aws_advanced_python_wrapper/database_dialect.py).
WRAPPER_EXTENSIONS_QUERY = ("SELECT (setting LIKE '%aurora_stat_utils%') AS aurora_stat_utils "
                            "FROM pg_settings WHERE name='rds.extensions'")
WRAPPER_HAS_TOPOLOGY_QUERY = "SELECT 1 FROM aurora_replica_status() LIMIT 1"
WRAPPER_TOPOLOGY_QUERY = (
    "SELECT SERVER_ID, CASE WHEN SESSION_ID = 'MASTER_SESSION_ID' THEN TRUE ELSE FALSE END, "
    "CPU, COALESCE(REPLICA_LAG_IN_MSEC, 0), LAST_UPDATE_TIMESTAMP "
    "FROM aurora_replica_status() "
    "WHERE EXTRACT(EPOCH FROM(NOW() - LAST_UPDATE_TIMESTAMP)) <= 300 OR SESSION_ID = 'MASTER_SESSION_ID' "
    "OR LAST_UPDATE_TIMESTAMP IS NULL")
WRAPPER_HOST_ID_QUERY = "SELECT aurora_db_instance_identifier()"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """An emulator of this module's own, so crashes and stalled links here disturb no other test."""
    with running_emulator(NET, "fault-injection") as emu:
        yield emu


@pytest.fixture(scope="module")
def rds(emulator: Emulator) -> Any:
    return emulator.client()


@pytest.fixture(scope="module")
def shared(rds: Any) -> Iterator[Cluster]:
    """A writer and a reader for the tests that leave the topology as they found it."""
    cluster = create_cluster(rds, [1, 0], prefix="fis")
    yield cluster
    cluster.wait_settled()
    delete_cluster(cluster)


def sql_error(conn: psycopg.Connection, query: str, *params: Any) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(query, params or None)
    return info.value


def start_time(cluster: Cluster, instance: str) -> Any:
    """The postmaster start time of an instance, or None while it cannot be reached."""
    try:
        with cluster.connect(cluster.instance_address(instance), connect_timeout=1) as conn:
            return conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
    except psycopg.Error:
        return None


def in_recovery(cluster: Cluster, instance: str) -> bool:
    with cluster.connect(cluster.instance_address(instance)) as conn:
        return conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]


def replica_status(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    cursor = conn.execute("SELECT * FROM aurora_replica_status()")
    names = [c.name for c in cursor.description]
    return {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}


def instance_events(rds: Any, instance: str) -> list[str]:
    events = rds.describe_events(SourceIdentifier=instance, SourceType="db-instance", Duration=60)["Events"]
    return [e["Message"] for e in events]


# --- the SQL surface ---------------------------------------------------------------------------------------
def test_the_aws_wrapper_recognises_aurora_and_reads_the_topology_from_every_instance(shared: Cluster) -> None:
    writer, reader = shared.writer(), shared.readers()[0]
    for host, me in ((shared.endpoint, writer), (shared.instance_address(reader), reader)):
        with shared.connect(host) as conn:
            assert conn.execute(WRAPPER_EXTENSIONS_QUERY).fetchone() == (True,)
            assert conn.execute(WRAPPER_HAS_TOPOLOGY_QUERY).fetchone() == (1,)
            assert conn.execute(WRAPPER_HOST_ID_QUERY).fetchone() == (me,)
            topology = {row[0]: row for row in conn.execute(WRAPPER_TOPOLOGY_QUERY).fetchall()}
            assert set(topology) == {writer, reader}
            assert topology[writer][1] is True and topology[reader][1] is False
            # Aurora PostgreSQL 13.9+: the instance you are connected to has a NULL last_update_timestamp.
            assert topology[me][4] is None
            assert all(topology[other][4] is not None for other in topology if other != me)
            # CPU in percent of the instance (0 to 100), lag never negative.
            assert all(isinstance(row[2], float) and 0.0 <= row[2] <= 100.0 and row[3] >= 0
                       for row in topology.values())


def test_a_topology_read_the_emulator_cannot_answer_fails_within_seconds_instead_of_hanging(
        emulator: Emulator, shared: Cluster) -> None:
    """A driver's monitor reads the topology while a failover runs and retries on an error, not on
    silence: a read the emulator's control plane does not answer (here its state is held) must end
    in an error the client sees, well before the driver's failover timeout (60 s for the wrapper)."""
    with shared.connect(shared.endpoint) as conn:
        with emulator.store.lock:
            started = time.monotonic()
            error = sql_error(conn, "SELECT * FROM aurora_replica_status()")
            waited = time.monotonic() - started
        assert "could not be reached" in str(error) and "timed out" in str(error), error
        assert SURFACE_TIMEOUT_S <= waited < 30, waited
        assert conn.execute(WRAPPER_HOST_ID_QUERY).fetchone() == (shared.writer(),)  # answered again

def test_aurora_identity_functions_answer_qualified_and_unqualified(shared: Cluster) -> None:
    with shared.connect() as conn:
        assert conn.execute("SELECT aurora_version(), pg_catalog.aurora_version()").fetchone() == ("15.10.0",) * 2
        assert conn.execute("SELECT pg_catalog.aurora_db_instance_identifier()").fetchone() == (shared.writer(),)
        assert conn.execute("SELECT * FROM pg_catalog.aurora_show_volume_status()").fetchone() == (6, 6)
        assert conn.execute("SHOW rds.extensions").fetchone()[0].count("aurora_stat_utils") == 1
        rows = replica_status(conn)
    writer, reader = rows[shared.writer()], rows[shared.readers()[0]]
    assert writer["session_id"] == "MASTER_SESSION_ID" and writer["replica_lag_in_msec"] is None
    assert reader["session_id"] != "MASTER_SESSION_ID" and len(reader["session_id"]) == 36
    assert reader["replica_lag_in_msec"] >= 0 and reader["current_read_lsn"] > 0
    assert writer["durable_lsn"] > 0 and reader["highest_lsn_rcvd"] >= reader["current_read_lsn"]


def test_aurora_list_builtins_describes_the_fault_injection_functions(shared: Cluster) -> None:
    with shared.connect() as conn:
        cursor = conn.execute("SELECT * FROM aurora_list_builtins() WHERE \"Name\" LIKE 'aurora_inject%'")
        columns = [c.name for c in cursor.description]
        rows = {row[0]: dict(zip(columns, row)) for row in cursor.fetchall()}
    assert columns == ["Name", "Result data type", "Argument data types", "Type", "Volatility", "Parallel",
                       "Security", "Description"]
    assert set(rows) == {"aurora_inject_crash", "aurora_inject_replica_failure", "aurora_inject_disk_failure",
                         "aurora_inject_disk_congestion"}
    assert rows["aurora_inject_disk_congestion"]["Argument data types"] == (
        "percentage_of_failure double precision, index integer, is_disk boolean, time_interval integer, "
        "minimum double precision, maximum double precision")
    assert all(r["Result data type"] == "text" and r["Security"] == "definer" and r["Description"]
               for r in rows.values())


def test_fault_injection_needs_rds_superuser(shared: Cluster) -> None:
    with shared.connect() as conn:
        conn.execute("DROP ROLE IF EXISTS app_user")
        conn.execute("CREATE ROLE app_user LOGIN PASSWORD 'app-user-pw-1'")
        owner = conn.execute("SELECT DISTINCT pg_get_userbyid(proowner) FROM pg_proc "
                             "WHERE proname LIKE 'aurora\\_inject\\_%'").fetchall()
    assert owner == [("rdsadmin",)]
    with shared.connect(user="app_user", password="app-user-pw-1") as app:
        error = sql_error(app, "SELECT aurora_inject_crash('instance')")
        assert error.sqlstate == "42501"
        assert app.execute("SELECT count(*) FROM aurora_replica_status()").fetchone() == (2,)
    with shared.connect() as conn:
        conn.execute("DROP ROLE app_user")


# --- refusals, in PostgreSQL's style -------------------------------------------------------------------------
@pytest.mark.parametrize(("query", "sqlstate", "message"), [
    ("SELECT aurora_inject_crash('reboot')", "22023",
     "unknown crash type \"reboot\": the crash type must be 'instance', 'dispatcher' or 'node'"),
    ("SELECT aurora_inject_crash(NULL)", "22023", "unknown crash type NULL"),
    ("SELECT aurora_inject_replica_failure(100.5, 5, '')", "22023",
     "percentage of failure 100.5 is out of range: it must be between 0 and 100"),
    ("SELECT aurora_inject_disk_failure(-1, 0, false, 5)", "22023",
     "percentage of failure -1 is out of range: it must be between 0 and 100"),
    ("SELECT aurora_inject_replica_failure(50, 0, '')", "22023", "time interval must be greater than 0 seconds"),
    ("SELECT aurora_inject_disk_failure(50, 0, true, -3)", "22023", "time interval must be greater than 0 seconds"),
    ("SELECT aurora_inject_disk_failure(50, 6, false, 5)", "22023",
     "node index 6 is out of range: the maximum index is 5"),
    ("SELECT aurora_inject_disk_failure(50, 6, true, 5)", "22023",
     "disk index 6 is out of range: the maximum index is 5"),
    ("SELECT aurora_inject_disk_congestion(50, -1, false, 5, 10, 20)", "22023",
     "node index -1 is out of range: the minimum index is 0"),
    ("SELECT aurora_inject_disk_congestion(50, 0, false, 5, 10, 100.5)", "22023",
     "maximum congestion delay 100.5 ms is out of range: it must be between 0.0 and 100.0 milliseconds"),
    ("SELECT aurora_inject_disk_congestion(50, 0, true, 5, -1, 20)", "22023",
     "minimum congestion delay -1 ms is out of range"),
    ("SELECT aurora_inject_disk_congestion(50, 0, true, 5, 20, 20)", "22023",
     "maximum congestion delay 20 ms must be greater than the minimum congestion delay 20 ms"),
    ("SELECT aurora_inject_replica_failure(50, 5, 'no-such-replica')", "22023",
     'replica "no-such-replica" not found: the Aurora Replicas of DB cluster'),
])
def test_bad_arguments_are_refused_the_way_postgresql_refuses(shared: Cluster, query: str, sqlstate: str,
                                                              message: str) -> None:
    with shared.connect() as conn:
        error = sql_error(conn, query)
        assert error.sqlstate == sqlstate
        assert error.diag.message_primary.startswith(message), error.diag.message_primary
        assert error.diag.severity_nonlocalized == "ERROR"
        assert conn.execute("SELECT 1").fetchone() == (1,), "the session survives a refusal"


def test_a_reader_can_only_fail_its_own_replication(shared: Cluster, emulator: Any) -> None:
    writer, reader = shared.writer(), shared.readers()[0]
    with shared.connect(shared.instance_address(reader)) as conn:
        error = sql_error(conn, "SELECT aurora_inject_replica_failure(50, 5, %s)", writer)
        assert error.sqlstate == "22023"
        assert "a reader can only fail its own replication" in error.diag.message_primary
        message = conn.execute("SELECT aurora_inject_replica_failure(0, 1, '')").fetchone()[0]
    assert message == f"0% read replica failure to {reader} for 1 seconds"
    wait_for(lambda: not emulator.controls.active_faults(cluster=shared.identifier), timeout=10,
             what="the 1 s fault to end on its own")


# --- crashes ---------------------------------------------------------------------------------------------------------
def crash(cluster: Cluster, host: str, kind: str) -> psycopg.Error:
    """Run aurora_inject_crash; the session must not get a normal answer."""
    with cluster.connect(host) as conn:
        error = sql_error(conn, "SELECT aurora_inject_crash(%s)", kind)
    assert isinstance(error, psycopg.OperationalError) or (error.sqlstate or "").startswith("57P"), error
    return error


def test_an_instance_crash_restarts_the_writer_in_place_without_failover(emulator: Any, rds: Any,
                                                                         cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory([1, 0])
    writer = cluster.writer()
    before = start_time(cluster, writer)
    crash(cluster, cluster.endpoint, "instance")
    after = wait_for(lambda: (t := start_time(cluster, writer)) and t != before and t, timeout=30,
                     what="the writer back with a new postmaster")
    assert after > before
    assert cluster.writer() == writer and not in_recovery(cluster, writer), "no failover: same writer"
    with cluster.connect() as conn:
        conn.execute("CREATE TABLE after_crash (id int)")
        conn.execute("INSERT INTO after_crash VALUES (1)")
    # the engine serves a moment before the emulator has recorded its restart: wait for the event
    messages = wait_for(lambda: (m := instance_events(rds, writer)) and "DB instance restarted." in m and m,
                        timeout=30, what="the writer's restart event")
    assert "DB instance shutdown." in messages
    cluster.wait_settled()


def test_a_node_crash_on_a_reader_restarts_it_cold_as_a_reader(emulator: Any,
                                                                cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory([1, 0])
    writer, reader = cluster.writer(), cluster.readers()[0]
    before = start_time(cluster, reader)
    crash(cluster, cluster.instance_address(reader), "NODE")  # the crash type is not case sensitive
    wait_for(lambda: (t := start_time(cluster, reader)) and t != before, timeout=30, what="the reader back")
    assert cluster.writer() == writer and in_recovery(cluster, reader)
    with cluster.connect() as conn:
        conn.execute("CREATE TABLE after_node_crash (id int)")
    with cluster.connect(cluster.instance_address(reader)) as conn:
        wait_for(lambda: conn.execute("SELECT to_regclass('after_node_crash')").fetchone()[0], timeout=15,
                 what="the reader to replicate again")


def test_a_dispatcher_crash_drops_sessions_but_keeps_the_engine(emulator: Any,
                                                                cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory([1])
    writer = cluster.writer()
    before = start_time(cluster, writer)
    bystander = cluster.connect(cluster.instance_address(writer))
    bystander_pid = bystander.execute("SELECT pg_backend_pid()").fetchone()[0]
    crash(cluster, cluster.endpoint, "dispatcher")

    def bystander_dropped() -> bool:
        """The crash drops every session on the instance; the bystander's may go a moment after
        the crashing session's (the front door resets them one by one)."""
        try:
            bystander.execute("SELECT 1")
        except psycopg.OperationalError:
            return True
        return False

    wait_for(bystander_dropped, timeout=5, interval=0.05, what="the bystander's session to be dropped")
    bystander.close()

    def backend_gone() -> bool:
        try:  # a connection made while the dispatcher is still going down may be ended too
            with cluster.connect() as conn:
                return not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s",
                                        (bystander_pid,)).fetchone()
        except psycopg.OperationalError:
            return False

    wait_for(backend_gone, timeout=10, what="the bystander's backend to end")
    assert start_time(cluster, writer) == before, "the engine process kept running"


# --- simulated failures ------------------------------------------------------------------------------------------------
class Markers:
    """The writer inserts a timestamped row every 20 ms; a reader's lag is the age of the newest one it sees."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.stop = threading.Event()
        with cluster.connect() as conn:
            conn.execute("CREATE TABLE markers (id bigserial PRIMARY KEY, at timestamptz NOT NULL)")
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.cluster.connect() as conn:
            while not self.stop.is_set():
                conn.execute("INSERT INTO markers (at) VALUES (clock_timestamp())")
                self.stop.wait(0.02)

    def __enter__(self) -> Markers:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def visible_lag(reader: psycopg.Connection) -> float:
    """Seconds since the newest marker the reader can see was written."""
    return reader.execute("SELECT extract(epoch FROM clock_timestamp() - max(at))::float FROM markers").fetchone()[0]


def test_replica_failure_makes_the_reader_fall_behind_then_catch_up(emulator: Any,
                                                                     cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory([1, 0])
    reader = cluster.readers()[0]
    with Markers(cluster), cluster.connect() as writer, \
            cluster.connect(cluster.instance_address(reader)) as replica:
        wait_for(lambda: replica.execute("SELECT to_regclass('markers')").fetchone()[0] and visible_lag(replica)
                 is not None and visible_lag(replica) < 0.5, timeout=15, what="the reader to keep up")
        message = writer.execute("SELECT aurora_inject_replica_failure(100, 3, '')").fetchone()[0]
        injected = time.monotonic()
        assert message == f"100% read replica failure to all Aurora Replicas ({reader}) for 3 seconds"
        wait_for(lambda: visible_lag(replica) > 1.5, timeout=3, what="the reader's lag to grow")
        reported = replica_status(writer)[reader]["replica_lag_in_msec"]
        assert reported > 1000, f"aurora_replica_status() shows the lag too ({reported} ms)"
        wait_for(lambda: visible_lag(replica) < 0.5, timeout=15, what="the reader to catch up")
        caught_up = time.monotonic() - injected
        assert caught_up >= 2.5, f"caught up after {caught_up:.2f} s, before the 3 s interval ended"
        wait_for(lambda: replica_status(writer)[reader]["replica_lag_in_msec"] < 500, timeout=10,
                 what="aurora_replica_status() to show it caught up")
    assert emulator.controls.active_faults(cluster=cluster.identifier) == []


def commit_in_background(cluster: Cluster, value: int) -> threading.Thread:
    def run() -> None:
        with cluster.connect() as conn:
            conn.execute("INSERT INTO volume_test VALUES (%s)", (value,))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_disk_failure_stalls_commits_only_when_the_write_quorum_is_lost(
        emulator: Any, cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory([1])
    with cluster.connect() as conn:
        conn.execute("CREATE TABLE volume_test (id int)")
        message = conn.execute("SELECT aurora_inject_disk_failure(100, 0, false, 4)").fetchone()[0]
        assert message == "100% disk failure in node 0 (storage node sn_a1) for 4 seconds"
        one_down = commit_in_background(cluster, 1)
        one_down.join(5)
        assert not one_down.is_alive(), "one failed storage node leaves five: commits go on"
        # Disks 1 and 2 (one protection group's copies on sn_a2 and sn_b1) make three nodes down of six.
        conn.execute("SELECT aurora_inject_disk_failure(100, 1, true, 4)")
        conn.execute("SELECT aurora_inject_disk_failure(100, 2, true, 4)")
        lost_quorum = time.monotonic()
        stalled = commit_in_background(cluster, 2)
        stalled.join(1.5)
        assert stalled.is_alive(), "three storage nodes down: a commit cannot be acknowledged"
        assert conn.execute("SELECT count(*) FROM volume_test").fetchone() == (1,), "reads go on"
    stalled.join(15)
    waited = time.monotonic() - lost_quorum
    assert not stalled.is_alive(), "the commit completes once the failures end"
    assert waited >= 3.0, f"the commit went through after {waited:.2f} s, before the 4 s interval ended"
    wait_for(lambda: not emulator.controls.active_faults(cluster=cluster.identifier), timeout=10,
             what="the faults to end")
    with cluster.connect() as conn:
        assert sorted(r[0] for r in conn.execute("SELECT id FROM volume_test")) == [1, 2]


def commit_latency(conn: psycopg.Connection, commits: int = 15) -> float:
    """Median seconds per autocommit INSERT."""
    samples = []
    for _ in range(commits):
        started = time.perf_counter()
        conn.execute("INSERT INTO volume_test VALUES (0)")
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def test_disk_congestion_slows_commits_once_the_quorum_waits_for_a_congested_node(
        emulator: Any, cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory([1])
    with cluster.connect() as conn:
        conn.execute("CREATE TABLE volume_test (id int)")
        baseline = commit_latency(conn)
        for node in (0, 1):
            conn.execute("SELECT aurora_inject_disk_congestion(100, %s, false, 6, 40, 60)", (node,))
        two_congested = commit_latency(conn)
        conn.execute("SELECT aurora_inject_disk_congestion(100, 2, false, 4, 40, 60)")
        three_congested = commit_latency(conn)
        wait_for(lambda: not emulator.controls.active_faults(cluster=cluster.identifier), timeout=15,
                 what="the congestion to end")
        after = commit_latency(conn)
    assert baseline < 0.03, baseline
    assert two_congested < 0.035, f"two congested nodes leave a quorum of four fast ones ({two_congested:.3f} s)"
    assert 0.04 <= three_congested <= 0.1, f"the fourth acknowledgement is congested ({three_congested:.3f} s)"
    assert after < 0.03, after


# --- the topology after a failover -----------------------------------------------------------------------------------
def test_replica_status_follows_a_failover_and_replica_failures_end_with_the_old_writer(
        emulator: Any, rds: Any, cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory([1, 0, 2])
    old_writer = cluster.writer()
    new_writer = next(r for r in cluster.readers() if cluster.instance(r)["PromotionTier"] == 0)
    other = next(r for r in cluster.readers() if r != new_writer)
    with cluster.connect() as conn:
        conn.execute("SELECT aurora_inject_replica_failure(100, 120, %s)", (other,))
        assert replica_status(conn)[old_writer]["session_id"] == "MASTER_SESSION_ID"
    assert [f["kind"] for f in emulator.controls.active_faults(cluster=cluster.identifier)] == ["replica_failure"]

    rds.failover_db_cluster(DBClusterIdentifier=cluster.identifier)
    wait_for(lambda: cluster.writer() == new_writer, timeout=60, what="the failover")
    cluster.wait_settled()
    assert emulator.controls.active_faults(cluster=cluster.identifier) == [], "the replica failure ended"
    for me in (new_writer, old_writer, other):
        with cluster.connect(cluster.instance_address(me)) as conn:
            rows = replica_status(conn)
        assert set(rows) == {new_writer, old_writer, other}
        assert [r for r, row in rows.items() if row["session_id"] == "MASTER_SESSION_ID"] == [new_writer]
        assert rows[me]["last_update_timestamp"] is None
    with cluster.connect() as conn:
        conn.execute("CREATE TABLE after_failover (id int)")
    with cluster.connect(cluster.instance_address(other)) as conn:
        wait_for(lambda: conn.execute("SELECT to_regclass('after_failover')").fetchone()[0], timeout=15,
                 what="the once-failed replica to follow the new writer")
