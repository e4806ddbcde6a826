"""The real-AWS code path and its safety rules, exercised against the emulator standing in for AWS.

`--target aws` only differs in where clusters come from: existing clusters named in a profile,
never created or deleted, and touched only when named.
"""

from __future__ import annotations

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

PROJECT = Path(__file__).resolve().parents[2]
PASSWORD = "stand-in-for-aws-pw"


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    state_dir = Path("/dev/shm") / f"gd-test-aws-{tmp_path_factory.mktemp('aws').name}"
    emulator = Emulator(state_dir, net=52, dns_ttl=0)
    emulator.start()
    rds = emulator.client()
    for name in ("orders", "payments"):
        rds.create_db_cluster(DBClusterIdentifier=name, Engine="aurora-postgresql", MasterUsername="gameday",
                              MasterUserPassword=PASSWORD)
        for index in range(3):
            rds.create_db_instance(DBInstanceIdentifier=f"{name}-{index + 1}", DBClusterIdentifier=name,
                                   Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
    for name in ("orders", "payments"):
        AuroraCluster(rds, name).wait_settled(timeout=120)
    yield emulator
    emulator.stop()
    shutil.rmtree(state_dir, ignore_errors=True)


def run_on_aws(stand_in: Emulator, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile.toml"
    profile.write_text('[[clusters]]\nidentifier = "orders"\nregion = "us-east-1"\npassword_env = "ORDERS_PW"\n'
                       'user = "gameday"\n')
    env = {**os.environ, "GAMEDAY_AWS_ENDPOINT_URL": stand_in.endpoint_url, "ORDERS_PW": PASSWORD,
           "AWS_ACCESS_KEY_ID": stand_in.access_key, "AWS_SECRET_ACCESS_KEY": stand_in.secret_for(stand_in.access_key)}
    return subprocess.run([sys.executable, "-m", "harness.cli", "run", "--target", "aws", "--profile", str(profile),
                           "--reports", str(tmp_path), *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=600)


def ledger_exists(stand_in: Emulator, cluster: str) -> bool:
    address = stand_in.client().describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["Endpoint"]
    with psycopg.connect(host=address, port=5432, user="gameday", password=PASSWORD, dbname="postgres") as conn:
        return conn.execute("SELECT to_regclass('gameday_ledger') IS NOT NULL").fetchone()[0]


def reboots(stand_in: Emulator, cluster: str) -> list[dict[str, Any]]:
    events = stand_in.client().describe_events(SourceType="db-instance", Duration=30)["Events"]
    return [e for e in events if e["SourceIdentifier"].startswith(f"{cluster}-") and "restarted" in e["Message"]]


def test_dry_run_shows_the_plan_and_touches_nothing(stand_in: Emulator, tmp_path: Path) -> None:
    done = run_on_aws(stand_in, tmp_path, "--dry-run", "--run-id", "plan", "features/writer_reboot.feature")
    assert done.returncode == 0, done.stdout[-2000:]
    assert "inject RebootDBInstance orders-1 on orders" in done.stdout
    assert not ledger_exists(stand_in, "orders"), "a dry run creates nothing"
    assert not reboots(stand_in, "orders")


def test_only_the_cluster_named_in_the_profile_is_touched(stand_in: Emulator, tmp_path: Path) -> None:
    done = run_on_aws(stand_in, tmp_path, "--run-id", "real", "features/writer_reboot.feature")
    assert done.returncode == 0, done.stdout[-3000:]
    assert reboots(stand_in, "orders"), "the allowed cluster was exercised"
    assert not reboots(stand_in, "payments") and not ledger_exists(stand_in, "payments"), \
        "a cluster that is not in the profile is never touched"
    address = stand_in.client().describe_db_clusters(DBClusterIdentifier="orders")["DBClusters"][0]["Endpoint"]
    with psycopg.connect(host=address, port=5432, user="gameday", password=PASSWORD, dbname="postgres") as conn:
        assert conn.execute("SELECT count(*) FROM gameday_ledger").fetchone()[0] == 0, "the run removed its rows"
    assert stand_in.client().describe_db_clusters(DBClusterIdentifier="orders")["DBClusters"][0]["Status"] == \
        "available", "an existing cluster is never deleted"


def test_emulator_only_scenarios_are_skipped_on_aws(stand_in: Emulator, tmp_path: Path) -> None:
    done = run_on_aws(stand_in, tmp_path, "--run-id", "skip", "features/storage_quorum.feature")
    assert done.returncode == 0, done.stdout[-2000:]
    assert "2 skipped" in done.stdout


def test_a_scenario_needing_more_readers_than_any_allowed_cluster_is_refused(stand_in: Emulator,
                                                                            tmp_path: Path) -> None:
    feature = tmp_path / "big.feature"
    feature.write_text("Feature: Big\n  Scenario: Five readers\n"
                       "    Given an Aurora PostgreSQL cluster with a writer and 5 readers\n")
    done = run_on_aws(stand_in, tmp_path, "--run-id", "big", str(feature))
    assert done.returncode == 1
    assert "no allowed aurora-postgresql cluster has 5 readers; allowed clusters: orders" in done.stdout
