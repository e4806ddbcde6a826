"""The emulator's RDS API as boto3 users meet it: shapes, waiters, events, tags, errors."""

from __future__ import annotations

import datetime as dt
import urllib.request
import xml.etree.ElementTree as ET
from typing import Any

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.exceptions import ClientError

from tests.emulator.support import PASSWORD, USER, Cluster, wait_for

NS = {"rds": "http://rds.amazonaws.com/doc/2014-10-31/"}


@pytest.fixture(scope="module")
def cluster(rds: Any) -> Any:
    from tests.emulator.support import create_cluster, delete_cluster

    made = create_cluster(rds, [1, 0, 2], prefix="api")
    yield made
    made.wait_settled()
    delete_cluster(made)


def test_cluster_created_through_boto3_passes_the_botocore_waiters(rds: Any) -> None:
    answer = rds.create_db_cluster(DBClusterIdentifier="waiters", Engine="aurora-postgresql", MasterUsername=USER,
                                   MasterUserPassword=PASSWORD, Tags=[{"Key": "team", "Value": "sre"}])
    assert answer["DBCluster"]["Status"] == "creating", "AWS answers `creating`; the waiter sees it become available"
    rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier="waiters",
                                                WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    for name, tier in (("waiters-w", 1), ("waiters-r1", 0), ("waiters-r2", 2)):
        created = rds.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier="waiters",
                                         Engine="aurora-postgresql", DBInstanceClass="db.r6g.large",
                                         PromotionTier=tier)["DBInstance"]
        assert created["DBInstanceStatus"] == "creating"
    for name in ("waiters-w", "waiters-r1", "waiters-r2"):
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=name,
                                                     WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    described = rds.describe_db_clusters(DBClusterIdentifier="waiters")["DBClusters"][0]
    assert described["Status"] == "available"
    assert described["Engine"] == "aurora-postgresql"
    assert described["EngineVersion"].startswith("15.")
    assert described["Endpoint"] and described["ReaderEndpoint"] and described["Endpoint"] != described["ReaderEndpoint"]
    assert described["Port"] == 5432
    members = {m["DBInstanceIdentifier"]: m for m in described["DBClusterMembers"]}
    assert members["waiters-w"]["IsClusterWriter"] is True
    assert not members["waiters-r1"]["IsClusterWriter"] and not members["waiters-r2"]["IsClusterWriter"]
    assert {n: m["PromotionTier"] for n, m in members.items()} == {"waiters-w": 1, "waiters-r1": 0, "waiters-r2": 2}
    assert described["TagList"] == [{"Key": "team", "Value": "sre"}]
    assert "MasterUserPassword" not in described
    instances = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": ["waiters"]}])["DBInstances"]
    assert {i["DBInstanceIdentifier"] for i in instances} == set(members)
    assert len({i["AvailabilityZone"] for i in instances}) == 3, "instances spread over the cluster's zones"
    assert len({i["Endpoint"]["Address"] for i in instances}) == 3
    from tests.emulator.support import delete_cluster

    delete_cluster(Cluster(rds, "waiters", list(members)))
    with pytest.raises(rds.exceptions.DBClusterNotFoundFault):
        rds.describe_db_clusters(DBClusterIdentifier="waiters")


