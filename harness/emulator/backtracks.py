"""Backtracking a cluster in place (BacktrackDBCluster's job, Aurora MySQL).

A backtrack is a point-in-time restore into the cluster itself: the engine pauses the cluster
(every client connection closes, as Aurora's "pauses the database ... and waits for the backtrack
to complete"), rebuilds the data as of the point from one of the cluster's own automated backups
and its change stream, swaps it in under the same instances and endpoints, and brings the readers
back as copies of the writer (`EngineCluster.rewind`). The
request is `pending` until the job holds the data plane, `applying` while it runs, then
`completed` or `failed`; the cluster is `backtracking` throughout and `available` afterwards,
with RDS-EVENT-0132 (or 0131 when the continuous backup no longer reaches back as far as the
target window) and each instance's shutdown and restart events.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from harness.emulator.event_messages import (
    BACKTRACK_WINDOW_MET,
    BACKTRACK_WINDOW_SHORT,
    INSTANCE_RESTARTED,
    INSTANCE_SHUTDOWN,
)
from harness.emulator.models import DBClusterBacktrack
from harness.emulator.runtime import ClusterRuntime

log = logging.getLogger("harness.emulator")


class BacktrackUnavailable(RuntimeError):
    """The cluster's continuous backup holds nothing to rebuild the point from."""


@dataclass
class Backtrack:
    """One backtrack of `runtime`'s cluster to `record.backtrack_to`."""

    runtime: ClusterRuntime
    record: DBClusterBacktrack

    def run(self) -> None:
        """Job: rewind, then the cluster is `available` again."""
        runtime, cluster = self.runtime, self.runtime.cluster
        started = time.monotonic()
        # The backup lock first, as a base backup takes it before the data-plane lock (no deadlock).
        with runtime.backups.paused(), runtime.lock:
            self.record.status = "applying"
            # Negative control: land this much earlier than asked, while reporting the point asked for.
            point = self.record.backtrack_to - timedelta(seconds=runtime.backups.take_restore_offset())
            snapshot = runtime.backups.backup_for(point)
            if snapshot is None or snapshot.backup is None:
                raise BacktrackUnavailable(f"no automated backup of {cluster.identifier} reaches {point.isoformat()}")
            snapshot.pin()
            try:
                volume = runtime.engine.rewind(snapshot.backup, point, self._pause)
            finally:
                snapshot.pin(-1)
            for instance in cluster.instances.values():
                engine_instance = runtime.engine.instances.get(instance.identifier)
                if engine_instance is not None and runtime.engine.alive(engine_instance):
                    instance.status = "available"
                    runtime.instance_event(instance, INSTANCE_RESTARTED, "availability")
                    runtime.faults.instance_restarted(instance.identifier)
                else:  # a reader that could not be re-cloned: the backtrack itself happened
                    instance.status = "failed"
            runtime.publish_endpoints()
            runtime.rewound = volume
        log.info("backtrack %s of %s to %s done by %s in %.2f s", self.record.identifier, cluster.identifier,
                 volume.reached.isoformat(), volume.how, time.monotonic() - started)
        self.record.status = "completed"
        cluster.status = "available"
        runtime.cluster_event(BACKTRACK_WINDOW_SHORT if runtime.backups.backtrack_window_short()
                              else BACKTRACK_WINDOW_MET, "backtrack")

    def _pause(self) -> None:
        """The engine is about to stop the instances: Aurora pauses the database and closes every
        open connection."""
        for instance in self.runtime.cluster.instances.values():
            instance.status = "rebooting"
            self.runtime.instance_event(instance, INSTANCE_SHUTDOWN, "availability")
            self.runtime.fabric.drop(instance.identifier)

    def failed(self, exc: BaseException) -> None:
        """on_error: the backtrack is `failed` and the cluster `available` again; a point the engine
        refused changed nothing, and instances whose engine did not come back are `failed`."""
        self.record.status = "failed"
        runtime = self.runtime
        with runtime._repairing(exc) as locked:
            for instance in runtime.cluster.instances.values():
                if instance.status == "rebooting":
                    engine_instance = runtime.engine.instances.get(instance.identifier)
                    alive = engine_instance is not None and runtime.engine.alive(engine_instance)
                    instance.status = "available" if alive else "failed"
            if locked:
                runtime.publish_endpoints()
        if runtime.cluster.status == "backtracking":
            runtime.cluster.status = "available"


def to_millisecond(moment: datetime) -> datetime:
    """BacktrackTo carries milliseconds: the point a backtrack reaches is that one, exactly."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
