"""The real-AWS code path and its safety rules, exercised against the emulator standing in for AWS.

`--target aws` only differs in where clusters come from: existing clusters named in a profile,
never created or deleted, and touched only when named.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.cluster import AuroraCluster
from harness.emulator.emulator import Emulator
from harness.emulator.request_log import is_mutating
from harness.timeline import read_timeline

PROJECT = Path(__file__).resolve().parents[2]
PASSWORD = "stand-in-for-aws-pw"
CLUSTERS = {"orders": "aurora-postgresql", "payments": "aurora-postgresql", "inventory": "aurora-mysql"}
ORDERS = ('[[clusters]]\nidentifier = "orders"\nregion = "us-east-1"\npassword_env = "ORDERS_PW"\nuser = "gameday"\n'
          'database = "orders"\n')
# orders is also the primary of a global database with a secondary in us-west-2 (a Global Database
# game day plans its switchover there).
GLOBAL = ('[[clusters]]\nidentifier = "orders-west"\nregion = "us-west-2"\npassword_env = "ORDERS_PW"\n'
          'user = "gameday"\ndatabase = "orders"\n[[global_clusters]]\nidentifier = "orders-global"\n'
          'region = "us-east-1"\n')
INVENTORY = ('[[clusters]]\nidentifier = "inventory"\nregion = "us-east-1"\npassword_env = "ORDERS_PW"\n'
             'user = "gameday"\ndatabase = "inventory"\nmay_rewind = true\n')


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    state_dir = Path("/dev/shm") / f"gd-test-aws-{tmp_path_factory.mktemp('aws').name}"
    emulator = Emulator(state_dir, net=52, dns_ttl=0)
    emulator.start()
    rds = emulator.client()
    for name, engine in CLUSTERS.items():
        backtrack = {"BacktrackWindow": 7200} if engine == "aurora-mysql" else {}
        rds.create_db_cluster(DBClusterIdentifier=name, Engine=engine, MasterUsername="gameday",
                              MasterUserPassword=PASSWORD, DatabaseName=name, **backtrack)
        for index in range(3):
            rds.create_db_instance(DBInstanceIdentifier=f"{name}-{index + 1}", DBClusterIdentifier=name,
                                   Engine=engine, DBInstanceClass="db.r6g.large")
    for name in CLUSTERS:
        AuroraCluster(rds, name).wait_settled(timeout=180)
    orders = rds.describe_db_clusters(DBClusterIdentifier="orders")["DBClusters"][0]
    rds.create_global_cluster(GlobalClusterIdentifier="orders-global", SourceDBClusterIdentifier=orders["DBClusterArn"])
    west = emulator.client("us-west-2")
    west.create_db_cluster(DBClusterIdentifier="orders-west", Engine="aurora-postgresql",
                           GlobalClusterIdentifier="orders-global")
    west.create_db_instance(DBInstanceIdentifier="orders-west-1", DBClusterIdentifier="orders-west",
                            Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
    AuroraCluster(west, "orders-west").wait_until(lambda: west.describe_db_instances(
        DBInstanceIdentifier="orders-west-1")["DBInstances"][0]["DBInstanceStatus"] == "available", 180, "a secondary")
    yield emulator
    emulator.stop()
    shutil.rmtree(state_dir, ignore_errors=True)


def run_on_aws(stand_in: Emulator, tmp_path: Path, *args: str, profile_text: str = ORDERS) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile.toml"
    profile.write_text(profile_text)
    env = {**os.environ, "GAMEDAY_AWS_ENDPOINT_URL": stand_in.endpoint_url, "ORDERS_PW": PASSWORD,
           "AWS_ACCESS_KEY_ID": stand_in.access_key, "AWS_SECRET_ACCESS_KEY": stand_in.secret_for(stand_in.access_key)}
    return subprocess.run([sys.executable, "-m", "harness.cli", "run", "--target", "aws", "--profile", str(profile),
                           "--reports", str(tmp_path), *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=600)


def ledger_exists(stand_in: Emulator, cluster: str) -> bool:
    address = stand_in.client().describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["Endpoint"]
    with psycopg.connect(host=address, port=5432, user="gameday", password=PASSWORD, dbname=cluster) as conn:
        return conn.execute("SELECT to_regclass('gameday_ledger') IS NOT NULL").fetchone()[0]


def reboots(stand_in: Emulator, cluster: str) -> list[dict[str, Any]]:
    events = stand_in.client().describe_events(SourceType="db-instance", Duration=30)["Events"]
    return [e for e in events if e["SourceIdentifier"].startswith(f"{cluster}-") and "restarted" in e["Message"]]


def test_a_dry_run_of_every_feature_on_both_engines_makes_no_mutating_call(stand_in: Emulator,
                                                                          tmp_path: Path) -> None:
    """Every feature in features/, on the engines of the profile's clusters: the plan is shown, and the
    stand-in for AWS (which logs every RDS call it gets) receives nothing but Describe calls."""
    seen = stand_in.controls.request_log()
    done = run_on_aws(stand_in, tmp_path, "--dry-run", "--run-id", "plan", "features",
                      profile_text=ORDERS + INVENTORY + GLOBAL)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "(aurora-postgresql, aurora-mysql)" in done.stdout, "the engines of the profile's clusters"
    calls = stand_in.controls.request_log(after=seen[-1]["index"] if seen else None)
    assert {c["operation"] for c in calls} >= {"DescribeDBClusters"}
    assert [c["operation"] for c in calls if is_mutating(c["operation"])] == [], "a dry run changes nothing"
    assert not ledger_exists(stand_in, "orders"), "a dry run creates no table"
    assert "inject RebootDBInstance orders-1 on orders" in done.stdout
    assert "inject RebootDBInstance inventory-1 on inventory" in done.stdout
    assert "ModifyDBInstance orders-3: promotion tier 0 on orders" in done.stdout, "the tier change is planned"
    assert "create table gameday_ledger and start the probes on inventory" in done.stdout
    assert "BacktrackDBCluster" in done.stdout and "on inventory" in done.stdout, "the backtrack is planned"
    assert "SwitchoverGlobalCluster orders-global to its cluster in us-west-2 on orders" in done.stdout, \
        "the global switchover is planned"
    assert "names no aurora-mysql global database" in done.stdout
    assert ("start 2 users running the oltp workload through the AWS Advanced Python Wrapper (plugin gdb_failover, "
            "global writer endpoint) on orders") in done.stdout, "the global database's wrapper load is planned"
    assert "CreateBlueGreenDeployment (named when created)" in done.stdout and \
        "SwitchoverBlueGreenDeployment (the scenario deployment) with a 300 s timeout on orders" in done.stdout, \
        "the Blue/Green deployment and its switchover are planned"
    planned = [line for line in done.stdout.splitlines() if line.startswith("  SKIPPED") and "dry run, plan" in line]
    emulator_only = [line for line in done.stdout.splitlines() if "@emulator-only" in line]
    assert planned and emulator_only, "every scenario is either planned or, needing the emulator, skipped"
    assert "PASSED" not in done.stdout and "FAILED" not in done.stdout


def test_only_the_cluster_named_in_the_profile_is_touched(stand_in: Emulator, tmp_path: Path) -> None:
    done = run_on_aws(stand_in, tmp_path, "--run-id", "real", "features/writer_reboot.feature")
    assert done.returncode == 0, done.stdout[-3000:]
    assert reboots(stand_in, "orders"), "the allowed cluster was exercised"
    assert not reboots(stand_in, "payments") and not ledger_exists(stand_in, "payments"), \
        "a cluster that is not in the profile is never touched"
    address = stand_in.client().describe_db_clusters(DBClusterIdentifier="orders")["DBClusters"][0]["Endpoint"]
    with psycopg.connect(host=address, port=5432, user="gameday", password=PASSWORD, dbname="orders") as conn:
        assert conn.execute("SELECT count(*) FROM gameday_ledger").fetchone()[0] == 0, "the run removed its rows"
    assert stand_in.client().describe_db_clusters(DBClusterIdentifier="orders")["DBClusters"][0]["Status"] == \
        "available", "an existing cluster is never deleted"


def test_a_real_run_puts_back_the_tiers_and_the_writer_it_changed(stand_in: Emulator, tmp_path: Path) -> None:
    """The promotion-tier scenario on a cluster the harness does not own: afterwards every tier is
    what it was and the writer is the one it started with (the failover is failed back)."""
    rds = stand_in.client()
    cluster = AuroraCluster(rds, "orders")
    before = {m.identifier: m.promotion_tier for m in cluster.members()}
    writer_before, (first, second) = cluster.topology()["writer"], cluster.topology()["readers"]
    feature = tmp_path / "tiers.feature"
    feature.write_text(TIERS)
    done = run_on_aws(stand_in, tmp_path, "--run-id", "tiers", str(feature))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    (verdict_file,) = (tmp_path / "tiers").glob("scenarios/*/*/verdict.json")
    assert json.loads(verdict_file.read_text())["status"] == "PolicyMet", "the second reader was promoted"
    cluster.wait_settled(timeout=120)
    assert {m.identifier: m.promotion_tier for m in cluster.members()} == before
    assert cluster.topology()["writer"] == writer_before
    records = read_timeline(next((tmp_path / "tiers").glob("scenarios/*/*/timeline.jsonl")))
    assert [r["done"] for r in records if r["kind"] == "rollback"] == [  # newest first
        f"failed back to {writer_before}", f"promotion tier of {first} set back to {before[first]}",
        f"promotion tier of {second} set back to {before[second]}", "removed this run's ledger rows"]


TIERS = """\
Feature: Promotion tiers
  Scenario: Promotion follows the promotion tiers
    Given an Aurora cluster with a writer and 2 readers
    And the probes are watching the cluster
    And the second reader has promotion tier 0
    And the first reader has promotion tier 15
    When the cluster fails over
    Then the second reader becomes the writer
