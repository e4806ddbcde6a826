"""Fault injection without engines: the fabric's stall and congestion toxics, the lag clock,
argument validation, and which links each fault puts which toxic on (with a fake fabric)."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from harness.emulator.fabric.toxics import (
    build_plan,
    next_change,
    parse_toxic,
    stall_phase,
)
from harness.emulator.fault_injection import (
    FaultInjection,
    FaultInjectionError,
    UnsupportedFault,
    check_congestion,
    check_crash_kind,
    check_index,
    check_interval,
    check_percent,
)
from harness.emulator.replication import ReaderPosition, VolumeStatus
from harness.emulator.surface import AuroraSurface, LagClock, aurora_version


def stall(percent: float, period_ms: float = 1000.0, epoch: float = 100.0) -> Any:
    toxic = parse_toxic({"name": "s", "type": "stall", "attributes": {"percent": percent, "period_ms": period_ms}})
    object.__setattr__(toxic, "epoch", epoch)
    return toxic


# --- the fabric's toxics ---------------------------------------------------------------------------------------
def test_a_stall_holds_its_share_of_every_period() -> None:
    toxic = stall(30)
    assert stall_phase(toxic, 100.0) == (True, pytest.approx(100.3))
    assert stall_phase(toxic, 100.29) == (True, pytest.approx(100.3))
    assert stall_phase(toxic, 100.5) == (False, pytest.approx(101.0))
    assert stall_phase(toxic, 101.1) == (True, pytest.approx(101.3))
    assert stall_phase(stall(100), 5.0) == (True, math.inf)
    assert stall_phase(stall(0), 5.0) == (False, math.inf)
    assert next_change([stall(30), stall(60)], 100.4) == pytest.approx(100.6)


def test_a_stalled_plan_holds_the_stream_and_is_not_passthrough() -> None:
    held = build_plan([stall(50)], "downstream", now=100.1)
    assert held.stalled and not held.passthrough
    assert build_plan([stall(50)], "downstream", now=100.7).passthrough
    one_way = parse_toxic({"name": "s", "type": "stall", "stream": "upstream"})
    assert build_plan([one_way], "downstream").passthrough and build_plan([one_way], "upstream").stalled


def test_congestion_delays_its_share_of_chunks_within_the_band() -> None:
    toxic = parse_toxic({"name": "c", "type": "congestion", "attributes": {"min_ms": 40, "max_ms": 60, "percent": 25}})
    plan = build_plan([toxic], "upstream")
    assert not plan.passthrough and plan.spike_share == 0.25
    rng = random.Random(7)
    delays = [plan.extra_delay(rng) for _ in range(4000)]
    delayed = [d for d in delays if d > 0]
    assert 0.2 < len(delayed) / len(delays) < 0.3
    assert all(0.04 <= d <= 0.06 for d in delayed)


@pytest.mark.parametrize(("raw", "message"), [
    ({"type": "stall", "attributes": {"percent": 101}}, "stall.percent must be between 0 and 100"),
    ({"type": "stall", "attributes": {"period_ms": 0}}, "stall.period_ms must be greater than 0"),
    ({"type": "congestion", "attributes": {"min_ms": 5}}, "needs attribute 'max_ms'"),
    ({"type": "congestion", "attributes": {"min_ms": 50, "max_ms": 10}}, "must not be less than"),
])
def test_new_toxics_are_validated(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_toxic({"name": "x", **raw})


# --- validation -------------------------------------------------------------------------------------------------
def test_validation_words_what_is_wrong() -> None:
    assert check_crash_kind(" Dispatcher ") == "dispatcher"
    with pytest.raises(FaultInjectionError, match="unknown crash type \"boom\""):
        check_crash_kind("boom")
    assert check_percent(0) == 0 and check_percent(100) == 100
    with pytest.raises(FaultInjectionError, match="between 0 and 100"):
        check_percent(100.01)
    with pytest.raises(FaultInjectionError, match="must be a number"):
        check_percent(True)
    with pytest.raises(FaultInjectionError, match="greater than 0 seconds"):
        check_interval(0)
    volume = VolumeStatus(disks=12, nodes=6)
    assert check_index(11, True, volume) == 11 and check_index(5, False, volume) == 5
    with pytest.raises(FaultInjectionError, match="disk index 12 is out of range: the maximum index is 11"):
        check_index(12, True, volume)
    with pytest.raises(FaultInjectionError, match="node index 6 is out of range: the maximum index is 5"):
        check_index(6, False, volume)
    assert check_congestion(0, 100) == (0.0, 100.0)
    with pytest.raises(FaultInjectionError, match="must be greater than the minimum"):
        check_congestion(30, 30)
    with pytest.raises(FaultInjectionError, match="between 0.0 and 100.0 milliseconds"):
        check_congestion(-0.5, 30)


def test_aurora_version_of_each_engine() -> None:
    assert aurora_version("15.10") == "15.10.0"
    assert aurora_version("15.10.2") == "15.10.2"
    assert aurora_version("8.0.mysql_aurora.3.05.2") == "3.05.2"


# --- the lag clock ------------------------------------------------------------------------------------------------
def test_lag_is_the_age_of_the_first_change_a_reader_has_not_applied() -> None:
    clock = LagClock()
    clock.observe(100, now=1.0)
    clock.observe(100, now=1.5)  # no change: not a new sample
    clock.observe(200, now=2.0)
    clock.observe(300, now=3.0)
    assert clock.lag_seconds(300, now=4.0) == 0.0
    assert clock.lag_seconds(250, now=4.0) == pytest.approx(1.0)
    assert clock.lag_seconds(100, now=4.0) == pytest.approx(2.0)
    clock.forget_before(250)
    assert clock.lag_seconds(100, now=4.0) == pytest.approx(2.0), "the sample just past 100 is kept"
    assert ReaderPosition(received=500, replayed=480, applied_all_received=True).applied == 500
    assert ReaderPosition(received=500, replayed=480).applied == 480


# --- faults on links, with a fake fabric -----------------------------------------------------------------------------
@dataclass
class FakeFabric:
    toxics: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def add_toxic(self, listener: str, name: str, type: str, **kw: Any) -> None:
        self.toxics.setdefault(listener, {})[name] = {"type": type, **kw}

    def remove_toxic(self, listener: str, name: str) -> None:
        del self.toxics[listener][name]

    def live(self) -> dict[str, list[str]]:
        return {listener: sorted(t["type"] for t in toxics.values()) for listener, toxics in self.toxics.items()
                if toxics}


class FakeEngine:
    nodes = ("sn_a1", "sn_a2", "sn_b1", "sn_b2", "sn_c1", "sn_c2")

    def __init__(self, readers: list[str], storage: bool = True):
        self.readers, self.storage = readers, storage
        self.instances: dict[str, Any] = {}

    def link_names(self) -> list[str]:
        return [f"reader:{r}" for r in self.readers] + ([f"storage:{n}" for n in self.nodes] if self.storage else [])

    def link_listener(self, link: str) -> str:
        return link.replace(":", "-")


def fake_runtime(storage: bool = True) -> Any:
    instances = {name: SimpleNamespace(identifier=name, status="available") for name in ("w", "r1", "r2")}
    cluster = SimpleNamespace(identifier="c1", writer_id="w", instances=instances, status="available",
                              readers=[instances["r1"], instances["r2"]], engine_version="15.10")
    runtime = SimpleNamespace(cluster=cluster, engine=FakeEngine(["r1", "r2"], storage), fabric=FakeFabric(),
                              lock=threading.RLock(), deleted=False)
    runtime.surface = AuroraSurface(runtime)
    return runtime


def fault_injection(runtime: Any) -> FaultInjection:
    return FaultInjection(runtime, runtime.surface)


def test_replica_failure_holds_the_readers_links_and_ends_with_the_writer() -> None:
    runtime = fake_runtime()
    faults = fault_injection(runtime)
    answer = faults.apply("w", {"type": "replica_failure", "percent": 40, "seconds": 60, "replica": ""})
    assert answer["message"] == "40% read replica failure to all Aurora Replicas (r1, r2) for 60 seconds"
    assert runtime.fabric.live() == {"reader-r1": ["stall"], "reader-r2": ["stall"]}
    toxic = runtime.fabric.toxics["reader-r1"][answer["fault"]["id"]]
    assert toxic["stream"] == "downstream" and toxic["attributes"]["percent"] == 40
    faults.instance_restarted("r1")  # a reader restarting does not end the writer's fault
    assert len(faults.active()) == 1
    faults.writer_changed()
    assert runtime.fabric.live() == {} and faults.active() == []
    faults.close()
    runtime.surface.close()


def test_a_reader_fails_its_own_replication_only() -> None:
    runtime = fake_runtime()
    faults = fault_injection(runtime)
    with pytest.raises(FaultInjectionError, match="a reader can only fail its own replication"):
        faults.replica_failure("r1", 50, 10, "r2")
    faults.replica_failure("r1", 50, 10, None)
    assert runtime.fabric.live() == {"reader-r1": ["stall"]}
    faults.instance_restarted("r1")
    assert runtime.fabric.live() == {}
    faults.close()
    runtime.surface.close()


def test_disk_faults_pick_the_node_holding_the_index_and_expire_on_their_own() -> None:
    runtime = fake_runtime()
    faults = fault_injection(runtime)
    runtime.surface._volume_bytes = lambda: 25 * 1024**3  # three protection groups
    assert runtime.surface.volume_status() == VolumeStatus(disks=18, nodes=6)
    failure = faults.disk_failure(100, 9, True, 30)  # copy 3 of protection group 1: node 3
    assert failure.description == "100% disk failure in disk 9 (storage node sn_b2) for 30 seconds"
    congestion = faults.disk_congestion(50, 4, False, 0.05, 10, 20)
    assert runtime.fabric.live() == {"storage-sn_b2": ["stall"], "storage-sn_c1": ["congestion"]}
    assert runtime.fabric.toxics["storage-sn_b2"][failure.id]["stream"] == "both"
    assert runtime.fabric.toxics["storage-sn_c1"][congestion.id]["stream"] == "upstream"
    congestion.timer.join(5)  # the timer's thread ends once the fault has expired
    assert runtime.fabric.live() == {"storage-sn_b2": ["stall"]}, "the 50 ms congestion ended on its own"
    assert faults.clear() == 1 and runtime.fabric.live() == {}
    faults.close()
    runtime.surface.close()


def test_engines_without_storage_nodes_refuse_disk_faults() -> None:
    runtime = fake_runtime(storage=False)
    faults = fault_injection(runtime)
    assert runtime.surface.volume_status() == VolumeStatus(disks=0, nodes=0)
    with pytest.raises(UnsupportedFault, match="has no storage nodes") as info:
        faults.disk_failure(10, 0, False, 5)
    assert info.value.reason == "feature_not_supported"


def test_apply_rejects_malformed_faults() -> None:
    faults = fault_injection(fake_runtime())
    with pytest.raises(FaultInjectionError, match="unknown fault type 'meteor'"):
        faults.apply("w", {"type": "meteor"})
    with pytest.raises(FaultInjectionError, match="unknown field"):
        faults.apply("w", {"type": "crash", "kind": "node", "when": "now"})
    with pytest.raises(FaultInjectionError, match="not a member of DB cluster c1"):
        faults.crash("nobody", "instance")
