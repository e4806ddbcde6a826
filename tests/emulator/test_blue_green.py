"""Aurora Blue/Green deployments on the emulator, on both engines, through boto3 and real SQL.

One blue cluster per engine for the whole module (a writer and a reader, on a custom DB cluster
parameter group that turns on logical replication or binary logging), and one deployment that
the tests take in order through its life: the creation prerequisites and errors, green loaded
and kept in sync under writes (an independent ledger of acknowledged writes), Describe's filters,
guardrails that refuse, a switchover past its timeout that must change nothing, the switchover
that must lose nothing and move names and endpoints, the delete rules; then a second deployment
on the new production cluster for DDL on blue (which breaks Aurora PostgreSQL's logical
replication, as AWS documents) and DeleteTarget.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pymysql
import pytest

from harness.emulator.emulator import Emulator
from tests.emulator.blue_green_support import delete_blue_green
from tests.emulator.global_support import PORTS, Controls, Ledger, ids, sql
from tests.emulator.support import DATABASE, PASSWORD, USER, create_cluster, wait_for

ENGINES = ["aurora-postgresql", "aurora-mysql"]
FAMILY = {"aurora-postgresql": "aurora-postgresql15", "aurora-mysql": "aurora-mysql8.0"}
PARAMETER = {"aurora-postgresql": ("rds.logical_replication", "1"), "aurora-mysql": ("binlog_format", "ROW")}
TARGET_VERSION = {"aurora-postgresql": "15.13", "aurora-mysql": "8.0.mysql_aurora.3.08.0"}
IDENTITY = {"aurora-postgresql": "SELECT aurora_db_instance_identifier()", "aurora-mysql": "SELECT @@aurora_server_id"}
SEQUENCE_TABLE = {"aurora-postgresql": "CREATE TABLE items (id bigserial PRIMARY KEY, v int)",
                  "aurora-mysql": "CREATE TABLE items (id bigint AUTO_INCREMENT PRIMARY KEY, v int)"}
SQL_ERRORS = (psycopg.Error, pymysql.MySQLError)
# What the AWS Advanced Python Wrapper's `bg` plugin polls (database_dialect.py), and how it checks it exists.
METADATA = {"aurora-postgresql": "SELECT version, endpoint, port, role, status FROM "
                                 "pg_catalog.get_blue_green_fast_switchover_metadata('aws_advanced_python_wrapper')",
            "aurora-mysql": "SELECT version, endpoint, port, role, status FROM mysql.rds_topology"}
METADATA_EXISTS = {"aurora-mysql": "SELECT 1 AS tmp FROM information_schema.tables WHERE table_schema = 'mysql' "
                                   "AND table_name = 'rds_topology'"}


@dataclass
class BlueGreen:
    """The module's blue cluster and the deployment the tests take through its life."""

    engine: str
    rds: Any
    controls: Any
    blue: str  # the production cluster's name (kept by the switchover)
    group: str
    deployment: str = ""
    acknowledged: list[int] = field(default_factory=list)  # every ledger's acknowledged ids, in order
    started: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(seconds=1))

    hosts_file: Any = None  # the emulator's DNS (harness.emulator.dns)

    def cluster(self, name: str | None = None) -> dict[str, Any]:
        return self.rds.describe_db_clusters(DBClusterIdentifier=name or self.blue)["DBClusters"][0]

    def address(self, instance: str) -> str:
        return self.rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]["Endpoint"]["Address"]

    def describe(self, identifier: str | None = None) -> dict[str, Any]:
        return self.rds.describe_blue_green_deployments(
            BlueGreenDeploymentIdentifier=identifier or self.deployment)["BlueGreenDeployments"][0]

    def target(self, identifier: str | None = None) -> str:
        return self.describe(identifier)["Target"].split(":")[-1]

    def status(self, identifier: str | None = None) -> str:
        return self.describe(identifier)["Status"]

    def wait_status(self, wanted: str, identifier: str | None = None, timeout: float = 180.0) -> dict[str, Any]:
        return wait_for(lambda: (d := self.describe(identifier))["Status"] == wanted and d, timeout,  # noqa: B023
                        interval=0.1, what=f"deployment {wanted}")

    def ledger(self, host: str) -> Ledger:
        """A ledger continuing the ids of the ones before it (it shares their acknowledged list)."""
        return Ledger(self.engine, host, acknowledged=self.acknowledged)

    def events(self, identifier: str | None = None) -> list[str]:
        return [e["Message"] for e in self.rds.describe_events(
            SourceType="blue-green-deployment", SourceIdentifier=identifier or self.deployment,
            StartTime=self.started)["Events"]]

    def refused(self, call: Any, code: str) -> str:
        with pytest.raises(self.rds.exceptions.ClientError) as raised:
            call()
        assert raised.value.response["Error"]["Code"] == code, raised.value.response["Error"]
        return str(raised.value.response["Error"]["Message"])