"""


def test_emulator_only_scenarios_are_skipped_on_aws(stand_in: Emulator, tmp_path: Path) -> None:
    done = run_on_aws(stand_in, tmp_path, "--run-id", "skip", "features/storage_quorum.feature")
    assert done.returncode == 0, done.stdout[-2000:]
    assert "2 skipped" in done.stdout


def test_a_scenario_needing_more_readers_than_any_allowed_cluster_is_refused(stand_in: Emulator,
                                                                            tmp_path: Path) -> None:
    feature = tmp_path / "big.feature"
    feature.write_text("Feature: Big\n  Scenario: Five readers\n"
                       "    Given an Aurora cluster with a writer and 5 readers\n")
    done = run_on_aws(stand_in, tmp_path, "--run-id", "big", str(feature))
    assert done.returncode == 1
    assert "no allowed aurora-postgresql cluster has 5 readers; allowed clusters: orders" in done.stdout


RESTORE = """\
Feature: A restore on a real cluster
  Scenario: Restore to the latest restorable time
    Given an Aurora cluster with a writer and 2 readers
    And the probes are watching the cluster
    And a steady state of 1 seconds
    When the cluster is restored to its latest restorable time
    Then every write acknowledged before the restore point is in the restored cluster
"""
CREATE = '[create]\nname_prefix = "gd-test-"\ninstance_class = "db.r6g.large"\n'


def cluster_names(stand_in: Emulator) -> set[str]:
    return {c["DBClusterIdentifier"] for c in stand_in.client().describe_db_clusters()["DBClusters"]}


def test_a_restore_needs_the_profiles_permission_and_nothing_is_created_without_it(stand_in: Emulator,
                                                                                  tmp_path: Path) -> None:
    feature = tmp_path / "restore.feature"
    feature.write_text(RESTORE)
    before = cluster_names(stand_in)
    done = run_on_aws(stand_in, tmp_path, "--run-id", "norestore", str(feature))
    assert done.returncode != 0
    assert "the profile does not let the harness create clusters" in done.stdout
    assert cluster_names(stand_in) == before, "nothing created"


BLUE_GREEN = """\
Feature: A Blue/Green switchover on a real cluster
  Scenario: Switchover to the green environment
    Given an Aurora cluster with a writer and 2 readers ready for Blue/Green deployments
    And the probes are watching the cluster
    And a Blue/Green deployment of the cluster with its green environment on the next engine version
    When the deployment switches over
    Then the switchover completes
