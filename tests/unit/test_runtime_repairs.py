"""What a cluster runtime does when one of its jobs fails (the jobs' on_error), with a fake engine:
no status stays `failing-over`, `rebooting`, `creating` or `deleting`, Aurora's events say what
happened, and an overdue job (still running, holding the data plane) only has its statuses fixed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.emulator.event_messages import FAILOVER_FAILED, PROMOTING_PREVIOUS_PRIMARY
from harness.emulator.models import DBCluster, DBInstance, EventLog
from harness.emulator.runtime import ClusterRuntime


class FakeEngineInstance:
    def __init__(self, identifier: str, up: bool):
        self.identifier, self.up = identifier, up

    def target(self) -> dict[str, object]:
        return {"id": self.identifier, "host": "127.0.0.1", "port": 5432}


class FakeEngine:
    def __init__(self, up: dict[str, bool]):
        self.instances = {name: FakeEngineInstance(name, alive) for name, alive in up.items()}
        self.restarted: list[tuple[str, bool]] = []

    def alive(self, instance: FakeEngineInstance) -> bool:
        return instance.up

    def client_rewrites(self, identifier: str) -> dict[str, str]:
        return {}

    def restart(self, instance: FakeEngineInstance, *, as_writer: bool) -> None:
        self.restarted.append((instance.identifier, as_writer))
        instance.up = True


class FakeFabric:
    def __init__(self) -> None:
        self.published = 0

    def set_listener(self, *args: Any, **kwargs: Any) -> None:
        self.published += 1


def runtime(statuses: dict[str, str], up: dict[str, bool], cluster_status: str = "available") -> ClusterRuntime:
    """A cluster whose first instance is the writer."""
    cluster = DBCluster(identifier="c1", region="us-east-1", status=cluster_status, writer_id=next(iter(statuses)))
    for name, status in statuses.items():
        cluster.instances[name] = DBInstance(identifier=name, cluster_id="c1", region="us-east-1", status=status)
    return ClusterRuntime(cluster, FakeEngine(up), FakeFabric(), EventLog())  # type: ignore[arg-type]


def messages(rt: ClusterRuntime) -> list[str]:
    return [event.message for event in rt.events.snapshot()]


def statuses(rt: ClusterRuntime) -> dict[str, str]:
    return {name: instance.status for name, instance in rt.cluster.instances.items()}


@contextmanager
def job_holding_the_lock(rt: ClusterRuntime) -> Iterator[None]:
    """An overdue job: another thread holds the data-plane lock for the duration."""
    held, release = threading.Event(), threading.Event()

    def job() -> None:
        with rt.lock:
            held.set()
            release.wait(10)

    thread = threading.Thread(target=job, daemon=True)
    thread.start()
    held.wait(5)
    try:
        yield
    finally:
        release.set()
        thread.join(5)


def test_a_failover_that_raised_after_fencing_brings_the_old_writer_back_as_writer() -> None:
    rt = runtime({"w": "rebooting", "r": "available"}, {"w": False, "r": True}, cluster_status="failing-over")
    rt.failover_failed("w", RuntimeError("fence failed"))
    assert rt.cluster.status == "available" and rt.cluster.writer_id == "w"
    assert statuses(rt) == {"w": "available", "r": "available"}
    assert rt.engine.restarted == [("w", True)]
    assert messages(rt) == [FAILOVER_FAILED, PROMOTING_PREVIOUS_PRIMARY.format("w")]
    assert rt.fabric.published > 0, "the endpoints point at the writer again"


def test_an_overdue_failover_only_has_its_statuses_fixed() -> None:
    rt = runtime({"w": "rebooting", "r": "available"}, {"w": False, "r": True}, cluster_status="failing-over")
    with job_holding_the_lock(rt):
        rt.failover_failed("w", TimeoutError("job 'failover c1' did not finish within 600 s"))
    assert rt.cluster.status == "available"
    assert statuses(rt) == {"w": "failed", "r": "available"}, "the old writer is down and nothing restarts it"
    assert rt.engine.restarted == [] and rt.fabric.published == 0
    assert messages(rt) == [FAILOVER_FAILED]


def test_an_overdue_failover_that_already_changed_the_writer_is_left_to_finish() -> None:
    rt = runtime({"r": "available", "w": "rebooting"}, {"r": True, "w": False})  # r promoted; w rejoining
    with job_holding_the_lock(rt):
        rt.failover_failed("w", TimeoutError("job 'failover c1' did not finish within 600 s"))
    assert statuses(rt) == {"r": "available", "w": "rebooting"} and messages(rt) == []


def test_a_failed_reboot_leaves_live_instances_available_and_dead_ones_failed() -> None:
    rt = runtime({"w": "rebooting", "r1": "rebooting", "r2": "available"}, {"w": True, "r1": False, "r2": True})
    rt.reboot_failed(RuntimeError("restart failed"))
    assert statuses(rt) == {"w": "available", "r1": "failed", "r2": "available"}


def test_failed_creates_and_deletes_are_failed() -> None:
    rt = runtime({"w": "available", "r1": "creating", "r2": "deleting"}, {"w": True, "r1": False, "r2": True})
    rt.creation_failed(rt.cluster.instances["r1"], RuntimeError("clone failed"))
    rt.deletion_failed(rt.cluster.instances["r2"], RuntimeError("stop failed"))
    assert statuses(rt) == {"w": "available", "r1": "failed", "r2": "failed"}


def test_a_failed_delete_of_the_writer_repairs_the_failover_it_started() -> None:
    rt = runtime({"w": "deleting", "r": "available"}, {"w": True, "r": True}, cluster_status="failing-over")
    rt.deletion_failed(rt.cluster.instances["w"], RuntimeError("promotion raised"))
    assert rt.cluster.status == "available" and messages(rt) == [FAILOVER_FAILED]
    assert statuses(rt) == {"w": "failed", "r": "available"}, "its deletion failed"