@pytest.fixture(scope="module", params=ENGINES)
def bg(request: pytest.FixtureRequest, emulator: Emulator) -> Iterator[BlueGreen]:
    engine = request.param
    rds = emulator.client()
    short = "pg" if engine == "aurora-postgresql" else "my"
    made = BlueGreen(engine, rds, Controls(emulator), blue=f"bg{short}", group=f"bluegreen-{short}",
                     hosts_file=emulator.hosts_file)
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=made.group,
                                          DBParameterGroupFamily=FAMILY[engine], Description="Blue/Green source")
    create_cluster(rds, [1, 1], engine=engine, identifier=made.blue)
    endpoint = made.cluster()["Endpoint"]
    sql(engine, endpoint, "CREATE TABLE ledger (id bigint PRIMARY KEY)")
    sql(engine, endpoint, SEQUENCE_TABLE[engine])
    sql(engine, endpoint, "INSERT INTO items (v) VALUES (1), (2), (3)")
    yield made
    delete_blue_green(rds, made.blue, made.group)


# --- creation ------------------------------------------------------------------------------------------
def test_creation_needs_the_replication_parameter_and_a_valid_request(bg: BlueGreen) -> None:
    rds, source = bg.rds, bg.cluster()["DBClusterArn"]
    create = rds.create_blue_green_deployment
    message = bg.refused(lambda: create(BlueGreenDeploymentName="early", Source=source),
                         "SourceClusterNotSupportedFault")
    assert PARAMETER[bg.engine][0] in message
    name, value = PARAMETER[bg.engine]
    rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=bg.group, Parameters=[
        {"ParameterName": name, "ParameterValue": value, "ApplyMethod": "pending-reboot"}])
    listed = {p["ParameterName"]: p for p in rds.describe_db_cluster_parameters(
        DBClusterParameterGroupName=bg.group)["Parameters"]}
    assert listed[name]["ParameterValue"] == value and listed[name]["ApplyType"] == "static"
    rds.modify_db_cluster(DBClusterIdentifier=bg.blue, DBClusterParameterGroupName=bg.group)

    bg.refused(lambda: create(BlueGreenDeploymentName="x", Source=source, TargetEngineVersion="9.9"),
               "InvalidParameterCombination")
    bg.refused(lambda: create(BlueGreenDeploymentName="x", Source=source, TargetDBInstanceClass="db.r6g.large"),
               "InvalidParameterCombination")
    bg.refused(lambda: create(BlueGreenDeploymentName="x", Source=source + "-nope"), "DBClusterNotFoundFault")
    bg.refused(lambda: create(BlueGreenDeploymentName="x", Source=source,
                              TargetDBClusterParameterGroupName="no-such-group"), "DBClusterParameterGroupNotFound")
    bg.refused(lambda: rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier="bgd-nope"),
               "BlueGreenDeploymentNotFoundFault")


