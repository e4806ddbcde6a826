"""A cluster's continuous backup, Aurora's way: base backups plus the change stream.

Aurora backs a cluster up continuously from the moment it has data: its automated backups
(listed as `automated` cluster snapshots, `rds:<cluster>-YYYY-MM-DD-HH-MM`) and the change
stream between them let a restore reach any moment from EarliestRestorableTime to
LatestRestorableTime, for BackupRetentionPeriod days. Here a base backup is taken as soon as the
first writer is up, then every `BackupSchedule.interval_s` (an hour by default, so tests do not
pile copies on tmpfs; a control shortens it or takes one now); the engine's change stream
(PostgreSQL: the storage nodes' WAL) fills the gaps. Backups older than the retention period are
pruned, keeping the newest one before its start so the whole period stays restorable.

Every backup lives outside the cluster's own directory (a snapshot must outlive its cluster);
automated ones go with their cluster, as on AWS. Manual snapshots (CreateDBClusterSnapshot, a
final snapshot) of this cluster are taken here too; their records belong to the region.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from harness.emulator.engines.base import BaseBackup, EngineCluster, EngineOperationUnsupported
from harness.emulator.event_messages import (
    AUTOMATED_SNAPSHOT_CREATED,
    AUTOMATED_SNAPSHOT_CREATING,
    MANUAL_SNAPSHOT_CREATED,
    MANUAL_SNAPSHOT_CREATING,
)
from harness.emulator.models import DBCluster, DBClusterSnapshot, EventLog, RestoreWindow, now

log = logging.getLogger("harness.emulator")

AUTOMATED_PREFIX = "rds:"
DEFAULT_INTERVAL_S = 3600.0
DAY_S = 86400.0
RETRY_AFTER_FAILURE_S = 5.0  # a scheduled backup that failed (its writer was failing over) is retried
SNAPSHOT_ATTEMPTS = 3  # a snapshot outlives a failover: it is retried on the new writer


@dataclass
class BackupSchedule:
    """When automated backups are taken and how long a retention day lasts (controls shorten both)."""

    interval_s: float = DEFAULT_INTERVAL_S
    retention_day_s: float = DAY_S


def supports_backups(engine: EngineCluster) -> bool:
    """Does this engine implement base backups (and so snapshots and point-in-time restore)?"""
    return type(engine).base_backup is not EngineCluster.base_backup


def new_snapshot(cluster: DBCluster, identifier: str, snapshot_type: str = "manual",
                 tags: dict[str, str] | None = None) -> DBClusterSnapshot:
    """A snapshot record of `cluster`, `creating` until its data is in."""
    return DBClusterSnapshot(
        identifier=identifier, cluster_id=cluster.identifier, region=cluster.region, engine=cluster.engine,
        engine_version=cluster.engine_version, port=cluster.port, master_username=cluster.master_username,
        master_password=cluster.master_password, database_name=cluster.database_name,
        availability_zones=list(cluster.availability_zones), snapshot_type=snapshot_type,
        cluster_created=cluster.created, cluster_resource_id=cluster.resource_id,
        storage_encrypted=cluster.storage_encrypted, backup_retention_period=cluster.backup_retention_period,
        tags=dict(tags or {}),
    )


def copy_backup(backup: BaseBackup, directory: Path) -> BaseBackup:
    """An independent copy of a backup (CopyDBClusterSnapshot). Backup files are never written
    again (restores only read them), so the copy shares them by hard link; deleting either one
    leaves the other whole."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    linked = subprocess.run(["cp", "-al", str(backup.directory), str(directory)], capture_output=True)
    if linked.returncode != 0:  # another file system: copy the bytes
        shutil.rmtree(directory, ignore_errors=True)
        subprocess.run(["cp", "-a", str(backup.directory), str(directory)], check=True, capture_output=True)
    return BaseBackup(directory, backup.position, backup.started_at, backup.taken_at, backup.size_bytes)


