"""The request log, through boto3: every RDS call the emulator answered, by operation and region,
never with its parameters; read and cleared through the controls, in-process and over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from harness.emulator.controls import EmulatorControlClient
from harness.emulator.request_log import is_mutating

SECRET = "do-not-log-me-1"


def test_every_rds_call_is_logged_by_name_and_region_never_with_its_values(emulator: Any, rds: Any) -> None:
    emulator.controls.clear_request_log()
    before = datetime.now(UTC)
    rds.describe_db_clusters()
    with pytest.raises(ClientError):  # refused, but it reached the emulator: a dry run must not send it
        rds.create_db_cluster(DBClusterIdentifier="not--valid", Engine="aurora-postgresql", MasterUsername="master",
                              MasterUserPassword=SECRET)
    emulator.client("eu-west-1").describe_events(Duration=5)
    after = datetime.now(UTC)

    entries = emulator.controls.request_log()
    assert [(e["region"], e["operation"]) for e in entries] == [
        ("us-east-1", "DescribeDBClusters"), ("us-east-1", "CreateDBCluster"), ("eu-west-1", "DescribeEvents")]
    assert [is_mutating(e["operation"]) for e in entries] == [False, True, False]
    times = [datetime.fromisoformat(e["time"]) for e in entries]
    assert before <= times[0] <= times[1] <= times[2] <= after and times[0].utcoffset().total_seconds() == 0
    logged = json.dumps(entries)
    assert SECRET not in logged and "not--valid" not in logged and "master" not in logged
    assert set(entries[0]) == {"index", "time", "region", "operation"}
    assert emulator.controls.request_log(after=entries[0]["index"]) == entries[1:]


def test_the_request_log_is_reachable_over_http_and_control_calls_are_not_in_it(emulator: Any, rds: Any) -> None:
    client = EmulatorControlClient(emulator.endpoint_url, emulator.control_token)
    client.clear_request_log()
    rds.describe_db_instances()
    rds.describe_db_cluster_endpoints()
    client.status()
    entries = client.request_log()
    assert [e["operation"] for e in entries] == ["DescribeDBInstances", "DescribeDBClusterEndpoints"]
    assert client.request_log(after=entries[-1]["index"]) == []
    assert client.clear_request_log() == 2 and client.request_log() == []
    rds.describe_db_clusters()
    [latest] = client.request_log()
    assert latest["index"] == entries[-1]["index"] + 1, "numbering goes on after a clear"