def test_green_is_loaded_from_blue_and_kept_in_sync_under_writes(bg: BlueGreen) -> None:
    engine, rds, blue = bg.engine, bg.rds, bg.cluster()
    with bg.ledger(blue["Endpoint"]) as ledger:
        ledger.wait_acknowledged(20)
        answer = rds.create_blue_green_deployment(
            BlueGreenDeploymentName=f"{bg.blue}-upgrade", Source=blue["DBClusterArn"],
            TargetEngineVersion=TARGET_VERSION[engine], TargetDBClusterParameterGroupName=bg.group,
            Tags=[{"Key": "team", "Value": "sre"}])["BlueGreenDeployment"]
        assert answer["Status"] == "PROVISIONING" and answer["BlueGreenDeploymentIdentifier"].startswith("bgd-")
        bg.deployment = answer["BlueGreenDeploymentIdentifier"]
        bg.refused(lambda: rds.create_blue_green_deployment(BlueGreenDeploymentName=f"{bg.blue}-upgrade",
                                                            Source=blue["DBClusterArn"]),
                   "BlueGreenDeploymentAlreadyExistsFault")
        described = bg.wait_status("AVAILABLE")
        ledger.wait_acknowledged(20)  # blue keeps taking writes while green is built and after
    assert {t["Status"] for t in described["Tasks"]} == {"COMPLETED"}
    assert {d["Status"] for d in described["SwitchoverDetails"]} == {"AVAILABLE"}
    assert described["TagList"] == [{"Key": "team", "Value": "sre"}]
    green = bg.cluster(bg.target())
    assert green["DBClusterIdentifier"].startswith(f"{bg.blue}-green-") and len(green["DBClusterIdentifier"]) == \
        len(bg.blue) + 13
    assert green["EngineVersion"] == TARGET_VERSION[engine] and green["Status"] == "available"
    assert sorted(m["DBInstanceIdentifier"].rsplit("-green-", 1)[0] for m in green["DBClusterMembers"]) == \
        sorted(m["DBInstanceIdentifier"] for m in blue["DBClusterMembers"])
    assert sorted(m["IsClusterWriter"] for m in green["DBClusterMembers"]) == [False, True]
    # Every write blue acknowledged reaches green's writer and reader; green refuses application writes.
    for member in green["DBClusterMembers"]:
        address = bg.rds.describe_db_instances(DBInstanceIdentifier=member["DBInstanceIdentifier"])[
            "DBInstances"][0]["Endpoint"]["Address"]
        wait_for(lambda: set(bg.acknowledged) <= ids(engine, address), timeout=60,  # noqa: B023
                 what="green has every acknowledged write")
    with pytest.raises(SQL_ERRORS):
        sql(engine, green["Endpoint"], "INSERT INTO ledger (id) VALUES (-1)")
    assert bg.events()[0].startswith("Blue/green deployment tasks completed.")


def test_describe_filters_and_pages(bg: BlueGreen) -> None:
    rds, described = bg.rds, bg.describe()

    def listed(**kwargs: Any) -> list[str]:
        return [d["BlueGreenDeploymentIdentifier"] for d in
                rds.describe_blue_green_deployments(**kwargs)["BlueGreenDeployments"]]

    for name, value in (("blue-green-deployment-identifier", bg.deployment),
                        ("blue-green-deployment-name", described["BlueGreenDeploymentName"]),
                        ("source", described["Source"]), ("target", described["Target"])):
        assert listed(Filters=[{"Name": name, "Values": [value]}]) == [bg.deployment]
        assert listed(Filters=[{"Name": name, "Values": ["nothing"]}]) == []
    bg.refused(lambda: listed(Filters=[{"Name": "engine", "Values": ["x"]}]), "InvalidParameterValue")
    page = rds.describe_blue_green_deployments(MaxRecords=20)
    assert bg.deployment in [d["BlueGreenDeploymentIdentifier"] for d in page["BlueGreenDeployments"]]
    assert "Marker" not in page  # one page holds them all


def test_switchover_metadata_for_drivers_on_the_versions_that_have_it(bg: BlueGreen) -> None:
    """Green runs a release with Blue/Green metadata (Aurora PostgreSQL 15.13, Aurora MySQL 3.08); blue
    (15.10, 3.05) has none: no rows on PostgreSQL, no `mysql.rds_topology` on MySQL."""
    engine, blue, green = bg.engine, bg.cluster(), bg.cluster(bg.target())
    rows = sql(engine, green["Endpoint"], METADATA[engine])
    roles = {(endpoint.split(".")[0], role) for _, endpoint, _, role, _ in rows}
    assert (bg.blue, "BLUE_GREEN_DEPLOYMENT_SOURCE") in roles and (green["DBClusterIdentifier"],
                                                                 "BLUE_GREEN_DEPLOYMENT_TARGET") in roles
    assert {(version, port, status) for version, _, port, _, status in rows} == {("1.0", blue["Port"], "AVAILABLE")}
    assert any(endpoint.startswith(f"{bg.blue}.cluster-ro-") for _, endpoint, *_ in rows)
    assert {m["DBInstanceIdentifier"] for m in green["DBClusterMembers"]} <= {e.split(".")[0] for _, e, *_ in rows}
    if engine == "aurora-mysql":
        assert sql(engine, green["Endpoint"], METADATA_EXISTS[engine]) == [(1,)]
        assert sql(engine, blue["Endpoint"], METADATA_EXISTS[engine]) == []
        with pytest.raises(SQL_ERRORS):
            sql(engine, blue["Endpoint"], METADATA[engine])
    else:
        assert sql(engine, blue["Endpoint"], METADATA[engine]) == []


