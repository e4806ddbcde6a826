"""What the emulator's tests share besides fixtures: the master login, clusters made and deleted
through boto3, a write loop, waiting on state. Imported as `tests.emulator.support`, so there is
one copy of it (its name counter included) however many conftest modules pytest loads."""

from __future__ import annotations

import contextlib
import os
import itertools
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from harness.emulator.emulator import Emulator
from harness.emulator.processes import marked_processes

PASSWORD = "emulator-test-pw-1"
USER = "master"
DATABASE = "app"
NET = int(os.environ.get("GAMEDAY_TEST_NET", "43"))  # 127.43.x.y: apart from the daemon's default (42) and other suites


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll state until `predicate` returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


_names = itertools.count(1)


@dataclass
class Cluster:
    """A cluster created for one test, with the handful of things tests ask of it."""

    rds: Any
    identifier: str
    instances: list[str]

    def describe(self) -> dict[str, Any]:
        return self.rds.describe_db_clusters(DBClusterIdentifier=self.identifier)["DBClusters"][0]

    def instance(self, identifier: str) -> dict[str, Any]:
        return self.rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]

    @property
    def endpoint(self) -> str:
        return self.describe()["Endpoint"]

    @property
    def reader_endpoint(self) -> str:
        return self.describe()["ReaderEndpoint"]

    def writer(self) -> str:
        return next(m["DBInstanceIdentifier"] for m in self.describe()["DBClusterMembers"] if m["IsClusterWriter"])

    def readers(self) -> list[str]:
        return [m["DBInstanceIdentifier"] for m in self.describe()["DBClusterMembers"] if not m["IsClusterWriter"]]

    def settled(self) -> bool:
        """Cluster and every instance available: no operation in flight."""
        if self.describe()["Status"] != "available":
            return False
        statuses = [self.instance(i)["DBInstanceStatus"] for i in self.instances]
        return all(s == "available" for s in statuses)

    def wait_settled(self, timeout: float = 120.0) -> None:
        wait_for(self.settled, timeout, interval=0.1, what=f"{self.identifier} to settle")

    def connect(self, host: str | None = None, **kwargs: Any) -> psycopg.Connection:
        params = dict(host=host or self.endpoint, port=5432, user=USER, password=PASSWORD, dbname=DATABASE,
                      autocommit=True, connect_timeout=3)
        params.update(kwargs)
        return psycopg.connect(**params)

    def instance_address(self, identifier: str) -> str:
        return self.instance(identifier)["Endpoint"]["Address"]


def create_cluster(rds: Any, tiers: list[int], prefix: str = "c", zones: list[str] | None = None, *,
                   engine: str = "aurora-postgresql", identifier: str | None = None,
                   timeout: float = 120.0) -> Cluster:
    """A cluster whose first instance is the writer and the rest readers, all available (named
    `identifier`, or `prefix` and a number)."""
    identifier = identifier or f"{prefix}{next(_names)}"
    rds.create_db_cluster(DBClusterIdentifier=identifier, Engine=engine, MasterUsername=USER,
                          MasterUserPassword=PASSWORD, DatabaseName=DATABASE)
    names = []
    for index, tier in enumerate(tiers):
        name = f"{identifier}-{index + 1}"
        extra = {"AvailabilityZone": zones[index]} if zones else {}
        rds.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier=identifier, Engine=engine,
                               DBInstanceClass="db.r6g.large", PromotionTier=tier, **extra)
        names.append(name)
    cluster = Cluster(rds, identifier, names)
    cluster.wait_settled(timeout)
    return cluster


def delete_cluster(cluster: Cluster) -> None:
    for name in list(cluster.instances):
        cluster.rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
        wait_for(lambda: not any(i["DBInstanceIdentifier"] == name for i in
                                 cluster.rds.describe_db_instances()["DBInstances"]), what=f"{name} deleted")
    cluster.rds.delete_db_cluster(DBClusterIdentifier=cluster.identifier, SkipFinalSnapshot=True)

    def gone() -> bool:  # listed as `deleting` until its engines and files are gone, as on AWS
        try:
            status = cluster.rds.describe_db_clusters(DBClusterIdentifier=cluster.identifier)["DBClusters"][0]["Status"]
        except cluster.rds.exceptions.DBClusterNotFoundFault:
            return True
        assert status == "deleting", status
        return False

    wait_for(gone, what=f"{cluster.identifier} deleted")


@dataclass
class WriteLoop:
    """Continuous autocommit INSERTs through the cluster endpoint, as an application would.

    Records which ids were acknowledged (COMMIT returned), and when each attempt began and was
    acknowledged (the machine's clock, which the engines share: what a point-in-time restore is
    judged by). An attempt that fails is not acknowledged; whether it committed is unknown, and
    never counts as lost.
    """

    cluster: Cluster
    acknowledged: list[int] = field(default_factory=list)
    begun_at: dict[int, datetime] = field(default_factory=dict)
    acked_at: dict[int, datetime] = field(default_factory=dict)
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        with self.cluster.connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS ledger (id bigint PRIMARY KEY, at timestamptz DEFAULT now())")
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        next_id, conn = 1, None
        host = self.cluster.endpoint
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = self.cluster.connect(host, connect_timeout=1)
                self.begun_at[next_id] = datetime.now(UTC)
                conn.execute("INSERT INTO ledger (id) VALUES (%s)", (next_id,))
                self.acked_at[next_id] = datetime.now(UTC)
                self.acknowledged.append(next_id)
            except psycopg.Error:
                self.failures += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.005)
            next_id += 1
        if conn is not None:
            conn.close()

    def __enter__(self) -> WriteLoop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)

    def rate(self, seconds: float = 1.0) -> float:
        """Acknowledged commits per second over the next `seconds`."""
        before = len(self.acknowledged)
        time.sleep(seconds)
        return (len(self.acknowledged) - before) / seconds


@contextlib.contextmanager
def running_emulator(net: int, name: str) -> Iterator[Emulator]:
    """A real emulator on loopback net 127.`net`.x.y with its state on tmpfs; on the way out it is
    stopped and every process it started must be gone."""
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    state_dir = base / f"gd-test-{name}-{time.time_ns()}"
    emu = Emulator(state_dir, net=net, dns_ttl=0)
    emu.start()
    try:
        yield emu
    finally:
        marker = emu.registry.marker
        emu.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
        leftovers = [pid for pid, m in marked_processes().items() if m == marker]
        assert not leftovers, f"emulator processes left running after stop(): {leftovers}"
