"""Restoring a new cluster: its volume built from a snapshot, or from a backup and the source's
change stream up to a point in time (RestoreDBClusterFromSnapshot, RestoreDBClusterToPointInTime).

The new cluster is `creating` with no instance until its engine has built the resting volume its
first instance will start on; then it is `available` (and its own continuous backup starts with
that first instance). A restore that fails leaves the status AWS would show, never `creating`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from harness.emulator.backups import ContinuousBackup
from harness.emulator.engines.base import EngineCluster
from harness.emulator.event_messages import CLUSTER_CREATED, CLUSTER_CREATION_FAILED
from harness.emulator.models import DBClusterSnapshot
from harness.emulator.runtime import ClusterRuntime

log = logging.getLogger("harness.emulator")


@dataclass
class Restore:
    """One restore into a new cluster. `snapshot` (and, for a point in time, the source's continuous
    backup) are pinned by the caller and released here once the volume no longer needs them."""

    target: ClusterRuntime
    source: EngineCluster  # the snapshot's cluster; the target itself when restoring a snapshot alone
    snapshot: DBClusterSnapshot
    point_in_time: datetime | None = None
    source_backup: ContinuousBackup | None = None
    clone: bool = False
    _released: bool = field(default=False, init=False)
    _release_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def run(self) -> None:
        """Job: build the volume, then the cluster is `available`."""
        started = time.monotonic()
        assert self.snapshot.backup is not None
        try:
            with self.target.lock:
                volume = self.target.engine.restore_volume(self.source, self.snapshot.backup, self.point_in_time)
        finally:
            self.release()
        self.target.volume_pending = False
        cluster = self.target.cluster
        log.info("restored %s from %s to %s in %.2f s (%d bytes of change stream replayed)", cluster.identifier,
                 self.snapshot.identifier, volume.reached.isoformat(), time.monotonic() - started,
                 volume.replayed_bytes)
        self.target.restored = volume  # what the restore reached and replayed, for the benchmark
        self.target.backups.volume_restored()
        if cluster.status == "creating":
            cluster.status = "available"
            self.target.cluster_event(CLUSTER_CREATED, "creation")

    def failed(self, exc: BaseException) -> None:
        """on_error: the cluster shows why it has no volume (`incompatible-restore`, or `cloning-failed`
        for a clone) instead of `creating` for ever; it can be deleted."""
        cluster = self.target.cluster
        self.target.volume_pending = False
        if cluster.status == "creating":
            cluster.status = "cloning-failed" if self.clone else "incompatible-restore"
            self.target.cluster_event(CLUSTER_CREATION_FAILED.format(f"{type(exc).__name__}: {exc}"), "failure")

    def release(self) -> None:
        """Unpin the snapshot and the source (once)."""
        with self._release_lock:
            if self._released:
                return
            self._released = True
        self.snapshot.pin(-1)
        if self.source_backup is not None:
            self.source_backup.unpin()
