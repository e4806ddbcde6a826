"""Aurora MySQL on MariaDB, as boto3 and pymysql users meet it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pytest
from botocore.exceptions import ClientError

from harness.aurora import promotion_rank
from harness.emulator.processes import marked_processes
from tests.emulator.support import PASSWORD, USER, Cluster, create_cluster, wait_for

ENGINE = "aurora-mysql"


def create_mysql_cluster(rds: Any, name: str, tiers: list[int]) -> Cluster:
    return create_cluster(rds, tiers, engine=ENGINE, identifier=name, timeout=180)


def connect(host: str, **kwargs: Any) -> pymysql.Connection:
    params = dict(host=host, port=3306, user=USER, password=PASSWORD, database="app", autocommit=True,
                  connect_timeout=3, read_timeout=10, write_timeout=10, ssl_disabled=True)
    params.update(kwargs)
    return pymysql.connect(**params)


def instance_name(conn: pymysql.Connection) -> str:
    """Aurora MySQL's own answer to "which instance am I on"."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT @@aurora_server_id")
        return cursor.fetchone()[0]


def scalar(conn: pymysql.Connection, sql: str) -> Any:
    with conn.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


@pytest.fixture(scope="module")
def cluster(rds: Any) -> Iterator[Cluster]:
    made = create_mysql_cluster(rds, "my1", [1, 0, 2])
    yield made
    made.wait_settled()
    from tests.emulator.support import delete_cluster

    delete_cluster(made)


@dataclass
class MySqlWriteLoop:
    """Autocommit INSERTs through the cluster endpoint, recording what was acknowledged."""

    cluster: Cluster
    acknowledged: list[int] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        with connect(self.cluster.endpoint) as conn, conn.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS ledger (id BIGINT PRIMARY KEY)")
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        next_id, conn, host = 1, None, self.cluster.endpoint
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = connect(host, connect_timeout=2, read_timeout=5, write_timeout=5)
                with conn.cursor() as cursor:
                    cursor.execute("INSERT INTO ledger (id) VALUES (%s)", (next_id,))
                self.acknowledged.append(next_id)
            except pymysql.MySQLError:
                conn = None
                time.sleep(0.005)
            next_id += 1

    def __enter__(self) -> MySqlWriteLoop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(15)


def test_cluster_reports_the_aurora_mysql_engine_and_version(cluster: Cluster) -> None:
    described = cluster.describe()
    assert described["Engine"] == ENGINE
    assert described["EngineVersion"].startswith("8.0.mysql_aurora.3.")
    assert described["Port"] == 3306
    assert described["DBClusterParameterGroup"] == "default.aurora-mysql8.0"
    assert described["StorageType"] == "aurora"


def test_writes_go_through_the_cluster_endpoint_and_readers_refuse_them(cluster: Cluster) -> None:
    with connect(cluster.endpoint) as conn:
        assert instance_name(conn) == cluster.writer()
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS notes (id INT PRIMARY KEY)")
            cursor.execute("REPLACE INTO notes VALUES (1)")
    with connect(cluster.reader_endpoint) as conn:
        with pytest.raises(pymysql.err.OperationalError) as err, conn.cursor() as cursor:
            cursor.execute("INSERT INTO notes VALUES (2)")
    assert err.value.args[0] == 1290, "the read-only option error Aurora MySQL readers give"
    assert "--read-only option" in err.value.args[1]


def test_aurora_mysql_variables_answer_for_the_instance_and_its_role(cluster: Cluster) -> None:
    for name in cluster.instances:
        with connect(cluster.instance_address(name)) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT @@aurora_server_id, @@aurora_version, @@innodb_read_only, @@read_only")
            server_id, version, innodb_read_only, read_only = cursor.fetchone()
        assert server_id == name
        assert version == cluster.describe()["EngineVersion"].split("mysql_aurora.")[1]
        expected = 0 if name == cluster.writer() else 1
        assert (int(innodb_read_only), int(read_only)) == (expected, expected), name


def test_reader_endpoint_connections_land_on_both_readers(cluster: Cluster) -> None:
    landed = Counter()
    for _ in range(10):
        with connect(cluster.reader_endpoint) as conn:
            landed[instance_name(conn)] += 1
    assert set(landed) == set(cluster.readers()) and min(landed.values()) >= 3, landed