def remove_backup(backup: BaseBackup | None) -> None:
    if backup is not None:
        shutil.rmtree(backup.directory, ignore_errors=True)


class ContinuousBackup:
    """The continuous backup of one cluster, owned by its runtime."""

    def __init__(self, cluster: DBCluster, engine: EngineCluster, events: EventLog, lock: threading.RLock,
                 root: Path | None, schedule: BackupSchedule | None = None):
        self.cluster, self.engine, self.events = cluster, engine, events
        self.data_plane = lock  # the runtime's: held while a resting volume is copied
        self.root = root  # automated backups go here; None: no storage (a control plane under test)
        self.schedule = schedule or BackupSchedule()
        self.automated: list[DBClusterSnapshot] = []
        self.has_volume = False  # the cluster has data: a writer came up, or a restore built its volume
        self.restore_offset_s = 0.0  # emulator-only: the next restore from this cluster lands this much earlier
        self._lock = threading.Lock()  # guards `automated`
        self._backing_up = threading.Lock()  # one base backup at a time
        self._pruning = threading.Lock()
        self._pins = threading.Condition()
        self._restores_reading = 0  # restores from this cluster still reading its backups and change stream
        self._scheduled = False
        self._retry_at = 0.0
        self._unsupported_logged = False
        cluster.restore_window = self.window
        cluster.backtrack_state = self.backtrack_state

    # --- what the API reads ------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.root is not None and supports_backups(self.engine)

    def snapshots(self) -> list[DBClusterSnapshot]:
        with self._lock:
            return list(self.automated)

    def window(self) -> RestoreWindow:
        """(EarliestRestorableTime, LatestRestorableTime): null until the first backup is in, then
        from the oldest kept backup (or the retention period's start) to what the engine's change
        stream holds."""
        kept = [s.backup for s in self.snapshots() if s.status == "available" and s.backup is not None]
        if not kept:
            return None, None
        current = now()
        earliest = max(min(b.taken_at for b in kept), current - self.retention())
        try:
            latest = self.engine.restorable_until() or max(b.taken_at for b in kept)
        except Exception:
            log.exception("%s: restorable_until failed", self.cluster.identifier)
            latest = max(b.taken_at for b in kept)
        return earliest, max(latest, earliest)

    def backtrack_state(self) -> tuple[datetime | None, int]:
        """(EarliestBacktrackTime, BacktrackConsumedChangeRecords). A backtrack is a restore in place
        from this continuous backup, so the earliest backtrack time is the earliest restorable time,
        or the start of the backtrack window once the window has slid past it (None until the first
        backup is in, as nothing could be rewound to before it)."""
        earliest, _ = self.window()
        if earliest is not None:
            earliest = max(earliest, now() - timedelta(seconds=self.cluster.backtrack_window))
        try:
            records = self.engine.change_records()
        except Exception:
            log.exception("%s: counting change records failed", self.cluster.identifier)
            records = 0
        return earliest, records

    def backtrack_window_short(self) -> bool:
        """RDS-EVENT-0131's condition: the continuous backup no longer reaches as far back as the
        target window (the backup retention period is shorter than the window and has passed)."""
        kept = [s.backup.taken_at for s in self.snapshots() if s.status == "available" and s.backup is not None]
        window = timedelta(seconds=self.cluster.backtrack_window)
        return bool(kept) and self.retention() < window and min(kept) < now() - self.retention()

    def retention(self) -> timedelta:
        return timedelta(seconds=self.cluster.backup_retention_period * self.schedule.retention_day_s)

    def backup_for(self, point: datetime) -> DBClusterSnapshot | None:
        """The automated backup a restore (or a backtrack) to `point` starts from: the newest one
        consistent by then on the point's branch of the history."""
        usable = [s for s in self.snapshots() if s.status == "available" and s.backup is not None
                  and s.backup.taken_at <= point and self.engine.backup_reaches(s.backup, point)]
        return max(usable, key=lambda s: s.backup.taken_at) if usable else None  # type: ignore[union-attr]

    # --- what the runtime and the monitor call ------------------------------------------------------
    def writer_started(self) -> None:
        """The first writer is up: the cluster has data, and the first backup is due now."""
        self.has_volume = True

    def volume_restored(self) -> None:
        self.has_volume = True

    def next_job(self) -> Callable[[], object] | None:
        """What the monitor should run now, if anything: the next automated backup when it is due
        (the first as soon as a writer is up), else pruning once retention has passed a backup."""
        if not self.enabled:
            return None
        if self._scheduled or self.cluster.status != "available" or time.monotonic() < self._retry_at:
            return None
        if self.engine.writer_id is not None and self._backup_due():
            self._scheduled = True
            return self._scheduled_backup
        if self._expired():
            self._scheduled = True
            return self._scheduled_prune
        return None

    def _backup_due(self) -> bool:
        latest = self.snapshots()
        if not latest:
            return True
        return latest[-1].created <= now() - timedelta(seconds=self.schedule.interval_s)

    def _scheduled_backup(self) -> None:
        try:
            self.take_automated()
        except EngineOperationUnsupported:
            pass
        except LookupError as exc:  # its instances were being deleted: routine, no traceback
            log.info("%s: automated backup skipped (%s); retrying in %g s", self.cluster.identifier, exc,
                     RETRY_AFTER_FAILURE_S)
            self._retry_at = time.monotonic() + RETRY_AFTER_FAILURE_S
        except Exception:
            log.warning("%s: automated backup failed; retrying in %g s", self.cluster.identifier,
                        RETRY_AFTER_FAILURE_S, exc_info=True)
            self._retry_at = time.monotonic() + RETRY_AFTER_FAILURE_S
        finally:
            self._scheduled = False

    def _scheduled_prune(self) -> None:
        try:
            self.prune()
        finally:
            self._scheduled = False

    # --- taking backups -----------------------------------------------------------------------------
    def take_automated(self) -> DBClusterSnapshot:
        """Take an automated backup now (on schedule, or asked by a control) and prune behind it."""
        if self.root is None:
            raise EngineOperationUnsupported("this emulator keeps no backups (no backup directory)")
        snapshot = new_snapshot(self.cluster, self._automated_name(), "automated")
        with self._lock:
            self.automated.append(snapshot)
        try:
            self.take_snapshot(snapshot, self.root / snapshot.directory_name)
        except BaseException:
            with self._lock:  # pruned meanwhile, or the cluster's backups dropped with its deletion
                if snapshot in self.automated:
                    self.automated.remove(snapshot)
            raise
        self.prune()
        return snapshot

    def take_snapshot(self, snapshot: DBClusterSnapshot, directory: Path) -> None:
        """Fill `snapshot` with a base backup of this cluster (online from its writer, or a copy of
        its resting volume when it has no instance), retried on the new writer after a failover."""
        automated = snapshot.snapshot_type == "automated"
        self._event(snapshot, AUTOMATED_SNAPSHOT_CREATING if automated else MANUAL_SNAPSHOT_CREATING)
        with self._backing_up:
            for attempt in range(1, SNAPSHOT_ATTEMPTS + 1):
                shutil.rmtree(directory, ignore_errors=True)
                try:
                    backup = self._base_backup(directory)
                    break
                except EngineOperationUnsupported:
                    self._log_unsupported()
                    raise
                except Exception as exc:
                    shutil.rmtree(directory, ignore_errors=True)
                    if attempt == SNAPSHOT_ATTEMPTS:
                        raise
                    # One line: an instance restarting or going away under a backup is routine.
                    log.warning("%s: base backup attempt %d failed (%s); retrying", self.cluster.identifier,
                                attempt, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
                    with self.data_plane:  # a failover in progress finishes first
                        pass
        snapshot.backup, snapshot.status, snapshot.percent_progress = backup, "available", 100
        if automated:
            snapshot.created = backup.started_at
        self._event(snapshot, AUTOMATED_SNAPSHOT_CREATED if automated else MANUAL_SNAPSHOT_CREATED)

    def _base_backup(self, directory: Path) -> BaseBackup:
        for _ in range(2):
            with self.data_plane:
                if self.engine.writer_id is None:  # a resting volume: copied while no instance can start on it
                    return self.engine.base_backup(directory)
            try:
                return self.engine.base_backup(directory)
            except LookupError:  # the last instance was deleted meanwhile: the volume rests now
                shutil.rmtree(directory, ignore_errors=True)
        return self.engine.base_backup(directory)

    def _automated_name(self) -> str:
        base = f"{AUTOMATED_PREFIX}{self.cluster.identifier}-{now():%Y-%m-%d-%H-%M}"
        taken = {s.identifier for s in self.snapshots()}
        name, n = base, 1
        while name in taken:  # only a shortened interval takes two in a minute
            n += 1
            name = f"{base}-{n}"
        return name

    def _event(self, snapshot: DBClusterSnapshot, message: str) -> None:
        self.events.add("db-cluster-snapshot", snapshot.identifier, snapshot.arn, message, "backup")

    def _log_unsupported(self) -> None:
        if not self._unsupported_logged:
            self._unsupported_logged = True
            log.info("%s: the %s engine of this emulator takes no backups yet", self.cluster.identifier,
                     self.cluster.engine)

    # --- retention ----------------------------------------------------------------------------------
    def _expired(self) -> list[DBClusterSnapshot]:
        """Automated backups the retention period has passed: each one whose successor is itself
        older than the period's start (the newest such one stays, so the start stays restorable)."""
        start = now() - self.retention()
        kept = [s for s in self.snapshots() if s.status == "available" and s.backup is not None]
        return [s for s, successor in zip(kept, kept[1:]) if successor.backup.taken_at <= start  # type: ignore[union-attr]
                and s.in_use == 0]

    def prune(self) -> int:
        """Drop expired automated backups and the change stream only they needed; returns how many went."""
        with self._pruning:
            return self._prune()

    def _prune(self) -> int:
        expired = self._expired()
        if not expired:
            return 0
        with self._lock:
            for snapshot in expired:
                self.automated.remove(snapshot)
        for snapshot in expired:
            remove_backup(snapshot.backup)
        oldest = min((s.backup.started_at for s in self.snapshots() if s.backup is not None), default=None)
        if oldest is not None:
            try:
                files = self.engine.prune_continuous_backup(oldest)
                log.info("%s: pruned %d backups and %d change-stream files", self.cluster.identifier,
                         len(expired), files)
            except Exception:
                log.exception("%s: pruning the change stream failed", self.cluster.identifier)
        return len(expired)

    # --- restores from this cluster -----------------------------------------------------------------
    def pin(self) -> None:
        """A restore from this cluster starts reading its backups and change stream."""
        with self._pins:
            self._restores_reading += 1

    def unpin(self) -> None:
        with self._pins:
            self._restores_reading -= 1
            self._pins.notify_all()

    def wait_unpinned(self, timeout: float) -> None:
        """Deleting the cluster waits for restores that still read from it."""
        with self._pins:
            if not self._pins.wait_for(lambda: self._restores_reading == 0, timeout):
                raise TimeoutError(f"restores from {self.cluster.identifier} still running after {timeout:g} s")

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No base backup runs meanwhile (a backtrack rebuilds the data a backup would copy)."""
        with self._backing_up:
            yield

    def take_restore_offset(self) -> float:
        """The negative control's offset for this restore; the next one is exact again."""
        offset, self.restore_offset_s = self.restore_offset_s, 0.0
        return offset

    def destroy(self) -> None:
        """Automated backups go with their cluster, as on AWS (manual snapshots stay)."""
        with self._lock:
            gone, self.automated = self.automated, []
        for snapshot in gone:
            remove_backup(snapshot.backup)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