def test_unknown_and_duplicate_resources_get_the_aws_error_codes(rds: Any, cluster: Cluster) -> None:
    with pytest.raises(rds.exceptions.DBClusterNotFoundFault) as err:
        rds.describe_db_clusters(DBClusterIdentifier="no-such-cluster")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(rds.exceptions.DBClusterAlreadyExistsFault):
        rds.create_db_cluster(DBClusterIdentifier=cluster.identifier, Engine="aurora-postgresql",
                              MasterUsername=USER, MasterUserPassword=PASSWORD)
    with pytest.raises(rds.exceptions.DBInstanceAlreadyExistsFault):
        rds.create_db_instance(DBInstanceIdentifier=cluster.instances[0], DBClusterIdentifier=cluster.identifier,
                               Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
    with pytest.raises(rds.exceptions.DBInstanceNotFoundFault) as err:
        rds.reboot_db_instance(DBInstanceIdentifier="no-such-instance")
    assert err.value.response["Error"]["Code"] == "DBInstanceNotFound"
    with pytest.raises(rds.exceptions.DBClusterNotFoundFault):
        rds.failover_db_cluster(DBClusterIdentifier="no-such-cluster")


def test_failover_errors_follow_the_aws_error_classes(rds: Any, cluster: Cluster) -> None:
    with pytest.raises(rds.exceptions.InvalidDBInstanceStateFault) as err:
        rds.failover_db_cluster(DBClusterIdentifier=cluster.identifier, TargetDBInstanceIdentifier="nope")
    assert err.value.response["Error"]["Code"] == "InvalidDBInstanceState"
    assert "nope" in err.value.response["Error"]["Message"]
    rds.create_db_cluster(DBClusterIdentifier="lonely", Engine="aurora-postgresql", MasterUsername=USER,
                          MasterUserPassword=PASSWORD)
    rds.create_db_instance(DBInstanceIdentifier="lonely-1", DBClusterIdentifier="lonely",
                           Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
    lonely = Cluster(rds, "lonely", ["lonely-1"])
    lonely.wait_settled()
    with pytest.raises(rds.exceptions.InvalidDBClusterStateFault) as err:
        rds.failover_db_cluster(DBClusterIdentifier="lonely")
    assert "no Aurora Replica" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        rds.reboot_db_instance(DBInstanceIdentifier="lonely-1", ForceFailover=True)
    assert err.value.response["Error"]["Code"] == "InvalidParameterCombination"
    with pytest.raises(rds.exceptions.InvalidDBClusterStateFault):
        rds.delete_db_cluster(DBClusterIdentifier="lonely", SkipFinalSnapshot=True)
    from tests.emulator.support import delete_cluster

    delete_cluster(lonely)


@pytest.mark.parametrize("change,code,words", [
    ({"DBClusterIdentifier": "bad--name"}, "InvalidParameterValue", "not a valid identifier"),
    ({"Engine": "oracle-ee"}, "InvalidParameterValue", "Invalid DB engine"),
    ({"EngineVersion": "11.9"}, "InvalidParameterCombination", "Cannot find version 11.9"),
    ({"MasterUserPassword": "short"}, "InvalidParameterValue", "MasterUserPassword"),
    ({"BacktrackWindow": 3600}, "InvalidParameterValue", "Backtrack"),
    ({"AvailabilityZones": ["eu-west-1a"]}, "InvalidParameterValue", "eu-west-1a"),
])
def test_bad_cluster_parameters_are_rejected_with_a_specific_error(rds: Any, change: dict[str, Any], code: str,
                                                                   words: str) -> None:
    params = {"DBClusterIdentifier": "badparams", "Engine": "aurora-postgresql", "MasterUsername": USER,
              "MasterUserPassword": PASSWORD, **change}
    with pytest.raises(ClientError) as err:
        rds.create_db_cluster(**params)
    assert err.value.response["Error"]["Code"] == code
    assert words in err.value.response["Error"]["Message"]
    assert "short" not in err.value.response["Error"]["Message"], "a password is never echoed"
    assert not any(c["DBClusterIdentifier"] == "badparams" for c in rds.describe_db_clusters()["DBClusters"])


def _raw(emulator: Any, body: bytes, sign: bool, secret: str | None = None) -> tuple[int, ET.Element]:
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=emulator.endpoint_url + "/", data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    if sign:
        credentials = botocore.credentials.Credentials(emulator.access_key, secret or emulator.secret_for(emulator.access_key))
        botocore.auth.SigV4Auth(credentials, "rds", "us-east-1").add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(http, timeout=10) as response:
            return response.status, ET.fromstring(response.read())
    except urllib.error.HTTPError as err:
        return err.code, ET.fromstring(err.read())


@pytest.mark.parametrize("body,sign,secret,status,code", [
    (b"Action=DescribeDBClusters&Version=2014-10-31", False, None, 403, "MissingAuthenticationToken"),
    (b"Action=DescribeDBClusters&Version=2014-10-31", True, "wrong-secret", 403, "SignatureDoesNotMatch"),
    (b"Version=2014-10-31", True, None, 400, "MissingAction"),
    (b"Action=LaunchRockets&Version=2014-10-31", True, None, 400, "InvalidAction"),
    (b"Action=DescribeDBClusters&MaxRecords=lots", True, None, 400, "InvalidParameterValue"),
    (b"Action=CreateDBCluster&Engine=aurora-postgresql", True, None, 400, "MissingParameter"),
    (b"Action=DescribeDBClusters&Filters.Filter.zero.Name=x", True, None, 400, "MalformedQueryString"),
    (b"Action=CreateDBSnapshot&DBSnapshotIdentifier=s&DBInstanceIdentifier=i", True, None, 400, "InvalidAction"),
])
def test_malformed_or_unsigned_requests_get_an_xml_error_and_the_emulator_stays_up(
        emulator: Any, rds: Any, body: bytes, sign: bool, secret: str | None, status: int, code: str) -> None:
    got_status, xml = _raw(emulator, body, sign, secret)
    assert got_status == status
    assert xml.tag == "{%s}ErrorResponse" % NS["rds"]
    assert xml.findtext("rds:Error/rds:Code", namespaces=NS) == code
    assert xml.findtext("rds:Error/rds:Message", namespaces=NS)
    assert xml.findtext("rds:RequestId", namespaces=NS)
    assert rds.describe_db_clusters()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_region_comes_from_the_sigv4_credential_scope(emulator: Any, cluster: Cluster) -> None:
    elsewhere = emulator.client(region="eu-west-1")
    assert elsewhere.describe_db_clusters()["DBClusters"] == []
    with pytest.raises(elsewhere.exceptions.DBClusterNotFoundFault):
        elsewhere.describe_db_clusters(DBClusterIdentifier=cluster.identifier)


def test_tags_can_be_added_listed_and_removed(rds: Any, cluster: Cluster) -> None:
    arn = cluster.describe()["DBClusterArn"]
    assert arn == f"arn:aws:rds:us-east-1:123456789012:cluster:{cluster.identifier}"
    rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "gameday", "Value": "allowed"}, {"Key": "x", "Value": "1"}])
    assert {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=arn)["TagList"]} == \
        {"gameday": "allowed", "x": "1"}
    rds.remove_tags_from_resource(ResourceName=arn, TagKeys=["x"])
    assert rds.list_tags_for_resource(ResourceName=arn)["TagList"] == [{"Key": "gameday", "Value": "allowed"}]
    instance_arn = cluster.instance(cluster.instances[0])["DBInstanceArn"]
    rds.add_tags_to_resource(ResourceName=instance_arn, Tags=[{"Key": "role", "Value": "first"}])
    assert rds.list_tags_for_resource(ResourceName=instance_arn)["TagList"] == [{"Key": "role", "Value": "first"}]
    with pytest.raises(rds.exceptions.DBClusterNotFoundFault):
        rds.list_tags_for_resource(ResourceName="arn:aws:rds:us-east-1:123456789012:cluster:ghost")
    with pytest.raises(ClientError) as err:
        rds.list_tags_for_resource(ResourceName="not-an-arn")
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_modify_instance_changes_the_promotion_tier(rds: Any, cluster: Cluster) -> None:
    name = cluster.instances[2]
    rds.modify_db_instance(DBInstanceIdentifier=name, PromotionTier=7, ApplyImmediately=True)
    assert cluster.instance(name)["PromotionTier"] == 7
    member = next(m for m in cluster.describe()["DBClusterMembers"] if m["DBInstanceIdentifier"] == name)
    assert member["PromotionTier"] == 7
    with pytest.raises(ClientError) as err:
        rds.modify_db_instance(DBInstanceIdentifier=name, PromotionTier=16)
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
    rds.modify_db_instance(DBInstanceIdentifier=name, PromotionTier=2, ApplyImmediately=True)