# --- switchover -------------------------------------------------------------------------------------------
def test_guardrails_refuse_with_the_reason_and_change_nothing(bg: BlueGreen) -> None:
    engine, rds = bg.engine, bg.rds
    switch = lambda **kw: rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=bg.deployment, **kw)  # noqa: E731
    # (botocore itself refuses less than 30 s, the model's minimum; the emulator the User Guide's maximum)
    bg.refused(lambda: switch(SwitchoverTimeout=3601), "InvalidParameterValue")
    endpoint = bg.cluster()["Endpoint"]
    # A long-running write transaction on blue (open for more than a few seconds).
    with _open_write(engine, endpoint, "INSERT INTO ledger (id) VALUES (-2)") as session:
        wait_for(lambda: _transaction_age(engine, session) > 5.5, timeout=30, interval=0.2,
                 what="a long-running write transaction")
        message = bg.refused(switch, "InvalidBlueGreenDeploymentStateFault")
    assert "Long-running" in message and "write transaction" in message
    if engine == "aurora-postgresql":  # Aurora MySQL's green refuses the master user's writes outright
        green_writer = next(m["DBInstanceIdentifier"] for m in bg.cluster(bg.target())["DBClusterMembers"]
                            if m["IsClusterWriter"])
        address = rds.describe_db_instances(DBInstanceIdentifier=green_writer)["DBInstances"][0]["Endpoint"]["Address"]
        with _open_write(engine, address, "INSERT INTO items (id, v) VALUES (-1, -1)", read_write=True):
            message = bg.refused(switch, "InvalidBlueGreenDeploymentStateFault")
        assert "Active writes on the green environment" in message
    assert bg.status() == "AVAILABLE" and bg.cluster()["Endpoint"] == endpoint


def test_a_switchover_past_its_timeout_is_rolled_back(bg: BlueGreen) -> None:
    engine, rds = bg.engine, bg.rds
    blue_before, green_name = bg.cluster(), bg.target()
    green_before = bg.cluster(green_name)
    # The link from blue holds everything (a stall buffers, so green catches up once it is lifted).
    bg.controls.add_toxic(cluster=green_name, link="blue-green",
                          toxic={"type": "stall", "name": "cut", "stream": "downstream", "attributes": {"percent": 100.0}})
    try:
        sql(engine, blue_before["Endpoint"], "INSERT INTO ledger (id) VALUES (-3)")  # green cannot get it
        started = time.monotonic()
        answer = rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=bg.deployment,
                                                      SwitchoverTimeout=30)["BlueGreenDeployment"]
        assert answer["Status"] == "SWITCHOVER_IN_PROGRESS"
        # Writes stop on blue while the switchover waits for green, and neither cluster may be changed.
        wait_for(lambda: _refuses_writes(engine, blue_before["Endpoint"]), timeout=10, what="writes stopped")
        for cluster in (bg.blue, green_name):
            bg.refused(lambda: rds.failover_db_cluster(DBClusterIdentifier=cluster),  # noqa: B023
                       "InvalidDBClusterStateFault")
        bg.refused(lambda: rds.reboot_db_instance(DBInstanceIdentifier=blue_before["DBClusterMembers"][0][
            "DBInstanceIdentifier"]), "InvalidDBInstanceState")
        failed = bg.wait_status("SWITCHOVER_FAILED", timeout=90)
        assert 30 <= time.monotonic() - started < 60
    finally:
        bg.controls.remove_toxic(cluster=green_name, link="blue-green", name="cut")
    assert "catch up" in failed["StatusDetails"]
    # Nothing changed: names, endpoints, writers; blue takes writes again; green still replicates.
    assert bg.cluster()["Endpoint"] == blue_before["Endpoint"]
    assert bg.cluster(green_name)["Endpoint"] == green_before["Endpoint"]
    assert {m["DBInstanceIdentifier"] for m in bg.cluster()["DBClusterMembers"]} == \
        {m["DBInstanceIdentifier"] for m in blue_before["DBClusterMembers"]}
    wait_for(lambda: -3 in ids(engine, green_before["Endpoint"]), timeout=60,
             what="green replicating again, with the write made while its link was cut")
    events = bg.events()
    assert "Switchover canceled on blue/green deployment." in events
    assert any(e.startswith(f"Switchover from DB cluster {bg.blue} to {green_name} was canceled due to")
               for e in events)


