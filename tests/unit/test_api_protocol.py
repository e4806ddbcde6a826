"""The RDS Query codec, checked against botocore's own serializer and parsers.

botocore is the reference: what it sends must parse to the same parameters, and what
we answer must parse (for boto3) to the values we meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from harness.emulator.api import (
    ApiError,
    fault,
    parse_request,
    rds_model,
    serialize_error,
    serialize_response,
)

UTC = timezone.utc
ARN = "arn:aws:rds:us-east-1:123456789012:cluster:orders"


def wire_body(operation: str, params: dict[str, Any]) -> str:
    """The form body botocore would put on the wire for ``operation(**params)``."""
    operation_model = rds_model().operation_model(operation)
    serialized = create_serializer("query").serialize_to_request(params, operation_model)
    return AWSRequest(method="POST", url="http://localhost/", data=serialized["body"]).prepare().body


def parse_answer(operation: str | None, body: bytes, status: int = 200) -> dict[str, Any]:
    """What botocore makes of an answer body, as boto3 would see it."""
    shape = rds_model().operation_model(operation).output_shape if operation else None
    return create_parser("query").parse({"status_code": status, "headers": {}, "body": body}, shape)


def api_error(body: str, query_string: str = "") -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_request(body, query_string)
    return caught.value


TAGS = [{"Key": "team", "Value": "payments"}, {"Key": "env", "Value": "game day & <chaos>"}]

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    (
        "CreateDBCluster",
        {
            "DBClusterIdentifier": "orders",
            "Engine": "aurora-postgresql",
            "EngineVersion": "16.4",
            "Port": 5432,
            "MasterUsername": "admin",
            "MasterUserPassword": "p@ss w+rd&=%",
            "StorageEncrypted": True,
            "DeletionProtection": False,
            "BackupRetentionPeriod": 7,
            "AvailabilityZones": ["us-east-1a", "us-east-1b", "us-east-1c"],
            "VpcSecurityGroupIds": ["sg-0123", "sg-4567"],
            "EnableCloudwatchLogsExports": ["postgresql"],
            "Tags": TAGS,
            "ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 16.0},
        },
    ),
    (
        "DescribeDBClusters",
        {
            "Filters": [
                {"Name": "engine", "Values": ["aurora-postgresql", "aurora-mysql"]},
                {"Name": "db-cluster-id", "Values": ["orders"]},
            ],
            "MaxRecords": 20,
            "Marker": "page-2",
            "IncludeShared": True,
        },
    ),
    (
        "DescribeEvents",
        {
            "SourceIdentifier": "orders",
            "SourceType": "db-cluster",
            "StartTime": datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
            "EndTime": datetime(2026, 11, 24, 11, 30, 15, 123456, tzinfo=UTC),
            "Duration": 90,
            "EventCategories": ["failover", "notification"],
        },
    ),
    (
        "CreateDBInstance",
        {
            "DBInstanceIdentifier": "orders-1",
            "DBInstanceClass": "db.r6g.large",
            "Engine": "aurora-postgresql",
            "DBClusterIdentifier": "orders",
            "AvailabilityZone": "us-east-1a",
            "PromotionTier": 1,
            "PubliclyAccessible": False,
            "Tags": TAGS,
        },
    ),
    ("ModifyDBInstance", {"DBInstanceIdentifier": "orders-2", "PromotionTier": 0, "ApplyImmediately": True}),
    ("FailoverDBCluster", {"DBClusterIdentifier": "orders", "TargetDBInstanceIdentifier": "orders-2"}),
    (
        "CreateDBClusterEndpoint",
        {
            "DBClusterIdentifier": "orders",
            "DBClusterEndpointIdentifier": "reporting",
            "EndpointType": "READER",
            "StaticMembers": ["orders-2", "orders-3"],
            "ExcludedMembers": ["orders-1"],
        },
    ),
    ("AddTagsToResource", {"ResourceName": ARN, "Tags": TAGS}),
    ("RemoveTagsFromResource", {"ResourceName": ARN, "TagKeys": ["team", "env"]}),
    ("ModifyDBCluster", {"DBClusterIdentifier": "orders", "VpcSecurityGroupIds": []}),
    (
        "CreateIntegration",
        {
            "SourceArn": ARN,
            "TargetArn": "arn:aws:redshift:us-east-1:123456789012:namespace:x",
            "IntegrationName": "zero-etl",
            "AdditionalEncryptionContext": {"purpose": "analytics", "team": "payments"},
        },
    ),
    ("DescribeDBEngineVersions", {}),
]


@pytest.mark.parametrize(("operation", "params"), REQUESTS, ids=[op for op, _ in REQUESTS])
def test_parses_what_botocore_sends(operation: str, params: dict[str, Any]) -> None:
    assert parse_request(wire_body(operation, params).encode()) == (operation, params)


def test_reads_botocore_wire_names() -> None:
    body = wire_body("DescribeDBClusters", REQUESTS[1][1])
    assert "Filters.Filter.1.Values.Value.2=aurora-mysql" in body
    body = wire_body("CreateDBCluster", REQUESTS[0][1])
    assert "Tags.Tag.2.Key=env" in body and "VpcSecurityGroupIds.VpcSecurityGroupId.1=sg-0123" in body


def test_list_items_are_ordered_by_index_not_position() -> None:
    body = "Action=RemoveTagsFromResource&ResourceName=r&TagKeys.member.10=j&TagKeys.member.2=b&TagKeys.member.1=a"
    assert parse_request(body)[1]["TagKeys"] == ["a", "b", "j"]


def test_merges_query_string_and_ignores_envelope_auth_and_unknown_parameters() -> None:
    operation, params = parse_request(
        b"DBClusterIdentifier=orders&Bogus=1",
        "Action=DescribeDBClusters&Version=2014-10-31&X-Amz-Date=20261124T100000Z&Unknown.Nested.1=x",
    )
    assert (operation, params) == ("DescribeDBClusters", {"DBClusterIdentifier": "orders"})


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-24T10:00:00Z",
        "2026-11-24T10:00:00.000Z",
        "2026-11-24T12:00:00+02:00",
        "2026-11-24T10:00:00",
        "1795514400",
    ],
)
def test_timestamp_formats(text: str) -> None:
    start = parse_request(f"Action=DescribeEvents&StartTime={text.replace('+', '%2B')}")[1]["StartTime"]
    assert start == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert start.tzinfo is not None


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ("Version=2014-10-31", "MissingAction", ["Action"]),
        ("Action=DescribeUnicorns", "InvalidAction", ["DescribeUnicorns"]),
        ("Action=CreateDBCluster&Engine=aurora-postgresql", "MissingParameter", ["DBClusterIdentifier"]),
        ("Action=RemoveTagsFromResource&ResourceName=r", "MissingParameter", ["TagKeys"]),
        ("Action=DescribeDBClusters&Filters.Filter.1.Name=engine", "MissingParameter", ["Filters.Filter.1.Values"]),
        ("Action=DescribeDBClusters&MaxRecords=abc", "InvalidParameterValue", ["MaxRecords", "abc"]),
        ("Action=DescribeDBClusters&MaxRecords=1.5", "InvalidParameterValue", ["MaxRecords", "1.5"]),
        ("Action=DescribeDBClusters&IncludeShared=maybe", "InvalidParameterValue", ["IncludeShared", "maybe"]),
        ("Action=DescribeEvents&StartTime=yesterday", "InvalidParameterValue", ["StartTime", "yesterday"]),
        ("Action=AddTagsToResource&ResourceName=r&Tags.Tag.x.Key=a", "MalformedQueryString", ["Tags.Tag.x"]),
        ("Action=AddTagsToResource&ResourceName=r&Tags.Tag.0.Key=a", "MalformedQueryString", ["Tags.Tag.0"]),
        ("Action=AddTagsToResource&ResourceName=r&Tags.member.1.Key=a", "MalformedQueryString", ["Tags.Tag"]),
        ("Action=AddTagsToResource&ResourceName=r&Tags.Tag.1=a", "InvalidParameterValue", ["Tags.Tag.1"]),
    ],
)
def test_rejects_bad_requests(body: str, code: str, words: list[str]) -> None:
    err = api_error(body)
    assert (err.code, err.status, err.sender) == (code, 400, True)
    for word in words:
        assert word in err.message


def test_case_insensitive_booleans() -> None:
    assert parse_request("Action=DescribeDBClusters&IncludeShared=TRUE")[1] == {"IncludeShared": True}


# ------------------------------------------------------------------ answers

CREATED = datetime(2026, 11, 24, 10, 0, 0, 123000, tzinfo=UTC)
CLUSTER: dict[str, Any] = {
    "DBClusterIdentifier": "orders",
    "DBClusterArn": ARN,
    "Engine": "aurora-postgresql",
    "Status": "available",
    "Port": 5432,
    "MultiAZ": True,
    "DeletionProtection": False,
    "ClusterCreateTime": CREATED,
    "Endpoint": "orders.cluster-abc.us-east-1.rds.amazonaws.com",
    "CustomEndpoints": ["reporting.cluster-custom-abc.us-east-1.rds.amazonaws.com"],
    "AvailabilityZones": ["us-east-1a", "us-east-1b"],
    "DBClusterMembers": [
        {"DBInstanceIdentifier": "orders-1", "IsClusterWriter": True, "PromotionTier": 1},
        {"DBInstanceIdentifier": "orders-2", "IsClusterWriter": False, "PromotionTier": 0},
    ],
    "TagList": TAGS,
    "ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 16.0},
}
ENDPOINT = {
    "DBClusterEndpointIdentifier": "reporting",
    "DBClusterIdentifier": "orders",
    "Endpoint": "reporting.cluster-custom-abc.us-east-1.rds.amazonaws.com",
    "Status": "available",
    "EndpointType": "CUSTOM",
    "CustomEndpointType": "READER",
    "StaticMembers": ["orders-2"],
    "ExcludedMembers": [],
}


def test_cluster_answer_round_trips() -> None:
    body = serialize_response("CreateDBCluster", {"DBCluster": CLUSTER}, "req-1")
    parsed = parse_answer("CreateDBCluster", body)
    assert parsed["DBCluster"] == CLUSTER
    assert parsed["DBCluster"]["DBClusterMembers"][0]["IsClusterWriter"] is True
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"


def test_answer_wire_format() -> None:
    body = serialize_response("DescribeDBClusters", {"DBClusters": [CLUSTER]}, "req-1").decode()
    assert body.startswith('<DescribeDBClustersResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">')
    assert "<DescribeDBClustersResult><DBClusters><DBCluster>" in body
    assert "<ClusterCreateTime>2026-11-24T10:00:00.123Z</ClusterCreateTime>" in body
    assert "<IsClusterWriter>true</IsClusterWriter>" in body
    assert "<AvailabilityZones><AvailabilityZone>us-east-1a</AvailabilityZone>" in body
    assert "<CustomEndpoints><member>" in body
    assert "game day &amp; &lt;chaos&gt;" in body


def test_events_answer_round_trips_and_skips_none() -> None:
    event = {
        "SourceIdentifier": "orders",
        "SourceType": "db-cluster",
        "Message": "Started cross AZ failover to DB instance: orders-2",
        "EventCategories": ["failover"],
        "Date": datetime(2026, 11, 24, 10, 5, tzinfo=UTC),
        "SourceArn": ARN,
    }
    body = serialize_response("DescribeEvents", {"Events": [event, event], "Marker": None}, "req-2")
    parsed = parse_answer("DescribeEvents", body)
    assert parsed["Events"] == [event, event]
    assert "Marker" not in parsed


def test_endpoints_answer_round_trips_including_empty_list() -> None:
    body = serialize_response("DescribeDBClusterEndpoints", {"DBClusterEndpoints": [ENDPOINT]}, "req-3")
    assert parse_answer("DescribeDBClusterEndpoints", body)["DBClusterEndpoints"] == [ENDPOINT]


def test_answer_without_output_shape() -> None:
    body = serialize_response("AddTagsToResource", None, "req-4")
    assert body == (
        b'<AddTagsToResourceResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
        b"<ResponseMetadata><RequestId>req-4</RequestId></ResponseMetadata></AddTagsToResourceResponse>"
    )
    parsed = parse_answer("AddTagsToResource", body)
    assert list(parsed) == ["ResponseMetadata"]
    assert parsed["ResponseMetadata"]["RequestId"] == "req-4"


@dataclass
class Member:
    DBInstanceIdentifier: str
    IsClusterWriter: bool


@dataclass
class Cluster:
    DBClusterIdentifier: str
    DBClusterMembers: list[Member]
    ClusterCreateTime: datetime


def test_answer_from_objects_and_other_timezones() -> None:
    paris = timezone(timedelta(hours=1))
    created = datetime(2026, 11, 24, 11, 0, 0, 999999, tzinfo=paris)
    cluster = Cluster("orders", [Member("orders-1", True)], created)
    body = serialize_response("FailoverDBCluster", {"DBCluster": cluster}, "r")
    parsed = parse_answer("FailoverDBCluster", body)
    assert parsed["DBCluster"] == {
        "DBClusterIdentifier": "orders",
        "DBClusterMembers": [{"DBInstanceIdentifier": "orders-1", "IsClusterWriter": True}],
        "ClusterCreateTime": datetime(2026, 11, 24, 10, 0, 0, 999000, tzinfo=UTC),
    }


def test_map_answer_round_trips() -> None:
    integration = {"IntegrationName": "zero-etl", "AdditionalEncryptionContext": {"a": "1", "b": "2"}}
    parsed = parse_answer("CreateIntegration", serialize_response("CreateIntegration", integration, "r"))
    assert parsed["AdditionalEncryptionContext"] == {"a": "1", "b": "2"}


# ------------------------------------------------------------------- errors


def test_error_answers_parse_as_boto3_exceptions() -> None:
    client = boto3.client("rds", region_name="us-east-1")
    cases = [
        ("DBClusterNotFoundFault", "DBClusterNotFoundFault", 404, client.exceptions.DBClusterNotFoundFault),
        (
            "InvalidDBInstanceStateFault",
            "InvalidDBInstanceState",
            400,
            client.exceptions.InvalidDBInstanceStateFault,
        ),
        ("DBInstanceNotFoundFault", "DBInstanceNotFound", 404, client.exceptions.DBInstanceNotFoundFault),
    ]
    for name, code, status, exception in cases:
        err = fault(name, f"{name} happened.")
        assert (err.code, err.status, err.sender) == (code, status, True)
        parsed = parse_answer(None, serialize_error(err, "req-5"), err.status)
        assert parsed["Error"] == {"Type": "Sender", "Code": code, "Message": f"{name} happened."}
        assert parsed["ResponseMetadata"]["RequestId"] == "req-5"
        assert client.exceptions.from_code(parsed["Error"]["Code"]) is exception


@pytest.mark.parametrize(
    ("name", "status", "sender"),
    [
        ("InvalidParameterValue", 400, True),
        ("MalformedQueryString", 400, True),
        ("MissingAuthenticationToken", 403, True),
        ("SignatureDoesNotMatch", 403, True),
        ("RequestExpired", 400, True),
        ("InternalFailure", 500, False),
        ("ServiceUnavailable", 503, False),
    ],
)
def test_common_errors(name: str, status: int, sender: bool) -> None:
    err = fault(name, "boom")
    assert (err.code, err.message, err.status, err.sender) == (name, "boom", status, sender)
    parsed = parse_answer(None, serialize_error(err, "r"), status)
    assert parsed["Error"]["Type"] == ("Sender" if sender else "Receiver")


def test_unknown_fault_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        fault("DBClusterNotFound", "wire codes are not fault names")


# -------------------------------------------------------- through boto3 itself


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def test_boto3_client_against_the_codec() -> None:
    """A boto3 user's view: real client in, real client out, nothing on the network."""
    client = boto3.client(
        "rds",
        endpoint_url="http://localhost:4566",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )
    seen: list[tuple[str, dict[str, Any]]] = []

    def answer(request: AWSRequest, **_: Any) -> AWSResponse:
        operation, params = parse_request(request.body)
        seen.append((operation, params))
        if params.get("DBClusterIdentifier") == "missing":
            err = fault("DBClusterNotFoundFault", "DBCluster missing not found.")
            return AWSResponse(request.url, err.status, {}, _Raw(serialize_error(err, "req-e")))
        body = serialize_response(operation, {"DBClusters": [CLUSTER]}, "req-o")
        return AWSResponse(request.url, 200, {}, _Raw(body))

    client.meta.events.register("before-send.rds.*", answer)
    filters = [{"Name": "engine", "Values": ["aurora-postgresql"]}]
    assert client.describe_db_clusters(Filters=filters)["DBClusters"] == [CLUSTER]
    assert seen[-1] == ("DescribeDBClusters", {"Filters": filters})

    with pytest.raises(client.exceptions.DBClusterNotFoundFault) as caught:
        client.describe_db_clusters(DBClusterIdentifier="missing")
    assert caught.value.response["Error"]["Message"] == "DBCluster missing not found."
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