def test_describe_events_filters_by_time_source_and_category(rds: Any, cluster: Cluster) -> None:
    before = dt.datetime.now(dt.timezone.utc)
    rds.failover_db_cluster(DBClusterIdentifier=cluster.identifier)
    assert cluster.describe()["Status"] in ("failing-over", "available")

    def completed() -> list[dict[str, Any]]:
        events = rds.describe_events(SourceType="db-cluster", SourceIdentifier=cluster.identifier,
                                     StartTime=before, EventCategories=["failover"])["Events"]
        return events if any(e["Message"].startswith("Completed failover") for e in events) else []

    events = wait_for(completed, what="the failover-completed event")
    target = next(m for m in cluster.describe()["DBClusterMembers"] if m["IsClusterWriter"])["DBInstanceIdentifier"]
    messages = [e["Message"] for e in events]
    assert messages[0] in (f"Started cross AZ failover to DB instance: {target}.",
                           f"Started same AZ failover to DB instance: {target}.")
    assert messages[-1] == f"Completed failover to DB instance: {target}."
    assert all(e["EventCategories"] == ["failover"] and e["SourceType"] == "db-cluster" for e in events)
    assert all(e["SourceArn"] == cluster.describe()["DBClusterArn"] for e in events)
    assert rds.describe_events(SourceType="db-cluster", SourceIdentifier=cluster.identifier,
                               EndTime=before - dt.timedelta(hours=1), Duration=5)["Events"] == []
    assert not any(e["Message"].startswith("Completed failover") for e in rds.describe_events(
        SourceType="db-instance", StartTime=before)["Events"])
    with pytest.raises(ClientError) as err:
        rds.describe_events(SourceIdentifier=cluster.identifier)
    assert err.value.response["Error"]["Code"] == "InvalidParameterCombination"
    cluster.wait_settled()


