"""The request log's bookkeeping: bounded, numbered for good, and which operations can change anything."""

from __future__ import annotations

from harness.emulator.request_log import RequestLog, is_mutating


def test_only_describe_list_and_download_calls_change_nothing() -> None:
    assert not any(map(is_mutating, ["DescribeDBClusters", "ListTagsForResource", "DownloadDBLogFilePortion"]))
    assert all(map(is_mutating, ["FailoverDBCluster", "CreateDBInstance", "AddTagsToResource",
                                 "RestoreDBClusterToPointInTime", "BacktrackDBCluster"]))


def test_the_log_keeps_the_latest_calls_and_numbers_them_for_good() -> None:
    log = RequestLog(capacity=3)
    for operation in ["DescribeDBClusters", "CreateDBCluster", "DescribeEvents", "FailoverDBCluster"]:
        log.record("us-east-1", operation)
    assert [(c.index, c.operation) for c in log.entries()] == [
        (2, "CreateDBCluster"), (3, "DescribeEvents"), (4, "FailoverDBCluster")]
    assert [c.index for c in log.entries(after=3)] == [4]
    assert log.clear() == 3 and log.entries() == []
    assert log.record("eu-west-1", "DescribeEvents").index == 5
    assert log.entries()[0].to_json()["region"] == "eu-west-1"