def test_master_user_is_not_a_server_administrator(cluster: Cluster) -> None:
    with connect(cluster.endpoint) as conn, conn.cursor() as cursor:
        with pytest.raises(pymysql.err.OperationalError) as err:
            cursor.execute("SET GLOBAL read_only = ON")
    assert err.value.args[0] in (1227, 1045), "SUPER / READ_ONLY ADMIN are withheld, as on Aurora"


def test_ten_failovers_under_load_lose_no_acknowledged_commit(emulator: Any, rds: Any) -> None:
    cluster = create_mysql_cluster(rds, "my10", [1, 0, 2])
    try:
        promoted = []
        with MySqlWriteLoop(cluster) as load:
            wait_for(lambda: len(load.acknowledged) > 200, what="writes")
            for round_ in range(10):
                readers = [cluster.instance(r) for r in cluster.readers()]
                named = round_ % 3 == 2
                ranked = sorted(readers, key=lambda r: promotion_rank(r["PromotionTier"], r["DBInstanceClass"]))
                expected = (ranked[-1] if named else ranked[0])["DBInstanceIdentifier"]
                before = len(load.acknowledged)
                rds.failover_db_cluster(DBClusterIdentifier=cluster.identifier,
                                        **({"TargetDBInstanceIdentifier": expected} if named else {}))
                wait_for(lambda: cluster.writer() == expected, timeout=60, what=f"{expected} to become the writer")
                wait_for(lambda: len(load.acknowledged) > before + 50, timeout=30, what="writes to resume")
                cluster.wait_settled()
                promoted.append(expected)
        assert len(set(promoted)) == 3, promoted
        with connect(cluster.endpoint) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT id FROM ledger")
            stored = {row[0] for row in cursor.fetchall()}
        missing = sorted(set(load.acknowledged) - stored)
        assert not missing, f"{len(missing)} acknowledged commits lost: {missing[:10]}"
        top = max(stored)
        for reader in cluster.readers():
            address = cluster.instance_address(reader)
            wait_for(lambda: scalar(connect(address), "SELECT max(id) FROM ledger") == top, timeout=30,
                     what=f"{reader} to converge")
        root = str(emulator.state_dir / "regions" / "us-east-1" / cluster.identifier)
        servers = [pid for pid in marked_processes() if root in _cmdline(pid) and "mariadbd" in _cmdline(pid)]
        assert len(servers) == 3, f"one server per instance, no leftovers: {servers}"
    finally:
        cluster.wait_settled()
        from tests.emulator.support import delete_cluster

        delete_cluster(cluster)


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_rebooting_the_writer_keeps_readers_available(rds: Any, cluster: Cluster) -> None:
    writer, readers = cluster.writer(), cluster.readers()
    sessions = {r: connect(cluster.instance_address(r)) for r in readers}
    rds.reboot_db_instance(DBInstanceIdentifier=writer)
    wait_for(lambda: cluster.instance(writer)["DBInstanceStatus"] == "rebooting" or cluster.settled(),
             what="the reboot to begin")
    cluster.wait_settled()
    assert cluster.writer() == writer
    for reader, session in sessions.items():
        assert scalar(session, "SELECT 1") == 1, f"{reader} stayed up: Aurora MySQL keeps readers during a writer reboot"
        session.close()


def test_a_killed_writer_fails_over_by_itself(emulator: Any, rds: Any, cluster: Cluster) -> None:
    cluster.wait_settled()
    old = cluster.writer()
    emulator.controls.kill_instance(instance=old)
    wait_for(lambda: cluster.writer() != old, timeout=60, what="the automatic failover")
    cluster.wait_settled()
    assert old in cluster.readers()


