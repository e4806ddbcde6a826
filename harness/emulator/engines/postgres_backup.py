"""Continuous backup, snapshots and point-in-time restore for Aurora PostgreSQL on real PostgreSQL.

The six storage nodes already hold every acknowledged commit's WAL (`postgres_volume`): they are
the continuous backup. A base backup is `pg_basebackup` of the writer (`-X stream`, so the copy is
self-contained), or a copy of the resting volume when the cluster has no instance. A restore
copies a base backup, gives recovery its own copy of the source's WAL (`restore_command`,
timeline history included, so it follows the source across failovers), recovers to
`recovery_target_time` with `recovery_target_inclusive = on`, promotes and shuts down cleanly: the
new cluster's resting volume, on a timeline of its own.

The boundary: PostgreSQL stops before the first commit record whose timestamp is after the target
(inclusive), at microsecond resolution. A commit's timestamp is taken before its record is written
and the client's acknowledgement comes after four storage nodes have it, so every commit
acknowledged at or before the point is restored and none begun after it is. When the point is
after the last commit the WAL holds (an idle cluster), PostgreSQL 13+ ends with "recovery ended
before configured recovery target was reached"; the WAL is complete up to now (the nodes are
synchronous), so recovery then replays it to its end.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from harness.emulator.engines.base import BaseBackup, RestoredVolume
from harness.emulator.engines.postgres_volume import archive_wal, lsn_value, prune_wal, segno_of
from harness.emulator.processes import CommandError

if TYPE_CHECKING:
    from harness.emulator.engines.postgres import PgCluster

TARGET_NOT_REACHED = "recovery ended before configured recovery target was reached"
PRUNE_MARGIN_S = 1.0  # WAL last written this close to a kept backup's start stays


def now() -> datetime:
    return datetime.now(UTC)


def base_backup(cluster: PgCluster, destination: Path) -> BaseBackup:
    """An online, consistent copy of the writer, or of the resting volume when there is no instance."""
    started = now()
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True, mode=0o700)
    if cluster.writer_id is not None:
        cluster.registry.give_to_engine_user(destination)
        cluster.copy_writer(destination)
        lsn, timeline = _backup_label(destination)
    else:
        resting = cluster.volume_dir / "pgdata"
        if not resting.is_dir():
            raise CommandError(f"cluster {cluster.link_prefix} has no data to back up")
        destination.rmdir()
        cluster.registry.run(["cp", "-a", str(resting), str(destination)], as_engine_user=False)
        lsn, timeline = _checkpoint(cluster, destination)
    return BaseBackup(destination, f"{lsn} on timeline {timeline}", started, now(), _size(destination))


def restorable_until(cluster: PgCluster) -> datetime | None:
    """Now, once the cluster has data: a commit is acknowledged only after four storage nodes have
    its WAL, so the continuous backup holds every commit acknowledged so far (Aurora's trails by
    up to about five minutes)."""
    if cluster.writer_id is None and not (cluster.volume_dir / "pgdata").is_dir():
        return None
    return now()


def restore_volume(cluster: PgCluster, source: PgCluster, backup: BaseBackup, point_in_time: datetime | None
                   ) -> RestoredVolume:
    """Build `cluster`'s resting volume from `backup` of `source`, recovered to `point_in_time`
    (None: the backup alone, to its consistent point)."""
    work = cluster.root / "restore"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    pgdata, archive, log_path = work / "pgdata", work / "wal", work / "recovery.log"
    cluster.registry.run(["cp", "-a", str(backup.directory), str(pgdata)], as_engine_user=False)
    pgdata.chmod(0o700)  # PostgreSQL refuses a data directory others can read
    for leftover in ("standby.signal", "postmaster.pid", "postmaster.opts"):
        (pgdata / leftover).unlink(missing_ok=True)
    start_lsn = _backup_label(pgdata)[0] if (pgdata / "backup_label").exists() else _checkpoint(cluster, pgdata)[0]
    archive.mkdir()
    if point_in_time is not None:
        archive_wal([source.volume_dir / n for n in source.node_names], archive, segno_of(start_lsn))
    (pgdata / "recovery.signal").touch()
    cluster.registry.give_to_engine_user(work)
    settings = {"restore_command": f"test -f '{archive}/%f' && cp '{archive}/%f' '%p'",
                "recovery_target_timeline": "latest", "recovery_target_action": "promote"}
    if point_in_time is None:
        target = {"recovery_target": "immediate"}
    else:
        target = {"recovery_target_time": f"{point_in_time.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f+00}",
                  "recovery_target_inclusive": "on"}
    try:
        cluster.recover_offline(pgdata, {**settings, **target}, log_path)
    except CommandError:
        if TARGET_NOT_REACHED not in log_path.read_text(errors="replace"):
            raise
        # The point is after the last commit in the WAL (or the backup is a cleanly shut down volume,
        # consistent before any replay): all of the WAL there is is wanted.
        cluster.recover_offline(pgdata, settings, log_path)
    end_lsn = _redo_end(log_path) or start_lsn
    resting = cluster.volume_dir / "pgdata"
    shutil.rmtree(resting, ignore_errors=True)
    shutil.move(str(pgdata), resting)
    shutil.rmtree(work, ignore_errors=True)
    return RestoredVolume(reached=point_in_time or backup.taken_at, position=end_lsn,
                          replayed_bytes=max(0, lsn_value(end_lsn) - lsn_value(start_lsn)), resolution_s=1e-6)


def prune_continuous_backup(cluster: PgCluster, before: datetime) -> int:
    """Remove storage-node WAL written before `before` (the oldest kept backup's start)."""
    return prune_wal([cluster.volume_dir / n for n in cluster.node_names], before.timestamp() - PRUNE_MARGIN_S)


def _backup_label(pgdata: Path) -> tuple[str, int]:
    """Where a base backup starts: 'START WAL LOCATION: 0/2000028 (file ...)', 'START TIMELINE: 1'."""
    label = (pgdata / "backup_label").read_text()
    lsn = re.search(r"^START WAL LOCATION: (\S+)", label, re.M)
    timeline = re.search(r"^START TIMELINE: (\d+)", label, re.M)
    if lsn is None:
        raise CommandError(f"no start position in {pgdata}/backup_label")
    return lsn.group(1), int(timeline.group(1)) if timeline else 1


def _checkpoint(cluster: PgCluster, pgdata: Path) -> tuple[str, int]:
    """A cleanly shut down volume's last checkpoint, from pg_controldata."""
    control = cluster.registry.run([cluster.bins("pg_controldata"), str(pgdata)], env={"LC_ALL": "C"})
    lsn = re.search(r"^Latest checkpoint location:\s+(\S+)", control, re.M)
    timeline = re.search(r"^Latest checkpoint's TimeLineID:\s+(\d+)", control, re.M)
    if lsn is None or timeline is None:
        raise CommandError(f"pg_controldata gave no checkpoint for {pgdata}")
    return lsn.group(1), int(timeline.group(1))


def _redo_end(log_path: Path) -> str | None:
    """Where replay stopped: the last 'redo done at 0/3001F70' the recovery logged."""
    found = re.findall(r"redo done at ([0-9A-F]+/[0-9A-F]+)", log_path.read_text(errors="replace"))
    return found[-1] if found else None


def _size(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file() and not f.is_symlink())