def test_custom_endpoints_are_listed_with_the_built_in_ones_and_can_be_deleted(rds: Any, cluster: Cluster) -> None:
    reader = cluster.readers()[0]
    created = rds.create_db_cluster_endpoint(DBClusterIdentifier=cluster.identifier, DBClusterEndpointIdentifier="reporting",
                                             EndpointType="READER", StaticMembers=[reader])
    assert created["CustomEndpointType"] == "READER" and created["StaticMembers"] == [reader]
    endpoints = rds.describe_db_cluster_endpoints(DBClusterIdentifier=cluster.identifier)["DBClusterEndpoints"]
    assert {e["EndpointType"] for e in endpoints} == {"WRITER", "READER", "CUSTOM"}
    custom = next(e for e in endpoints if e["EndpointType"] == "CUSTOM")
    assert custom["Endpoint"] in cluster.describe()["CustomEndpoints"]
    with cluster.connect(custom["Endpoint"]) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        assert conn.execute("SELECT current_setting('cluster_name')").fetchone()[0] == reader
    with pytest.raises(rds.exceptions.DBClusterEndpointAlreadyExistsFault):
        rds.create_db_cluster_endpoint(DBClusterIdentifier=cluster.identifier, DBClusterEndpointIdentifier="reporting",
                                       EndpointType="ANY")
    with pytest.raises(rds.exceptions.DBInstanceNotFoundFault):
        rds.create_db_cluster_endpoint(DBClusterIdentifier=cluster.identifier, DBClusterEndpointIdentifier="ghosts",
                                       EndpointType="ANY", StaticMembers=["ghost-1"])
    rds.delete_db_cluster_endpoint(DBClusterEndpointIdentifier="reporting")
    assert cluster.describe()["CustomEndpoints"] == []
    with pytest.raises(rds.exceptions.DBClusterEndpointNotFoundFault):
        rds.delete_db_cluster_endpoint(DBClusterEndpointIdentifier="reporting")


