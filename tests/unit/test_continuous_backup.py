"""A cluster's continuous backup without engines: when automated backups are due, what retention
keeps (the newest backup before the period's start stays, so all of it is restorable), the restore
window it reports, and what a failed or refused backup leaves. A fake engine and a fake clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from harness.emulator import backups
from harness.emulator.backups import BackupSchedule, ContinuousBackup
from harness.emulator.engines.base import BaseBackup, EngineCluster
from harness.emulator.models import DBCluster, EventLog

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeEngine(EngineCluster):
    aurora_engine: ClassVar[str] = "aurora-postgresql"

    def __init__(self, clock: Clock):  # no processes: only what continuous backup asks
        self.clock, self.writer_id, self.pruned_before, self.fail = clock, "w", [], False

    def base_backup(self, destination: Path) -> BaseBackup:
        if self.fail:
            raise RuntimeError("the writer went away")
        destination.mkdir(parents=True)
        return BaseBackup(destination, "0/0", self.clock(), self.clock() + timedelta(seconds=1))

    def restorable_until(self) -> datetime | None:
        return self.clock()

    def prune_continuous_backup(self, before: datetime) -> int:
        self.pruned_before.append(before)
        return 1


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(backups, "now", fake)
    return fake


def continuous(tmp_path: Path, clock: Clock, **schedule: Any) -> ContinuousBackup:
    cluster = DBCluster(identifier="orders", region="us-east-1", engine="aurora-postgresql", status="available")
    return ContinuousBackup(cluster, FakeEngine(clock), EventLog(), threading.RLock(), tmp_path,
                            BackupSchedule(**schedule))


def run_due(backup: ContinuousBackup) -> bool:
    job = backup.next_job()
    if job is not None:
        job()
    return job is not None


def test_the_first_backup_is_due_with_the_first_writer_and_opens_the_window(tmp_path: Path, clock: Clock) -> None:
    backup = continuous(tmp_path, clock)
    assert backup.window() == (None, None) and backup.cluster.describe()["EarliestRestorableTime"] is None
    backup.engine.writer_id = None
    assert backup.next_job() is None, "no writer, nothing to back up"
    backup.engine.writer_id = "w"
    assert run_due(backup)
    [first] = backup.snapshots()
    assert first.identifier == "rds:orders-2026-01-01-12-00" and first.snapshot_type == "automated"
    assert first.status == "available" and first.created == START
    consistent = START + timedelta(seconds=1)
    assert backup.window() == (consistent, consistent), "never a latest time before the earliest"
    clock.advance(30)
    assert backup.window() == (consistent, clock.now)
    assert [e.message for e in backup.events.snapshot()] == ["Creating automated cluster snapshot.",
                                                             "Automated cluster snapshot created."]


def test_backups_follow_the_interval_and_two_in_a_minute_get_distinct_names(tmp_path: Path, clock: Clock) -> None:
    backup = continuous(tmp_path, clock, interval_s=20)
    assert run_due(backup)
    clock.advance(10)
    assert not run_due(backup), "not due before the interval has passed"
    clock.advance(10)
    assert run_due(backup)
    assert [s.identifier for s in backup.snapshots()] == ["rds:orders-2026-01-01-12-00", "rds:orders-2026-01-01-12-00-2"]


def test_retention_keeps_the_newest_backup_before_the_period_so_all_of_it_stays_restorable(
        tmp_path: Path, clock: Clock) -> None:
    backup = continuous(tmp_path, clock, interval_s=10, retention_day_s=15)  # BackupRetentionPeriod 1: 15 s
    for _ in range(3):  # backups at 0, 10 and 20 s
        assert run_due(backup)
        clock.advance(10)
    first, second, third = backup.snapshots()
    clock.advance(-5)  # 25 s: the period starts at 10 s, before the second backup was consistent (11 s)
    assert backup.prune() == 0
    clock.advance(1)  # 26 s: the second backup (consistent at 11 s) covers the period's start
    assert backup.prune() == 1 and backup.snapshots() == [second, third]
    assert not first.backup.directory.exists() and backup.engine.pruned_before == [second.backup.started_at]
    assert backup.window()[0] == clock.now - timedelta(seconds=15)
    backup.cluster.backup_retention_period = 2  # ModifyDBCluster: a longer period keeps more from now on
    clock.advance(20)
    assert backup.prune() == 0


def test_a_backup_a_restore_is_reading_is_not_pruned(tmp_path: Path, clock: Clock) -> None:
    backup = continuous(tmp_path, clock, interval_s=10, retention_day_s=5)
    for _ in range(2):
        run_due(backup)
        clock.advance(10)
    first = backup.snapshots()[0]
    first.pin()
    assert backup.prune() == 0
    first.pin(-1)
    assert backup.prune() == 1


def test_a_failed_backup_leaves_no_snapshot_and_is_retried_later(tmp_path: Path, clock: Clock) -> None:
    backup = continuous(tmp_path, clock)
    backup.engine.fail = True
    assert run_due(backup)
    assert backup.snapshots() == [] and backup.window() == (None, None)
    assert backup.next_job() is None, "not retried at once"
    backup.engine.fail = False
    backup._retry_at = 0.0
    assert run_due(backup) and len(backup.snapshots()) == 1


def test_the_restore_offset_applies_to_one_restore(tmp_path: Path, clock: Clock) -> None:
    backup = continuous(tmp_path, clock)
    backup.restore_offset_s = 2.5
    assert backup.take_restore_offset() == 2.5 and backup.take_restore_offset() == 0.0


def test_an_engine_without_backups_is_never_due(tmp_path: Path, clock: Clock) -> None:
    class NoBackups(FakeEngine):
        base_backup = EngineCluster.base_backup  # type: ignore[assignment]

    cluster = DBCluster(identifier="legacy", region="us-east-1", status="available")
    backup = ContinuousBackup(cluster, NoBackups(clock), EventLog(), threading.RLock(), tmp_path)
    assert not backup.enabled and backup.next_job() is None and backup.window() == (None, None)


def test_the_earliest_backtrack_time_is_the_earliest_restorable_one_until_the_window_slides_past_it(
        tmp_path: Path, clock: Clock) -> None:
    backup = continuous(tmp_path, clock, retention_day_s=600.0)
    backup.cluster.backtrack_window = 300
    assert backup.backtrack_state() == (None, 0), "nothing to rewind to before the first backup"
    assert run_due(backup)
    consistent = START + timedelta(seconds=1)
    clock.advance(100)
    assert backup.backtrack_state()[0] == consistent
    assert not backup.backtrack_window_short(), "a young cluster has lost nothing"
    clock.advance(400)
    assert backup.backtrack_state()[0] == clock.now - timedelta(seconds=300), "the window slides"
    backup.cluster.backtrack_window = 3600  # longer than the retention period (600 s here)
    clock.advance(500)
    assert backup.backtrack_state()[0] == clock.now - timedelta(seconds=600), "retention bounds it"
    assert backup.backtrack_window_short(), "RDS-EVENT-0131: the actual window is smaller than the target"
