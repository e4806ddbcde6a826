"""What the Global Database tests share: engine-neutral SQL, a ledger of acknowledged writes, and a
global cluster built through boto3 (a primary, a secondary with instances, optionally a headless
one) and taken apart again. Imported as `tests.emulator.global_support`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pymysql

from harness.emulator.emulator import Emulator
from tests.emulator.support import DATABASE, PASSWORD, USER, create_cluster, wait_for

PRIMARY_REGION, SECONDARY_REGION, HEADLESS_REGION = "us-east-1", "us-west-2", "eu-west-1"
PORTS = {"aurora-postgresql": 5432, "aurora-mysql": 3306}


def sql(engine: str, host: str, statement: str, params: tuple[Any, ...] = (), timeout: int = 5) -> list[tuple[Any, ...]]:
    """Rows of one autocommit statement as the master user, at `host` (an endpoint's address)."""
    if engine == "aurora-mysql":
        conn = pymysql.connect(host=host, port=PORTS[engine], user=USER, password=PASSWORD, database=DATABASE,
                               autocommit=True, connect_timeout=timeout, read_timeout=30)
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement, params or None)
                return list(cursor.fetchall())
        finally:
            conn.close()
    with psycopg.connect(host=host, port=PORTS[engine], user=USER, password=PASSWORD, dbname=DATABASE,
                         autocommit=True, connect_timeout=timeout) as conn:
        cursor = conn.execute(statement, params or None)
        return cursor.fetchall() if cursor.description else []


def ids(engine: str, host: str) -> set[int]:
    return {row[0] for row in sql(engine, host, "SELECT id FROM ledger")}


@dataclass
class Ledger:
    """Autocommit INSERTs of increasing ids through one endpoint; which were acknowledged."""

    engine: str
    host: str
    acknowledged: list[int] = field(default_factory=list)
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _connect(self) -> Any:
        if self.engine == "aurora-mysql":
            return pymysql.connect(host=self.host, port=PORTS[self.engine], user=USER, password=PASSWORD,
                                   database=DATABASE, autocommit=True, connect_timeout=1, read_timeout=5,
                                   write_timeout=5)
        return psycopg.connect(host=self.host, port=PORTS[self.engine], user=USER, password=PASSWORD, dbname=DATABASE,
                               autocommit=True, connect_timeout=1)

    def _run(self) -> None:
        next_id, conn = max(self.acknowledged, default=0) + 1, None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = self._connect()
                if self.engine == "aurora-mysql":
                    with conn.cursor() as cursor:
                        cursor.execute("INSERT INTO ledger (id) VALUES (%s)", (next_id,))
                else:
                    conn.execute("INSERT INTO ledger (id) VALUES (%s)", (next_id,))
                self.acknowledged.append(next_id)
            except (psycopg.Error, pymysql.MySQLError, OSError):
                self.failures += 1
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
                conn = None
                time.sleep(0.02)
            next_id += 1
        if conn is not None:
            conn.close()

    def __enter__(self) -> Ledger:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(15)

    def wait_acknowledged(self, count: int, timeout: float = 60.0) -> None:
        start = len(self.acknowledged)
        wait_for(lambda: len(self.acknowledged) >= start + count, timeout, what=f"{count} acknowledged writes")


@dataclass
class GlobalSetup:
    engine: str
    identifier: str
    rds: dict[str, Any]  # region -> boto3 client
    clusters: dict[str, str]  # region -> cluster identifier
    instances: dict[str, list[str]]  # region -> instance identifiers
    controls: Any  # the emulator's controls (Region outages, links)

    def describe(self) -> dict[str, Any]:
        return self.rds[PRIMARY_REGION].describe_global_clusters(
            GlobalClusterIdentifier=self.identifier)["GlobalClusters"][0]

    def writer_region(self) -> str:
        writer = next(m for m in self.describe()["GlobalClusterMembers"] if m["IsWriter"])
        return writer["DBClusterArn"].split(":")[3]

    def arn(self, region: str) -> str:
        return self.cluster(region)["DBClusterArn"]

    def cluster(self, region: str) -> dict[str, Any]:
        return self.rds[region].describe_db_clusters(DBClusterIdentifier=self.clusters[region])["DBClusters"][0]

    def address(self, region: str, instance: str) -> str:
        return self.rds[region].describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]["Endpoint"][
            "Address"]

    def addresses(self, region: str) -> list[str]:
        return [self.address(region, i) for i in self.instances[region]]

    def endpoint(self) -> str:
        return self.describe()["Endpoint"]

    def settled(self) -> bool:
        described = self.describe()
        if "FailoverState" in described or any(m["SynchronizationStatus"] != "connected"
                                               for m in described["GlobalClusterMembers"]):
            return False
        for region, names in self.instances.items():
            if self.cluster(region)["Status"] != "available":
                return False
            for name in names:
                status = self.rds[region].describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0][
                    "DBInstanceStatus"]
                if status != "available":
                    return False
        return True

    def wait_settled(self, timeout: float = 300.0) -> None:
        wait_for(self.settled, timeout, interval=0.2, what=f"{self.identifier} to settle")

    def events(self, region: str, start: Any) -> list[str]:
        return [e["Message"] for e in self.rds[region].describe_events(
            SourceType="db-cluster", SourceIdentifier=self.clusters[region], StartTime=start)["Events"]]