@contextlib.contextmanager
def writer_and_reader(cluster: Cluster, table: str) -> Iterator[tuple[str, pymysql.Connection, pymysql.Connection]]:
    """A reader's name, a session on the writer and one on that reader, and `table` to write to."""
    cluster.wait_settled()
    reader = cluster.readers()[0]
    with connect(cluster.endpoint) as writer, connect(cluster.instance_address(reader)) as replica:
        with writer.cursor() as cursor:
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {table} (id INT PRIMARY KEY)")
        # The table must be on the reader before a test holds the reader back (its checks read it there).
        wait_for(lambda: scalar(replica, "SELECT count(*) FROM information_schema.tables WHERE table_name = "
                                         f"'{table}'"), interval=0.01, what=f"{table} on the reader")
        yield reader, writer, replica


def visibility_lag(writer: pymysql.Connection, replica: pymysql.Connection, table: str, row: int) -> float:
    """Seconds from COMMIT acknowledged on the writer until the row is visible on the reader."""
    with writer.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} VALUES ({row})")
    committed = time.monotonic()
    wait_for(lambda: scalar(replica, f"SELECT count(*) FROM {table} WHERE id = {row}"), interval=0.005,
             what=f"row {row} on the reader")
    return time.monotonic() - committed


def test_a_latency_toxic_on_a_readers_link_shows_as_replica_lag(emulator: Any, cluster: Cluster) -> None:
    with writer_and_reader(cluster, "lag_test") as (reader, writer, replica):
        emulator.controls.add_toxic(cluster=cluster.identifier, link=f"reader:{reader}",
                                    toxic={"type": "latency", "name": "slow", "stream": "downstream",
                                           "attributes": {"latency_ms": 300, "jitter_ms": 0}})
        try:
            lag = visibility_lag(writer, replica, "lag_test", 1)
        finally:
            emulator.controls.remove_toxic(cluster=cluster.identifier, link=f"reader:{reader}", name="slow")
    # Semi-sync waited for the other reader's acknowledgement, so the delayed reader lags by the toxic.
    assert lag >= 0.25, lag


@pytest.mark.parametrize("engine,params,code,words", [
    ("aurora-postgresql", {"BacktrackWindow": 3600}, "InvalidParameterValue", "Backtrack is not supported"),
    ("aurora-mysql", {"EnableLimitlessDatabase": True}, "InvalidParameterValue", "Limitless Database"),
    ("aurora-mysql", {"EngineVersion": "5.7.mysql_aurora.2.11.2"}, "InvalidParameterCombination",
     "Cannot find version"),
    ("aurora-mysql", {"MasterUsername": "a_very_long_master_name"}, "InvalidParameterValue", "at most 16"),
    ("aurora-mysql", {"BacktrackWindow": 300000}, "InvalidParameterValue", "259200"),
])
def test_engine_specific_parameters_are_rejected_for_the_other_engine(rds: Any, engine: str, params: dict[str, Any],
                                                                      code: str, words: str) -> None:
    with pytest.raises(ClientError) as err:
        rds.create_db_cluster(**{"DBClusterIdentifier": "wrong-engine", "Engine": engine, "MasterUsername": USER,
                                 "MasterUserPassword": PASSWORD, **params})
    assert err.value.response["Error"]["Code"] == code
    assert words in err.value.response["Error"]["Message"]


def test_storage_node_controls_say_mysql_clusters_have_none(emulator: Any, cluster: Cluster) -> None:
    assert emulator.controls.storage_status(cluster=cluster.identifier) == {}
    with pytest.raises(KeyError, match="no storage nodes"):
        emulator.controls.stop_storage_node(cluster=cluster.identifier, node="sn_a1")


def test_unlag_reader_undoes_lag_reader(emulator: Any, cluster: Cluster) -> None:
    """MariaDB readers lag by applying late (MASTER_DELAY, whole seconds); unlag applies at once again."""
    with writer_and_reader(cluster, "unlag_test") as (reader, writer, replica):
        emulator.controls.lag_reader(cluster=cluster.identifier, reader=reader, milliseconds=1000)
        try:
            lagged = visibility_lag(writer, replica, "unlag_test", 1)
        finally:
            undone = emulator.controls.unlag_reader(cluster=cluster.identifier, reader=reader)
        assert undone is True
        assert max(visibility_lag(writer, replica, "unlag_test", row) for row in range(2, 5)) < 0.5
        assert emulator.controls.unlag_reader(cluster=cluster.identifier, reader=reader) is False
    assert lagged >= 0.5, lagged
