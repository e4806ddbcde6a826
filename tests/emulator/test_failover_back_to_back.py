"""Failovers back to back (the next one requested as soon as the API takes it, while the demoted
writer may still be rejoining) under four writers at DNS TTL 0: every failover happens, no
acknowledged write is lost, and every instance is available afterwards. A regression test for a
failover that once promoted a reader still replaying restored WAL and broke it for good; the
long version is `make soak`."""

from __future__ import annotations

from typing import Any

import pytest

from harness.bench.soak import DATABASE, PASSWORD, USER, FailoverTimes, Writers, fail_over, unavailable_instances
from tests.emulator.support import wait_for

ROUNDS = 10


@pytest.mark.parametrize("engine", ["aurora-postgresql", "aurora-mysql"])
def test_ten_failovers_back_to_back_all_happen_lose_nothing_and_break_nothing(emulator: Any, rds: Any,
                                                                              engine: str) -> None:
    name = f"btb-{engine.split('-')[1][:2]}"
    rds.create_db_cluster(DBClusterIdentifier=name, Engine=engine, MasterUsername=USER, MasterUserPassword=PASSWORD,
                          DatabaseName=DATABASE)
    for n in range(3):
        rds.create_db_instance(DBInstanceIdentifier=f"{name}-{n + 1}", DBClusterIdentifier=name, Engine=engine,
                               DBInstanceClass="db.r6g.large", PromotionTier=n)
    wait_for(lambda: len(rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [name]}])
                         ["DBInstances"]) == 3 and not unavailable_instances(rds, name), timeout=300,
             what=f"{name} settled")
    emulator.controls.set_dns_ttl(cluster=name, seconds=0)
    described = rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]
    times = FailoverTimes()
    try:
        with Writers(engine, described["Endpoint"], described["Port"]) as writers:
            for round_ in range(1, ROUNDS + 1):
                fail_over(rds, name, writers, times, round_)
            wait_for(lambda: not unavailable_instances(rds, name), timeout=180, what="every instance available")
        assert len(times.to_first_write_s) == ROUNDS, "every failover happened"
        assert not times.slow, times.slow
        assert writers.count() > 1000
        assert writers.lost() == {}, "no acknowledged write is lost"
        events = [e["Message"] for e in rds.describe_events(SourceType="db-cluster", SourceIdentifier=name,
                                                            Duration=60)["Events"]]
        assert sum(m.startswith("Completed failover to DB instance") for m in events) == ROUNDS
    finally:
        for n in range(3):
            rds.delete_db_instance(DBInstanceIdentifier=f"{name}-{n + 1}", SkipFinalSnapshot=True)
        wait_for(lambda: not rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]["DBClusterMembers"],
                 timeout=180, what=f"{name}'s instances deleted")
        rds.delete_db_cluster(DBClusterIdentifier=name, SkipFinalSnapshot=True)
