"""Backtrack's control plane without engines: the window rules, BacktrackDBCluster's refusals and
what it answers, DescribeDBClusterBacktracks' order, filters and pages. Jobs are recorded, not run;
tests/emulator/test_backtrack.py drives real rewinds through boto3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from harness.emulator.api import ApiError
from harness.emulator.models import DBClusterBacktrack
from harness.emulator.operations import Parts, RdsBackend, RegionStore
from tests.unit.test_operations import FakeRuntime

REGION = "eu-west-1"
PASSWORD = "unit-test-pw-1"


class RecordedJobs:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        if name.startswith("create "):  # a new cluster's creation: run it, it only makes it available
            fn(*args)
            return
        self.started.append(name)


def backend() -> tuple[RdsBackend, RecordedJobs]:
    jobs = RecordedJobs()
    parts = Parts(store=RegionStore(), net=44, new_runtime=lambda cluster, addresses: FakeRuntime(cluster=cluster), jobs=jobs)  # type: ignore[arg-type]
    return RdsBackend(parts), jobs


def create(api: RdsBackend, identifier: str, engine: str = "aurora-mysql", **extra: Any) -> dict[str, Any]:
    params = {"DBClusterIdentifier": identifier, "Engine": engine, "MasterUsername": "master",
              "MasterUserPassword": PASSWORD, **extra}
    answer = api.dispatch(REGION, "CreateDBCluster", params)["DBCluster"]  # type: ignore[index]
    api.region(REGION).clusters[identifier].status = "available"  # what a creation job (not run here) ends with
    return answer


def error(call: Any) -> tuple[str, str]:
    with pytest.raises(ApiError) as info:
        call()
    return info.value.code, info.value.message


def with_history(api: RdsBackend, identifier: str, earliest: datetime) -> Any:
    """A backtrack-enabled cluster with a writer and a continuous backup reaching back to `earliest`."""
    create(api, identifier, BacktrackWindow=3600)
    cluster = api.region(REGION).clusters[identifier]
    cluster.writer_id = f"{identifier}-1"
    cluster.backtrack_state = lambda: (earliest, 42)
    return cluster


def test_the_window_is_set_at_creation_changed_while_on_and_never_turned_on_later() -> None:
    api, _ = backend()
    assert "BacktrackWindow" not in create(api, "plain")
    shown = create(api, "rewindable", BacktrackWindow=7200)
    assert shown["BacktrackWindow"] == 7200 and shown["BacktrackConsumedChangeRecords"] == 0
    assert shown["EarliestBacktrackTime"] is None, "no backtrack point before the continuous backup starts"
    modify = lambda name, window: api.dispatch(REGION, "ModifyDBCluster",  # noqa: E731
                                               {"DBClusterIdentifier": name, "BacktrackWindow": window})
    assert modify("rewindable", 600)["DBCluster"]["BacktrackWindow"] == 600
    assert error(lambda: modify("plain", 3600)) == ("InvalidParameterCombination",
                                                    "Backtrack cannot currently be enabled for this cluster.")
    assert error(lambda: modify("rewindable", 259201))[0] == "InvalidParameterValue"
    assert "BacktrackWindow" not in modify("rewindable", 0)["DBCluster"]
    assert error(lambda: modify("rewindable", 600))[0] == "InvalidParameterCombination", "0 turns it off for good"
    create(api, "pg", engine="aurora-postgresql")
    assert error(lambda: modify("pg", 600)) == ("InvalidParameterValue",
                                                "Backtrack is not supported for the aurora-postgresql engine.")
    assert error(lambda: create(api, "pg2", engine="aurora-postgresql", BacktrackWindow=600))[0] == \
        "InvalidParameterValue"


def test_a_backtrack_answers_pending_and_the_cluster_is_backtracking() -> None:
    api, jobs = backend()
    earliest = datetime.now(UTC) - timedelta(minutes=5)
    with_history(api, "c1", earliest)
    asked = datetime.now(UTC) - timedelta(seconds=30)
    answer = api.dispatch(REGION, "BacktrackDBCluster", {"DBClusterIdentifier": "c1", "BacktrackTo": asked,
                                                         "Force": True})
    assert answer["Status"] == "pending" and answer["DBClusterIdentifier"] == "c1"
    assert answer["BacktrackTo"] == asked.replace(microsecond=asked.microsecond // 1000 * 1000), "milliseconds"
    assert answer["BacktrackedFrom"] >= asked
    assert [j for j in jobs.started if j.startswith("backtrack")] == ["backtrack c1"]
    described = api.dispatch(REGION, "DescribeDBClusters", {"DBClusterIdentifier": "c1"})["DBClusters"][0]
    assert described["Status"] == "backtracking"
    assert described["EarliestBacktrackTime"] == earliest and described["BacktrackConsumedChangeRecords"] == 42
    again = error(lambda: api.dispatch(REGION, "BacktrackDBCluster", {"DBClusterIdentifier": "c1",
                                                                      "BacktrackTo": asked}))
    assert again[0] == "InvalidDBClusterStateFault"


def test_refusals_name_the_aws_error_and_start_nothing() -> None:
    api, jobs = backend()
    earliest = datetime.now(UTC) - timedelta(minutes=5)
    with_history(api, "c1", earliest)
    create(api, "plain")
    create(api, "pg", engine="aurora-postgresql")
    backtrack = lambda name, to, **extra: api.dispatch(  # noqa: E731
        REGION, "BacktrackDBCluster", {"DBClusterIdentifier": name, "BacktrackTo": to, **extra})
    now = datetime.now(UTC)
    assert error(lambda: backtrack("c1", now + timedelta(minutes=1)))[0] == "InvalidParameterValue"
    assert error(lambda: backtrack("c1", earliest - timedelta(seconds=1)))[0] == "InvalidParameterValue"
    assert error(lambda: backtrack("nobody", now))[0] == "DBClusterNotFoundFault"
    assert error(lambda: backtrack("plain", now))[0] == "InvalidDBClusterStateFault"
    assert error(lambda: backtrack("pg", now))[0] == "InvalidParameterCombination"
    assert error(lambda: api.dispatch(REGION, "DescribeDBClusterBacktracks",
                                      {"DBClusterIdentifier": "pg"}))[0] == "InvalidParameterCombination"
    assert not [j for j in jobs.started if j.startswith("backtrack")]
    assert api.dispatch(REGION, "DescribeDBClusters", {"DBClusterIdentifier": "c1"})["DBClusters"][0]["Status"] == \
        "available"
    early = backtrack("c1", earliest - timedelta(hours=1), UseEarliestTimeOnPointInTimeUnavailable=True)
    assert early["BacktrackTo"] >= earliest and early["BacktrackTo"] - earliest < timedelta(milliseconds=1)


def test_backtracks_are_listed_newest_first_with_filters_and_pages() -> None:
    api, _ = backend()
    cluster = with_history(api, "c1", datetime.now(UTC) - timedelta(minutes=5))
    start = datetime.now(UTC) - timedelta(minutes=4)
    for n in range(25):
        cluster.backtracks.append(DBClusterBacktrack("c1", start + timedelta(seconds=n), start + timedelta(seconds=n),
                                                     status="failed" if n % 5 == 0 else "completed"))
    describe = lambda **p: api.dispatch(REGION, "DescribeDBClusterBacktracks",  # noqa: E731
                                        {"DBClusterIdentifier": "c1", **p})
    first = describe(MaxRecords=20)
    assert len(first["DBClusterBacktracks"]) == 20 and first["Marker"]
    rest = describe(MaxRecords=20, Marker=first["Marker"])
    assert len(rest["DBClusterBacktracks"]) == 5 and rest["Marker"] is None
    listed = [b["BacktrackIdentifier"] for b in first["DBClusterBacktracks"] + rest["DBClusterBacktracks"]]
    assert listed == [b.identifier for b in reversed(cluster.backtracks)], "newest first"
    failed = describe(Filters=[{"Name": "db-cluster-backtrack-status", "Values": ["failed"]}])["DBClusterBacktracks"]
    assert len(failed) == 5 and {b["Status"] for b in failed} == {"failed"}
    one = cluster.backtracks[3].identifier
    assert [b["BacktrackIdentifier"] for b in describe(BacktrackIdentifier=one)["DBClusterBacktracks"]] == [one]
    by_filter = describe(Filters=[{"Name": "db-cluster-backtrack-id", "Values": [one]}])["DBClusterBacktracks"]
    assert [b["BacktrackIdentifier"] for b in by_filter] == [one]
    assert error(lambda: describe(BacktrackIdentifier="0e4ae3c6-0000-4000-8000-000000000000"))[0] == \
        "DBClusterBacktrackNotFoundFault"
    assert error(lambda: describe(Filters=[{"Name": "engine", "Values": ["x"]}]))[0] == "InvalidParameterValue"


def test_before_the_first_backup_a_point_before_creation_is_outside_the_window() -> None:
    api, jobs = backend()
    create(api, "fresh", BacktrackWindow=3600)
    cluster = api.region(REGION).clusters["fresh"]
    cluster.writer_id = "fresh-1"
    cluster.created = datetime.now(UTC) - timedelta(minutes=5)
    cluster.backtrack_state = lambda: (None, 0)  # its continuous backup has not started yet
    asked = {"DBClusterIdentifier": "fresh", "BacktrackTo": datetime.now(UTC) - timedelta(hours=2)}
    assert error(lambda: api.dispatch(REGION, "BacktrackDBCluster", asked))[0] == "InvalidParameterValue"
    asked["BacktrackTo"] = datetime.now(UTC) - timedelta(minutes=1)
    assert error(lambda: api.dispatch(REGION, "BacktrackDBCluster", asked))[0] == "InvalidDBClusterStateFault"
    assert jobs.started == []
