"""A Locust load through the AWS Advanced Python Wrapper (plugin "failover") across a failover.

The Locust process runs in a private mount namespace whose /etc/hosts gives the emulated cluster
Aurora-style names (`harness.drivers.names`), as a game day starts it; its users' sessions are
`harness.load.behaviours.WrapperSession`s under gevent's monkey-patching. FailoverDBCluster
moves the writer; the wrapper must take the users to the new writer by itself, and the load must
run without errors again well before the end.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from harness.drivers import AWS_WRAPPER
from harness.drivers.names import AuroraNames, namespace_problem
from harness.environments import ClusterUnderTest
from harness.load.runner import LoadRun, LoadSpec
from harness.load.settings import LoadSettings
from harness.timeline import Timeline, read_timeline
from tests.emulator.support import wait_for

RECOVERY_BOUND_S = 45.0  # the cluster settled -> the wrapper load's requests all succeed again
CLEAN_SECONDS = 5


def test_a_wrapper_load_survives_a_failover(cluster: ClusterUnderTest, settings: LoadSettings, tmp_path: Path) -> None:
    problem = namespace_problem()
    if problem:
        pytest.skip(problem)
    cluster.cluster.wait_settled(timeout=120)
    names = AuroraNames.of(cluster.cluster.rds, cluster.identifier)
    hosts = names.write_hosts_file(tmp_path / "hosts")
    wrapper_settings = dataclasses.replace(settings, cluster_host=names.cluster_endpoint,
                                           reader_host=names.reader_endpoint, driver=AWS_WRAPPER,
                                           instance_pattern=names.instance_pattern,
                                           cluster_id=f"{cluster.identifier}-test-load", run_id="test-wrapper-load")
    spec = LoadSpec("oltp", users=4, driver=AWS_WRAPPER)
    assert spec.name == "oltp/aws-wrapper"
    timeline = Timeline(tmp_path / "timeline.jsonl")
    run = LoadRun(spec, wrapper_settings, cluster.credentials.password, tmp_path / "load", timeline,
                  hosts_file=hosts)
    before = {m.identifier for m in cluster.members() if m.is_writer}
    try:
        run.start(timeout=180)
        wait_for(lambda: run.feed.requests >= 50, timeout=60, what="a steady load through the wrapper")
        failover_at = time.monotonic()
        cluster.cluster.failover()
        cluster.cluster.wait_settled(timeout=120)
        # Observe until the load has run CLEAN_SECONDS full seconds without a failure after the
        # cluster settled (or the bound passes: the assertions below then say what went wrong).
        settled_at = time.monotonic()
        wait_for(lambda: len(clean_seconds(timeline.path, settled_at)) >= CLEAN_SECONDS or not run._all_alive(),
                 timeout=RECOVERY_BOUND_S, interval=0.5, what="clean seconds of load after the failover")
    finally:
        run.stop()
        timeline.close()
        log = (tmp_path / "load" / "locust.log").read_text(errors="replace")
    after = {m.identifier for m in cluster.members() if m.is_writer}
    assert after != before, "the cluster failed over"
    assert run.exit_codes == {"locust": 0}, log[-3000:]
    seconds = load_seconds(timeline.path)
    steady = [s for s in seconds if s["end"] < failover_at]
    assert sum(s["requests"] for s in steady) > 0 and sum(s["failures"] for s in steady) == 0, steady
    assert len(clean_seconds(timeline.path, settled_at)) >= CLEAN_SECONDS, seconds[-10:]
    # The wrapper, not a reconnect of our own, moved the users: its log says so.
    assert "Connected to: HostInfo(" in log and "failover" in log.lower(), log[-3000:]


def load_seconds(path: Path) -> list[dict]:
    return sorted((r for r in read_timeline(path) if r["kind"] == "load"), key=lambda r: r["start"])


def clean_seconds(path: Path, since: float) -> list[dict]:
    """Full seconds of load that started after `since`, each with requests and no failure, up to the first bad one."""
    clean = []
    for second in (s for s in load_seconds(path) if s["start"] >= since and s["end"] - s["start"] >= 1.0):
        if second["requests"] == 0 or second["failures"]:
            clean = []
            continue
        clean.append(second)
    return clean