def test_switchover_moves_names_and_endpoints_and_loses_nothing(bg: BlueGreen) -> None:
    engine, rds = bg.engine, bg.rds
    blue_before, green_name = bg.cluster(), bg.target()
    green_before = bg.cluster(green_name)
    blue_instances = {m["DBInstanceIdentifier"]: bg.address(m["DBInstanceIdentifier"])
                      for m in blue_before["DBClusterMembers"]}
    green_addresses = {bg.address(m["DBInstanceIdentifier"]) for m in green_before["DBClusterMembers"]}
    assert bg.status() == "SWITCHOVER_FAILED" and not _lagging(bg)  # a failed switchover may be tried again
    phases = _PhaseWatch(engine, [green_before["Endpoint"], blue_before["Endpoint"]])
    with bg.ledger(blue_before["Endpoint"]) as ledger, phases:
        ledger.wait_acknowledged(20)
        wait_for(lambda: phases.seen, timeout=30, what="the metadata polled")
        started = time.monotonic()
        rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=bg.deployment)
        completed = bg.wait_status("SWITCHOVER_COMPLETED", timeout=120)
        switched_s = time.monotonic() - started
        ledger.wait_acknowledged(20)  # the application writes again, through the same endpoint
        wait_for(lambda: "SWITCHOVER_COMPLETED" in phases.seen, timeout=30, what="the metadata's last phase")
    # A driver polling the metadata sees the switchover coming before connections drop, and its end.
    assert [p for p in phases.seen if p in ("AVAILABLE", "SWITCHOVER_INITIATED", "SWITCHOVER_COMPLETED")] == [
        "AVAILABLE", "SWITCHOVER_INITIATED", "SWITCHOVER_COMPLETED"], phases.seen
    assert switched_s < 60, f"switchover took {switched_s:.1f} s"  # "typically under a minute"
    # Green took blue's names and its cluster and reader endpoints; blue is `-old1`, with endpoints of its
    # own. Instances keep their addresses, the names move (as on AWS): blue's instance names now answer
    # green's instances' addresses, the `-old1` names blue's.
    production, old = bg.cluster(bg.blue), bg.cluster(f"{bg.blue}-old1")
    assert production["DbClusterResourceId"] == green_before["DbClusterResourceId"]
    assert old["DbClusterResourceId"] == blue_before["DbClusterResourceId"]
    assert production["Endpoint"] == blue_before["Endpoint"]
    assert production["ReaderEndpoint"] == blue_before["ReaderEndpoint"]
    before = {blue_before["Endpoint"], blue_before["ReaderEndpoint"], green_before["Endpoint"],
              green_before["ReaderEndpoint"]}
    assert not {old["Endpoint"], old["ReaderEndpoint"]} & before and old["Endpoint"] != old["ReaderEndpoint"]
    assert production["EngineVersion"] == TARGET_VERSION[engine]
    for name in blue_instances:
        assert rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["DBClusterIdentifier"] == bg.blue
        assert rds.describe_db_instances(DBInstanceIdentifier=f"{name}-old1")["DBInstances"][0][
            "DBClusterIdentifier"] == f"{bg.blue}-old1"
    assert {bg.address(name) for name in blue_instances} == green_addresses
    assert {bg.address(f"{name}-old1") for name in blue_instances} == set(blue_instances.values())
    # The emulator's DNS says the same; green's names are gone. Green's former endpoint addresses still
    # reach it (on AWS they are its instances' addresses), as a driver that resolved them beforehand finds.
    hosts = _hosts(bg.hosts_file)
    domain = f"gameday.{production['DBClusterArn'].split(':')[3]}.rds.amazonaws.com"
    assert hosts[f"{bg.blue}.cluster-{domain}"] == production["Endpoint"]
    assert hosts[f"{bg.blue}-old1.cluster-{domain}"] == old["Endpoint"]
    assert {hosts[f"{name}.{domain}"] for name in blue_instances} == green_addresses
    assert not [name for name in hosts if name.startswith(green_name)]
    production_writer = next(m["DBInstanceIdentifier"] for m in production["DBClusterMembers"] if m["IsClusterWriter"])
    assert sql(engine, green_before["Endpoint"], IDENTITY[engine])[0][0] == production_writer
    writer = next(m["DBInstanceIdentifier"] for m in production["DBClusterMembers"] if m["IsClusterWriter"])
    assert sql(engine, production["Endpoint"], IDENTITY[engine])[0][0] == writer
    assert completed["Source"] == old["DBClusterArn"] and completed["Target"] == production["DBClusterArn"]
    assert {d["Status"] for d in completed["SwitchoverDetails"]} == {"SWITCHOVER_COMPLETED"}
    # Nothing acknowledged was lost; the old blue only reads; sequences continue past blue's values.
    assert set(bg.acknowledged) <= ids(engine, production["Endpoint"])
    with pytest.raises(SQL_ERRORS):
        sql(engine, old["Endpoint"], "INSERT INTO ledger (id) VALUES (-4)")
    sql(engine, production["Endpoint"], "INSERT INTO items (v) VALUES (4)")
    assert sql(engine, production["Endpoint"], "SELECT count(*) FROM items")[0][0] == 4
    events = bg.events()
    expected = ["Switchover from blue to green started.",
                f"Switchover from DB cluster {bg.blue} to {green_name} started.",
                f"Switchover from DB cluster {bg.blue} to {green_name} completed. Renamed {bg.blue} to "
                f"{bg.blue}-old1 and {green_name} to {bg.blue}.",
                "Switchover completed on blue/green deployment."]
    assert [e for e in events if e in expected][-4:] == expected
    if engine == "aurora-postgresql":
        assert any(e.startswith(f"Sequence sync for switchover of DB cluster {green_name} completed") for e in events)