def test_the_master_user_may_be_postgres_as_the_console_suggests(rds: Any) -> None:
    """Found with psql: the console's default master user name was refused."""
    import os
    import subprocess

    from harness.emulator.engines.postgres import PgBinaries
    from tests.emulator.support import delete_cluster

    rds.create_db_cluster(DBClusterIdentifier="pgmaster", Engine="aurora-postgresql", MasterUsername="postgres",
                          MasterUserPassword=PASSWORD)
    rds.create_db_instance(DBInstanceIdentifier="pgmaster-1", DBClusterIdentifier="pgmaster",
                           Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
    cluster = Cluster(rds, "pgmaster", ["pgmaster-1"])
    try:
        cluster.wait_settled(120)
        psql = [PgBinaries.find()("psql"), "-X", "-A", "-t", "-h", cluster.endpoint, "-U", "postgres", "-d", "postgres",
                "-c", "SELECT current_user, pg_has_role('postgres', 'rds_superuser', 'member')"]
        done = subprocess.run(psql, capture_output=True, text=True, timeout=30,
                              env={**os.environ, "PGPASSWORD": PASSWORD})
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "postgres|t"
    finally:
        delete_cluster(cluster)


def test_the_master_user_creates_the_extensions_rds_extensions_lists(cluster: Cluster) -> None:
    """Found with psql: the master user could not create pg_stat_statements (nor, in the postgres
    database, pgcrypto), and rds.extensions listed extensions this machine does not have."""
    import os
    import subprocess

    from harness.emulator.engines.postgres import PgBinaries
    from harness.emulator.engines.postgres_surface import installed_extensions
    from tests.emulator.support import DATABASE

    bins = PgBinaries.find()

    def psql(database: str, sql: str) -> str:
        done = subprocess.run([bins("psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", cluster.endpoint,
                               "-U", USER, "-d", database, "-c", sql],
                              capture_output=True, text=True, timeout=30, env={**os.environ, "PGPASSWORD": PASSWORD})
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    listed = [e.strip() for e in psql("postgres", "SHOW rds.extensions").split(",")]
    installed = installed_extensions(bins.bindir)
    assert "aurora_stat_utils" in listed, "drivers recognise Aurora PostgreSQL by it"
    assert [e for e in listed if e != "aurora_stat_utils" and e not in installed] == []
    assert {"pg_stat_statements", "pgcrypto"} <= set(listed)
    for database in ("postgres", DATABASE):
        psql(database, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; CREATE EXTENSION IF NOT EXISTS pgcrypto")
        assert psql(database, "SELECT length(digest('x', 'sha256')) > 0, count(*) >= 0 FROM pg_stat_statements") \
            == "t|t"


def test_what_provisioning_tools_ask_first_is_answered_with_what_the_emulator_has(rds: Any) -> None:
    versions = [v for page in rds.get_paginator("describe_db_engine_versions").paginate(Engine="aurora-postgresql")
                for v in page["DBEngineVersions"]]
    assert [v["EngineVersion"] for v in versions] == ["15.10", "15.12", "15.13"]
    assert versions[0]["ValidUpgradeTarget"][0]["EngineVersion"] == "15.12"
    default = rds.describe_db_engine_versions(Engine="aurora-mysql", DefaultOnly=True)["DBEngineVersions"]
    assert [v["EngineVersion"] for v in default] == ["8.0.mysql_aurora.3.05.2"]
    options = rds.describe_orderable_db_instance_options(Engine="aurora-mysql", DBInstanceClass="db.r6g.large")
    assert {o["EngineVersion"] for o in options["OrderableDBInstanceOptions"]} == {
        "8.0.mysql_aurora.3.05.2", "8.0.mysql_aurora.3.08.0"}
    assert rds.describe_db_subnet_groups(DBSubnetGroupName="default")["DBSubnetGroups"][0]["SubnetGroupStatus"] \
        == "Complete"
    rds.create_db_subnet_group(DBSubnetGroupName="gd-private", DBSubnetGroupDescription="game days",
                               SubnetIds=["subnet-1", "subnet-2"])
    assert "gd-private" in {g["DBSubnetGroupName"] for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]}
    with pytest.raises(rds.exceptions.DBSubnetGroupAlreadyExistsFault):
        rds.create_db_subnet_group(DBSubnetGroupName="gd-private", DBSubnetGroupDescription="again",
                                   SubnetIds=["subnet-1", "subnet-2"])
    rds.delete_db_subnet_group(DBSubnetGroupName="gd-private")
    with pytest.raises(rds.exceptions.DBSubnetGroupNotFoundFault):
        rds.describe_db_subnet_groups(DBSubnetGroupName="gd-private")


@pytest.mark.parametrize("change,code", [
    ({"GlobalClusterIdentifier": "no-such-global"}, "GlobalClusterNotFoundFault"),
    ({"EngineMode": "serverless"}, "InvalidParameterValue"),
    ({"ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 2}}, "InvalidParameterCombination"),
    ({"DBSubnetGroupName": "no-such-group"}, "DBSubnetGroupNotFoundFault"),
])
def test_what_the_emulator_does_not_do_is_refused_not_ignored(rds: Any, change: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as err:
        rds.create_db_cluster(DBClusterIdentifier="unemulated", Engine="aurora-postgresql", MasterUsername=USER,
                              MasterUserPassword=PASSWORD, **change)
    assert err.value.response["Error"]["Code"] == code
    assert not any(c["DBClusterIdentifier"] == "unemulated" for c in rds.describe_db_clusters()["DBClusters"])


def test_deleting_the_writer_shows_deleting_and_the_waiter_sees_it_go(rds: Any, cluster_factory: Any) -> None:
    """Found with boto3's db_instance_deleted waiter, which failed at once on `rebooting`."""
    two = cluster_factory([1, 1])
    writer = two.writer()
    rds.delete_db_instance(DBInstanceIdentifier=writer, SkipFinalSnapshot=True)
    seen = set()
    while True:
        try:
            seen.add(rds.describe_db_instances(DBInstanceIdentifier=writer)["DBInstances"][0]["DBInstanceStatus"])
        except rds.exceptions.DBInstanceNotFoundFault:
            break
    assert seen == {"deleting"}, seen
    rds.get_waiter("db_instance_deleted").wait(DBInstanceIdentifier=writer, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    two.instances.remove(writer)
    assert two.writer() != writer
