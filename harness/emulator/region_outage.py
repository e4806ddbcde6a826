"""Emulator-only: a whole Region out, and back (for Global Database game days).

Down: every link that touches the Region is cut, and every instance of every cluster there stops
at once (as unreachable as the emulator can make it: its endpoints refuse connections) and shows
`inaccessible`; nothing there is repaired while it is out. Up: the links return, the instances
restart in their roles (a secondary's replica head as one), except a global cluster's old
primary that a failover with data loss replaced: that one is rebuilt from the new primary
(`pending-resync`, then `connected`), as Aurora adds it back as a secondary.
"""

from __future__ import annotations

import logging
from typing import Any

from harness.emulator.event_messages import INSTANCE_RESTARTED, INSTANCE_SHUTDOWN
from harness.emulator.interregion import InterRegionNetwork
from harness.emulator.runtime import ClusterRuntime

log = logging.getLogger("harness.emulator")


def _runtimes(store: Any, region: str) -> list[ClusterRuntime]:
    with store.lock:
        return list(store.region(region).runtimes.values())


def take_down(store: Any, network: InterRegionNetwork, region: str) -> list[str]:
    """Lose the Region; returns the clusters that went with it."""
    network.region_down(region)
    lost = []
    for runtime in _runtimes(store, region):
        with runtime.lock:
            runtime.region_down = True
            for instance in runtime.cluster.instances.values():
                engine_instance = runtime.engine.instances.get(instance.identifier)
                if engine_instance is not None:
                    runtime.engine.stop(engine_instance, "kill")
                    runtime.fabric.drop(instance.identifier)
                if instance.status in ("available", "rebooting", "modifying"):
                    instance.status = "inaccessible"
                    runtime.instance_event(instance, INSTANCE_SHUTDOWN, "availability")
            runtime.engine.stop_volume()
        lost.append(runtime.cluster.identifier)
    return lost


def bring_up(store: Any, network: InterRegionNetwork, region: str) -> list[str]:
    """The Region returns; returns the clusters restarted (resyncs go on in the background)."""
    network.region_up(region)
    back, resyncs = [], []
    for runtime in _runtimes(store, region):
        database = store.global_clusters.get(runtime.cluster.global_cluster_id or "")
        member = database.model.member(region, runtime.cluster.identifier) if database is not None else None
        with runtime.lock:
            runtime.region_down = False
            if member is not None and member.synchronization == "pending-resync":
                resyncs.append((database, member))
                continue
            _restart_all(runtime)
        back.append(runtime.cluster.identifier)
    for database, member in resyncs:
        database.resync(member)
    return back


def _restart_all(runtime: ClusterRuntime) -> None:
    cluster = runtime.cluster
    ordered = sorted(cluster.instances.values(), key=lambda i: i.identifier != cluster.writer_id)
    for instance in ordered:
        engine_instance = runtime.engine.instances.get(instance.identifier)
        if engine_instance is None or instance.status != "inaccessible":
            continue
        try:
            runtime.engine.restart(engine_instance, as_writer=instance.identifier == cluster.writer_id
                                   and not runtime.secondary)
        except Exception:
            log.exception("%s did not come back with its Region", instance.identifier)
            instance.status = "failed"
            continue
        instance.status = "available"
        runtime.instance_event(instance, INSTANCE_RESTARTED, "availability")
    runtime.publish_endpoints()