def test_delete_rules_after_a_switchover(bg: BlueGreen) -> None:
    rds = bg.rds
    message = bg.refused(lambda: rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=bg.deployment,
                                                                  DeleteTarget=True),
                         "InvalidBlueGreenDeploymentStateFault")
    assert "SWITCHOVER_COMPLETED" in message
    assert rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=bg.deployment)[
        "BlueGreenDeployment"]["Status"] == "DELETING"
    wait_for(lambda: not rds.describe_blue_green_deployments(Filters=[
        {"Name": "blue-green-deployment-identifier", "Values": [bg.deployment]}])["BlueGreenDeployments"],
        timeout=60, what="deployment deleted")
    bg.refused(bg.describe, "BlueGreenDeploymentNotFoundFault")
    assert bg.cluster()["Status"] == "available" and bg.cluster(f"{bg.blue}-old1")["Status"] == "available"
    assert "Blue/green deployment deleted." in bg.events()


def test_ddl_on_blue_and_delete_target(bg: BlueGreen) -> None:
    """A second deployment, from the new production cluster: DDL on blue breaks Aurora PostgreSQL's
    logical replication (the deployment says so and refuses to switch over), while Aurora MySQL's
    binlog replication carries it; DeleteTarget then deletes the green cluster, blue untouched."""
    engine, rds, blue = bg.engine, bg.rds, bg.cluster()
    identifier = rds.create_blue_green_deployment(BlueGreenDeploymentName=f"{bg.blue}-ddl",
                                                  Source=blue["DBClusterArn"])["BlueGreenDeployment"][
        "BlueGreenDeploymentIdentifier"]
    bg.wait_status("AVAILABLE", identifier)
    green = bg.target(identifier)
    sql(engine, blue["Endpoint"], "ALTER TABLE items ADD COLUMN note varchar(20)")
    if engine == "aurora-postgresql":
        invalid = bg.wait_status("INVALID_CONFIGURATION", identifier, timeout=30)
        assert "DDL" in invalid["StatusDetails"]
        message = bg.refused(lambda: rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=identifier),
                             "InvalidBlueGreenDeploymentStateFault")
        assert "Replication degraded" in message
    else:
        green_endpoint = bg.cluster(green)["Endpoint"]
        wait_for(lambda: sql(engine, green_endpoint, "SELECT count(*) FROM information_schema.columns "
                                                     "WHERE table_name = 'items' AND column_name = 'note'")[0][0],
                 timeout=30, what="the DDL replicated to green")
        assert bg.status(identifier) == "AVAILABLE"
    rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=identifier, DeleteTarget=True)

    def green_gone() -> bool:
        return not any(c["DBClusterIdentifier"] == green for c in rds.describe_db_clusters()["DBClusters"])

    wait_for(green_gone, timeout=120, what="the green cluster deleted")
    sql(engine, blue["Endpoint"], "INSERT INTO items (v) VALUES (5)")  # blue untouched, still writable
    assert not rds.describe_blue_green_deployments(Filters=[
        {"Name": "blue-green-deployment-identifier", "Values": [identifier]}])["BlueGreenDeployments"]