class Controls:
    """The emulator's controls by keyword, as EmulatorControlClient calls them over HTTP."""

    def __init__(self, emulator: Emulator):
        self.emulator = emulator

    def __getattr__(self, action: str) -> Any:
        return lambda **arguments: self.emulator.controls.call(action, arguments)


def add_instances(rds: Any, cluster: str, engine: str, count: int) -> list[str]:
    names = [f"{cluster}-{i + 1}" for i in range(count)]
    for name in names:
        rds.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier=cluster, Engine=engine,
                               DBInstanceClass="db.r6g.large")
    return names


def wait_available(rds: Any, names: list[str], timeout: float = 300.0) -> None:
    def ready() -> bool:
        statuses = [rds.describe_db_instances(DBInstanceIdentifier=n)["DBInstances"][0]["DBInstanceStatus"]
                    for n in names]
        assert "failed" not in statuses, statuses
        return all(s == "available" for s in statuses)

    wait_for(ready, timeout, interval=0.2, what=f"{names} available")


def delete_everything(rds: Any, cluster: str, instances: list[str]) -> None:
    for name in reversed(instances):
        rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
        wait_for(lambda: not any(i["DBInstanceIdentifier"] == name for i in  # noqa: B023
                                 rds.describe_db_instances()["DBInstances"]), timeout=120, what=f"{name} deleted")
    rds.delete_db_cluster(DBClusterIdentifier=cluster, SkipFinalSnapshot=True)

    def gone() -> bool:
        try:
            rds.describe_db_clusters(DBClusterIdentifier=cluster)
        except rds.exceptions.DBClusterNotFoundFault:
            return True
        return False

    wait_for(gone, timeout=120, what=f"{cluster} deleted")


def build_global(emulator: Emulator, engine: str, short: str, headless: bool = True) -> GlobalSetup:
    """A global cluster `global-<short>`: primary `gp<short>` (writer, reader) in us-east-1 with a
    `ledger` table, secondary `gs<short>` (head, reader) in us-west-2, and headless `gh<short>`
    in eu-west-1 if asked."""
    rds = {region: emulator.client(region) for region in (PRIMARY_REGION, SECONDARY_REGION, HEADLESS_REGION)}
    primary = create_cluster(rds[PRIMARY_REGION], [0, 1], engine=engine, identifier=f"gp{short}", timeout=300)
    sql(engine, primary.endpoint, "CREATE TABLE ledger (id BIGINT PRIMARY KEY)")
    identifier = f"global-{short}"
    rds[PRIMARY_REGION].create_global_cluster(GlobalClusterIdentifier=identifier,
                                              SourceDBClusterIdentifier=primary.describe()["DBClusterArn"])
    secondary = f"gs{short}"
    rds[SECONDARY_REGION].create_db_cluster(DBClusterIdentifier=secondary, Engine=engine,
                                            GlobalClusterIdentifier=identifier)
    secondary_instances = add_instances(rds[SECONDARY_REGION], secondary, engine, 2)
    clusters = {PRIMARY_REGION: primary.identifier, SECONDARY_REGION: secondary}
    instances = {PRIMARY_REGION: primary.instances, SECONDARY_REGION: secondary_instances}
    if headless:
        clusters[HEADLESS_REGION] = f"gh{short}"
        instances[HEADLESS_REGION] = []
        rds[HEADLESS_REGION].create_db_cluster(DBClusterIdentifier=clusters[HEADLESS_REGION], Engine=engine,
                                               GlobalClusterIdentifier=identifier)
    made = GlobalSetup(engine, identifier, rds, clusters, instances, Controls(emulator))
    wait_available(rds[SECONDARY_REGION], secondary_instances)
    return made


def tear_down(made: GlobalSetup) -> None:
    """Every member out of the global cluster, the global cluster and every cluster deleted."""
    made.wait_settled()
    rds = made.rds
    for writer_last in (False, True):
        for member in made.describe()["GlobalClusterMembers"]:
            if member["IsWriter"] == writer_last:
                region = member["DBClusterArn"].split(":")[3]
                rds[region].remove_from_global_cluster(GlobalClusterIdentifier=made.identifier,
                                                       DbClusterIdentifier=member["DBClusterArn"])
    rds[PRIMARY_REGION].delete_global_cluster(GlobalClusterIdentifier=made.identifier)
    for region, cluster in made.clusters.items():
        delete_everything(rds[region], cluster, made.instances[region])
        for taken in rds[region].describe_db_cluster_snapshots(DBClusterIdentifier=cluster)["DBClusterSnapshots"]:
            if taken["SnapshotType"] == "manual":  # the one a failover with data loss took of the old primary
                rds[region].delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=taken["DBClusterSnapshotIdentifier"])


