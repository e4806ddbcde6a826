"""Writer changes under load: who is promoted, what is lost (nothing), what is left running."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from harness.aurora import instance_size
from harness.emulator.processes import marked_processes
from tests.emulator.support import Cluster, WriteLoop, wait_for


def expected_target(cluster: Cluster) -> str:
    """What AWS documents: the lowest promotion tier, then the largest instance class."""
    readers = [cluster.instance(name) for name in cluster.readers()]
    best = min(readers, key=lambda r: (r["PromotionTier"], -instance_size(r["DBInstanceClass"])))
    ties = [r for r in readers if (r["PromotionTier"], r["DBInstanceClass"]) ==
            (best["PromotionTier"], best["DBInstanceClass"])]
    assert len(ties) == 1, "the test keeps tiers distinct so the choice is not arbitrary"
    return best["DBInstanceIdentifier"]


def engine_processes(emulator: Any, cluster: Cluster) -> dict[str, int]:
    """Live postmasters and storage nodes that belong to this cluster."""
    counts = {"postmaster": 0, "storage_node": 0}
    root = str(emulator.state_dir / "regions" / "us-east-1" / cluster.identifier)
    for pid in marked_processes():
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        command = b" ".join(argv).decode(errors="replace")
        assert state != "Z", f"zombie process {pid}: {command}"
        if root not in command:
            continue
        if argv[0].endswith(b"/postgres"):
            counts["postmaster"] += 1
        elif argv[0].endswith(b"/pg_receivewal"):
            counts["storage_node"] += 1
    return counts


def highest_id(cluster: Cluster, host: str) -> int:
    with cluster.connect(host) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM ledger").fetchone()[0]


def test_ten_failovers_under_load_lose_no_acknowledged_commit(emulator: Any, rds: Any, cluster_factory: Any) -> None:
    cluster = cluster_factory([1, 0, 2])
    promoted = []
    with WriteLoop(cluster) as load:
        steady = load.rate(2.0)
        assert steady > 0, "the write loop commits before the failovers"
        for round_ in range(10):
            # Every third round names the reader that the tier rule would pick last.
            target = max(cluster.readers(), key=lambda r: cluster.instance(r)["PromotionTier"]) \
                if round_ % 3 == 2 else None
            expected = target or expected_target(cluster)
            before = len(load.acknowledged)
            rds.failover_db_cluster(DBClusterIdentifier=cluster.identifier,
                                    **({"TargetDBInstanceIdentifier": target} if target else {}))
            wait_for(lambda: cluster.writer() == expected, timeout=60, what=f"{expected} to become the writer")
            wait_for(lambda: len(load.acknowledged) > before + 50, timeout=30, what="writes to resume")
            cluster.wait_settled()
            promoted.append(expected)
        after = load.rate(2.0)
        assert after >= steady / 2, f"throughput recovers after the failovers ({after:.0f}/s, {steady:.0f}/s before)"
    assert len(set(promoted)) == 3, f"every instance took a turn as writer: {promoted}"

    with cluster.connect() as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM ledger")}
    missing = sorted(set(load.acknowledged) - stored)
    assert not missing, f"{len(missing)} acknowledged commits lost, first {missing[:10]}"
    assert len(load.acknowledged) > 2000

    writer_max = max(stored)
    for reader in cluster.readers():
        address = cluster.instance_address(reader)
        wait_for(lambda: highest_id(cluster, address) == writer_max, timeout=30, what=f"{reader} to converge")
    assert engine_processes(emulator, cluster) == {"postmaster": 3, "storage_node": 6}


def test_rebooting_the_writer_restarts_in_place_without_failover(rds: Any, cluster_factory: Any) -> None:
    cluster = cluster_factory([1, 0])
    writer, reader = cluster.writer(), cluster.readers()[0]
    session = cluster.connect()
    rebooting = rds.reboot_db_instance(DBInstanceIdentifier=writer)["DBInstance"]
    assert rebooting["DBInstanceStatus"] == "rebooting"
    with pytest.raises(psycopg.OperationalError):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            session.execute("SELECT 1")
            time.sleep(0.02)
    session.close()
    cluster.wait_settled()
    assert cluster.writer() == writer, "a reboot never fails over"
    events = [e for name in (writer, reader)  # by instance: the session's other tests add many events
              for e in rds.describe_events(SourceType="db-instance", SourceIdentifier=name, Duration=5)["Events"]]
    restarted = {e["SourceIdentifier"] for e in events if e["Message"] == "DB instance restarted."}
    assert {writer, reader} <= restarted, "Aurora PostgreSQL restarts the readers with the writer"
    assert not [e for e in rds.describe_events(SourceType="db-cluster", SourceIdentifier=cluster.identifier,
                                               Duration=5)["Events"] if "failover" in e["Message"]]
    with cluster.connect() as conn:
        conn.execute("CREATE TABLE after_reboot (id int)")


def test_rebooting_a_reader_leaves_the_writer_alone(rds: Any, cluster_factory: Any) -> None:
    cluster = cluster_factory([1, 0])
    writer, reader = cluster.writer(), cluster.readers()[0]
    with cluster.connect() as session:
        rds.reboot_db_instance(DBInstanceIdentifier=reader)
        wait_for(lambda: cluster.instance(reader)["DBInstanceStatus"] == "rebooting" or cluster.settled(),
                 what="the reboot to start")
        cluster.wait_settled()
        assert session.execute("SELECT current_setting('cluster_name')").fetchone()[0] == writer
    # A reboot while the instance is `rebooting` is refused. Rebooting the writer restarts the
    # reader after it (Aurora PostgreSQL), so the reader stays `rebooting` long enough to ask again.
    refused = None
    for _ in range(10):
        rds.reboot_db_instance(DBInstanceIdentifier=writer)
        try:
            rds.reboot_db_instance(DBInstanceIdentifier=reader)
        except rds.exceptions.InvalidDBInstanceStateFault as error:
            refused = error
        cluster.wait_settled()
        if refused is not None:
            break
    assert refused is not None, "a reboot during a reboot is refused with InvalidDBInstanceState"


def test_a_killed_writer_fails_over_and_comes_back_as_a_reader(emulator: Any, rds: Any, cluster_factory: Any) -> None:
    cluster = cluster_factory([1, 0, 2])
    old_writer, expected = cluster.writer(), expected_target(cluster)
    with WriteLoop(cluster) as load:
        wait_for(lambda: len(load.acknowledged) > 100, what="writes")
        emulator.controls.kill_instance(instance=old_writer)
        wait_for(lambda: cluster.writer() == expected, timeout=60, what="the automatic failover")
        before = len(load.acknowledged)
        wait_for(lambda: len(load.acknowledged) > before + 50, timeout=30, what="writes to resume")
    cluster.wait_settled()
    assert old_writer in cluster.readers()
    with cluster.connect() as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM ledger")}
    assert not set(load.acknowledged) - stored


def test_a_killed_reader_is_restarted_in_place(emulator: Any, rds: Any, cluster_factory: Any) -> None:
    cluster = cluster_factory([1, 0])
    writer, reader = cluster.writer(), cluster.readers()[0]
    emulator.controls.kill_instance(instance=reader)
    wait_for(lambda: cluster.instance(reader)["DBInstanceStatus"] != "available", timeout=10,
             what="the crash to be noticed")
    cluster.wait_settled()
    assert cluster.writer() == writer
    with cluster.connect(cluster.instance_address(reader)) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    messages = [e["Message"] for e in rds.describe_events(SourceType="db-instance", SourceIdentifier=reader,
                                                          Duration=5)["Events"]]
    assert "Recovery of the DB instance is complete." in messages


def test_a_failover_job_that_raises_brings_the_cluster_back(emulator: Any, rds: Any, cluster_factory: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The job fences the writer, then fails: its error handler reports the failed failover with
    Aurora's events and restarts the old writer as the writer, so nothing stays `failing-over`."""
    cluster = cluster_factory([1, 0])
    writer = cluster.writer()
    engine = emulator.store.runtime("us-east-1", cluster.identifier).engine
    fence = engine.fence

    def fence_then_fail(old_writer: Any) -> None:
        fence(old_writer)
        raise RuntimeError("the fabric went away while fencing")

    monkeypatch.setattr(engine, "fence", fence_then_fail)
    assert rds.failover_db_cluster(DBClusterIdentifier=cluster.identifier)["DBCluster"]["Status"] == "failing-over"
    wait_for(lambda: cluster.describe()["Status"] == "available", timeout=60, what="the cluster to be available")
    cluster.wait_settled()
    assert cluster.writer() == writer, "the failover did not happen"
    messages = [e["Message"] for e in rds.describe_events(SourceType="db-cluster", SourceIdentifier=cluster.identifier,
                                                          Duration=5)["Events"]]
    assert "Cluster failover failed, check the health of your cluster instances and try again." in messages
    assert f"Promoting previous primary again: {writer}." in messages
    assert not [m for m in messages if m.startswith("Completed failover")]
    with cluster.connect() as conn:
        assert conn.execute("SELECT current_setting('cluster_name'), pg_is_in_recovery()").fetchone() == (writer, False)