# --- helpers -----------------------------------------------------------------------------------------------
def _hosts(path: Any) -> dict[str, str]:
    """name -> address, as the emulator's hosts file says now."""
    pairs = (line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {fields[1]: fields[0] for fields in pairs if len(fields) >= 2}


class _PhaseWatch:
    """Polls the Blue/Green metadata at `hosts` as a driver does, each host on its own thread and
    connection (opened again when dropped), and keeps each phase seen, in the order first seen.
    A thread per host: a connection stalled on one endpoint must not hide a short phase on another."""

    def __init__(self, engine: str, hosts: list[str]):
        self.engine, self.hosts, self.seen = engine, hosts, []  # type: list[str]
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(host,), daemon=True) for host in hosts]

    def _connect(self, host: str) -> Any:
        if self.engine == "aurora-mysql":
            return pymysql.connect(host=host, port=PORTS[self.engine], user=USER, password=PASSWORD,
                                   database=DATABASE, autocommit=True, connect_timeout=1, read_timeout=5)
        return psycopg.connect(host=host, port=PORTS[self.engine], user=USER, password=PASSWORD,
                               dbname=DATABASE, autocommit=True, connect_timeout=1)

    def _rows(self, conn: Any) -> list[tuple[Any, ...]]:
        if self.engine == "aurora-mysql":
            with conn.cursor() as cursor:
                cursor.execute(METADATA[self.engine])
                return list(cursor.fetchall())
        return conn.execute(METADATA[self.engine]).fetchall()

    def _run(self, host: str) -> None:
        conn = None
        while not self.stop.is_set():
            try:
                conn = conn or self._connect(host)
                rows = self._rows(conn)
            except (*SQL_ERRORS, OSError):
                _close(conn)
                conn = None
                self.stop.wait(0.02)
                continue
            with self.lock:
                self.seen += [phase for phase in sorted({row[4] for row in rows}) if phase not in self.seen]
            self.stop.wait(0.02)
        _close(conn)

    def __enter__(self) -> _PhaseWatch:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


def _close(conn: Any) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - it is gone either way
            pass


class _open_write:
    """A session holding a write transaction open (a statement run, nothing committed)."""

    def __init__(self, engine: str, host: str, statement: str, read_write: bool = False):
        self.engine, self.host, self.statement, self.read_write = engine, host, statement, read_write

    def __enter__(self) -> Any:
        if self.engine == "aurora-mysql":
            self.conn = pymysql.connect(host=self.host, port=PORTS[self.engine], user=USER, password=PASSWORD,
                                        database=DATABASE, autocommit=False, connect_timeout=5)
            with self.conn.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(self.statement)
        else:
            self.conn = psycopg.connect(host=self.host, port=PORTS[self.engine], user=USER, password=PASSWORD,
                                        dbname=DATABASE, connect_timeout=5)
            if self.read_write:
                self.conn.execute("SET TRANSACTION READ WRITE")
            self.conn.execute(self.statement)
        return self.conn

    def __exit__(self, *exc: object) -> None:
        try:
            self.conn.rollback()
        finally:
            self.conn.close()


def _transaction_age(engine: str, conn: Any) -> float:
    """How long the session's transaction has been open, asked in that session."""
    if engine == "aurora-mysql":
        with conn.cursor() as cursor:
            cursor.execute("SELECT timestampdiff(MICROSECOND, trx_started, now(6)) / 1e6 FROM "
                           "information_schema.innodb_trx WHERE trx_mysql_thread_id = CONNECTION_ID()")
            row = cursor.fetchone()
            return float(row[0]) if row else 0.0
    return float(conn.execute("SELECT extract(epoch FROM clock_timestamp() - now())").fetchone()[0])


def _refuses_writes(engine: str, host: str) -> bool:
    """Does `host` refuse a write now? (A write it still takes is taken back, unless it refuses that.)"""
    marker = -1000 - time.monotonic_ns() % 1_000_000
    try:
        sql(engine, host, f"INSERT INTO ledger (id) VALUES ({marker})", timeout=2)
        sql(engine, host, f"DELETE FROM ledger WHERE id = {marker}", timeout=2)
    except SQL_ERRORS:
        return True
    return False