"""


def test_a_green_environment_needs_the_profiles_permission_and_nothing_is_created_without_it(
        stand_in: Emulator, tmp_path: Path) -> None:
    feature = tmp_path / "blue_green.feature"
    feature.write_text(BLUE_GREEN)
    before = cluster_names(stand_in)
    done = run_on_aws(stand_in, tmp_path, "--run-id", "nogreen", str(feature))
    assert done.returncode != 0
    assert "the profile does not let the harness create clusters" in done.stdout
    assert cluster_names(stand_in) == before, "nothing created"
    assert not stand_in.client().describe_blue_green_deployments()["BlueGreenDeployments"]


def test_a_permitted_restore_is_named_tagged_and_deleted_and_cleanup_finds_what_a_killed_run_left(
        stand_in: Emulator, tmp_path: Path) -> None:
    feature = tmp_path / "restore.feature"
    feature.write_text(RESTORE)
    before = cluster_names(stand_in)
    done = run_on_aws(stand_in, tmp_path, "--run-id", "restore", str(feature), profile_text=ORDERS + CREATE)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    records = read_timeline(next((tmp_path / "restore").glob("scenarios/*/*/timeline.jsonl")))
    (restore,) = [r for r in records if r["kind"] == "restore"]
    assert restore["target"].startswith("gd-test-orders-r-")
    assert cluster_names(stand_in) == before, "the restored cluster was deleted at the end"

    rds = stand_in.client()
    ours = [{"Key": "gameday:created-by", "Value": "aurora-gameday"}, {"Key": "gameday:run-id", "Value": "killed"}]
    for name, tags in (("gd-test-leftover", ours), ("someone-elses", [])):
        rds.create_db_cluster(DBClusterIdentifier=name, Engine="aurora-postgresql", MasterUsername="gameday",
                              MasterUserPassword=PASSWORD, Tags=tags)
    env = {**os.environ, "GAMEDAY_AWS_ENDPOINT_URL": stand_in.endpoint_url, "AWS_ACCESS_KEY_ID": stand_in.access_key,
           "AWS_SECRET_ACCESS_KEY": stand_in.secret_for(stand_in.access_key)}
    profile = tmp_path / "profile.toml"

    def cleanup(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "harness.cli", "cleanup", "--profile", str(profile), *args],
                              cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)

    listed = cleanup("--dry-run")
    assert listed.returncode == 0 and listed.stdout.splitlines() == ["would delete  us-east-1  cluster   gd-test-leftover"]
    assert "gd-test-leftover" in cluster_names(stand_in)
    deleted = cleanup()
    assert deleted.returncode == 0, deleted.stderr
    AuroraCluster(rds, "someone-elses").wait_until(lambda: "gd-test-leftover" not in cluster_names(stand_in), 120,
                                                   "the leftover gone")
    assert "someone-elses" in cluster_names(stand_in), "nothing without the tag is touched"
    rds.delete_db_cluster(DBClusterIdentifier="someone-elses", SkipFinalSnapshot=True)
