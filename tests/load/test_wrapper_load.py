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

from harness.drivers.names import AuroraNames, namespace_problem
from harness.environments import ClusterUnderTest
from harness.load.runner import LoadRun, LoadSpec
from harness.drivers import AWS_WRAPPER
from harness.load.settings import LoadSettings
from harness.timeline import Timeline, read_timeline

RECOVERY_BOUND_S = 45.0  # FailoverDBCluster -> the wrapper load's requests all succeed again


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
        time.sleep(3)
        failover_at = time.monotonic()
        cluster.cluster.failover()
        deadline = failover_at + RECOVERY_BOUND_S + 10
        while time.monotonic() < deadline:
            time.sleep(1)
            if not run._all_alive():
                break
    finally:
        run.stop()
        timeline.close()
        log = (tmp_path / "load" / "locust.log").read_text(errors="replace")
        print(log[-6000:])
    cluster.cluster.wait_settled(timeout=120)
    after = {m.identifier for m in cluster.members() if m.is_writer}
    assert after != before, "the cluster failed over"
    assert run.exit_codes == {"locust": 0}, log[-3000:]
    seconds = sorted((r for r in read_timeline(timeline.path) if r["kind"] == "load"), key=lambda r: r["start"])
    assert seconds, "the load reported its seconds"
    steady = [s for s in seconds if s["start"] < failover_at - 1]
    assert sum(s["requests"] for s in steady) > 0 and sum(s["failures"] for s in steady) == 0, steady
    late = [s for s in seconds if s["start"] > failover_at + RECOVERY_BOUND_S][1:-1]
    assert late and all(s["requests"] > 0 and s["failures"] == 0 for s in late), late