def _lagging(bg: BlueGreen) -> bool:
    """Does green lack a write blue just took (the rollback left it behind until the link healed)?"""
    marker = -100 - int(time.monotonic() * 1000) % 100000
    sql(bg.engine, bg.cluster()["Endpoint"], f"INSERT INTO ledger (id) VALUES ({marker})")
    try:
        return not wait_for(lambda: marker in ids(bg.engine, bg.cluster(bg.target())["Endpoint"]), timeout=20)
    except AssertionError:
        return True


def test_an_unsafe_switchover_loses_what_had_not_crossed(bg: BlueGreen) -> None:
    """The emulator-only negative control (`set_unsafe_switchover`): a switchover that does not wait
    for green to catch up loses the writes blue had not replicated, for a game day's checker to name;
    the old blue (`-old2`, as `-old1` is taken) still holds them."""
    engine, rds, blue = bg.engine, bg.rds, bg.cluster()
    identifier = rds.create_blue_green_deployment(BlueGreenDeploymentName=f"{bg.blue}-unsafe",
                                                  Source=blue["DBClusterArn"])["BlueGreenDeployment"][
        "BlueGreenDeploymentIdentifier"]
    bg.wait_status("AVAILABLE", identifier)
    green = bg.target(identifier)
    bg.controls.add_toxic(cluster=green, link="blue-green",
                          toxic={"type": "stall", "name": "hold", "stream": "downstream", "attributes": {"percent": 100.0}})
    stranded = list(range(900001, 900006))
    for seq in stranded:
        sql(engine, blue["Endpoint"], f"INSERT INTO ledger (id) VALUES ({seq})")
    bg.controls.set_unsafe_switchover(deployment=identifier, enabled=True)
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=identifier, SwitchoverTimeout=30)
    bg.wait_status("SWITCHOVER_COMPLETED", identifier, timeout=60)
    assert not set(stranded) & ids(engine, bg.cluster()["Endpoint"])  # lost on the new production cluster
    assert set(stranded) <= ids(engine, bg.cluster(f"{bg.blue}-old2")["Endpoint"])


def test_a_forced_backtrack_of_blue_breaks_the_deployment(bg: BlueGreen) -> None:
    """Aurora MySQL: with binary logging on (the Blue/Green prerequisite) a backtrack needs Force, and a
    forced backtrack of blue breaks the deployment: "switchover is blocked"."""
    if bg.engine != "aurora-mysql":
        pytest.skip("Backtrack is Aurora MySQL's")
    rds, name = bg.rds, f"{bg.blue}bt"
    rds.create_db_cluster(DBClusterIdentifier=name, Engine=bg.engine, MasterUsername=USER, MasterUserPassword=PASSWORD,
                          DatabaseName=DATABASE, BacktrackWindow=3600, DBClusterParameterGroupName=bg.group)
    rds.create_db_instance(DBInstanceIdentifier=f"{name}-1", DBClusterIdentifier=name, Engine=bg.engine,
                           DBInstanceClass="db.r6g.large")
    wait_for(lambda: bg.cluster(name).get("EarliestBacktrackTime") and bg.cluster(name)["Status"] == "available",
             timeout=120, what="a backtrack point")
    identifier = rds.create_blue_green_deployment(BlueGreenDeploymentName=name, Source=bg.cluster(name)[
        "DBClusterArn"])["BlueGreenDeployment"]["BlueGreenDeploymentIdentifier"]
    bg.wait_status("AVAILABLE", identifier)
    point = datetime.now(UTC)
    point = point.replace(microsecond=point.microsecond // 1000 * 1000)  # BacktrackTo carries milliseconds
    message = bg.refused(lambda: rds.backtrack_db_cluster(DBClusterIdentifier=name, BacktrackTo=point),
                         "InvalidDBClusterStateFault")
    assert "Force" in message and bg.status(identifier) == "AVAILABLE"
    rds.backtrack_db_cluster(DBClusterIdentifier=name, BacktrackTo=point, Force=True)
    assert "backtracked" in bg.describe(identifier)["StatusDetails"]
    assert bg.status(identifier) == "INVALID_CONFIGURATION"
    bg.refused(lambda: rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=identifier),
               "InvalidBlueGreenDeploymentStateFault")
    wait_for(lambda: bg.cluster(name)["Status"] == "available", timeout=120, what="the backtrack done")
