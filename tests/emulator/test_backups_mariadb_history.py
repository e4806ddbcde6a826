"""The MariaDB binlog archive's history, on synthetic binlogs and clocks (no server): how a failover's
histories are stitched by GTID, which clock places a transaction, and what LatestRestorableTime
may claim. The failover these binlogs describe:

    w1 (server 101) writes 1..5, which reach its reader w2, then 6 and 7, which do not;
    w2 (server 102), cloned after 2, replicates 3..5, is promoted and writes its own 6, 7, 8.

The live engine's tests (test_backups_mariadb.py) cannot force the old writer's lost tail.
"""

from __future__ import annotations

import struct
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.emulator.engines.mariadb_backup import (
    CLOCK_RECORD,
    GTID,
    GTID_LIST,
    HEADER,
    XID,
    BinlogHistory,
    HistoryError,
    from_ns,
    read_transactions,
)

MS = 1_000_000  # ns
BASE = 1_800_000_000_000 * MS  # an arbitrary instant


def at(ms: float) -> datetime:
    return from_ns(BASE + int(ms * MS))


def event(kind: int, server: int, body: bytes, start: int) -> bytes:
    length = HEADER.size + len(body) + 4  # and a CRC32 the parser does not read
    return HEADER.pack(0, kind, server, length, start + length, 0) + body + b"\0\0\0\0"


def binlog(path: Path, before: list[tuple[int, int]], transactions: list[tuple[int, int]]) -> list[int]:
    """A binlog file: a Gtid_list of `before` ((server, seq) pairs), then one XID-ended transaction
    per (server, seq); returns each transaction's end offset."""
    data = bytearray(b"\xfebin")
    body = struct.pack("<I", len(before)) + b"".join(struct.pack("<IIQ", 0, server, seq) for server, seq in before)
    data += event(GTID_LIST, 0, body, len(data))
    ends = []
    for server, seq in transactions:
        data += event(GTID, server, struct.pack("<QIB", seq, 0, 0), len(data))
        data += event(XID, server, struct.pack("<Q", seq), len(data))
        ends.append(len(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return ends


def clock(path: Path, records: list[tuple[int, int, float]]) -> None:
    """(binlog number, end offset, ms) records."""
    path.write_bytes(b"".join(CLOCK_RECORD.pack(number, 0, end, BASE + int(ms * MS)) for number, end, ms in records))


@pytest.fixture
def failed_over(tmp_path: Path) -> BinlogHistory:
    history = BinlogHistory(tmp_path)
    history.clock_root.mkdir(parents=True)
    w1 = binlog(history.archive_dir("w1") / "binlog.000001", [],
                [(101, 1), (101, 2), (101, 3), (101, 4), (101, 5), (101, 6), (101, 7)])
    clock(history.clock_path("w1"), [(1, end, 10 * (i + 1)) for i, end in enumerate(w1)])  # seq n at 10n ms
    w2 = binlog(history.archive_dir("w2") / "binlog.000001", [(101, 2)],
                [(101, 3), (101, 4), (101, 5), (102, 6), (102, 7), (102, 8)])
    replicated, own = [31, 41, 51], [80, 90, 100]  # a replica writes its copy a millisecond later
    clock(history.clock_path("w2"), [(1, end, ms) for end, ms in zip(w2, replicated + own)])
    history._writers_file.write_text(f"w1 {BASE}\nw2 {BASE + 75 * MS}\n")
    return history


def test_the_parser_reads_transactions_and_their_byte_ranges(failed_over: BinlogHistory) -> None:
    found = read_transactions(failed_over.archive_dir("w2") / "binlog.000001")
    assert [t.gtid for t in found] == ["0-101-3", "0-101-4", "0-101-5", "0-102-6", "0-102-7", "0-102-8"]
    assert all(a.end == b.start for a, b in zip(found, found[1:]))


def test_the_history_is_the_new_writers_and_drops_the_old_writers_lost_tail(failed_over: BinlogHistory) -> None:
    plan = failed_over.plan("0-101-2", at(95))
    assert plan.position == "0-102-7" and plan.transactions == 5  # 3, 4, 5, then w2's 6 and 7: never w1's 6, 7
    assert [s.files[0].parent.name for s in plan.segments] == ["w2"]


def test_a_transaction_is_placed_by_the_binlog_it_committed_on_not_a_replicas(failed_over: BinlogHistory) -> None:
    assert failed_over.plan("0-101-2", at(30.5)).position == "0-101-3"  # w1 wrote it at 30, w2's copy at 31
    assert failed_over.plan("0-101-2", at(29.9)).position == "0-101-2"  # nothing after the backup yet


def test_a_point_before_the_failover_still_ends_on_the_history_the_cluster_kept(failed_over: BinlogHistory) -> None:
    assert failed_over.plan("0-101-2", at(72)).position == "0-101-5"  # w1's lost 6 and 7 (60, 70 ms) are not it


def test_a_backup_newer_than_the_point_is_refused(failed_over: BinlogHistory) -> None:
    with pytest.raises(HistoryError, match="holds commits made after"):
        failed_over.plan("0-101-4", at(35))


def test_latest_restorable_time_is_now_only_when_every_writer_is_archived(failed_over: BinlogHistory) -> None:
    now = at(200)
    assert failed_over.restorable_until(now) == now
    archived = failed_over.archive_dir("w2") / "binlog.000001"
    archived.write_bytes(archived.read_bytes()[:-30])  # w2's last commit (100 ms) not received yet
    assert failed_over.restorable_until(now) == at(100) - (at(1) - at(0)) / 1000
    with pytest.raises(HistoryError, match="lacks what w2 wrote"):
        failed_over.plan("0-101-2", at(150))
    assert failed_over.plan("0-101-2", at(95)).position == "0-102-7"


def test_a_new_writer_whose_archive_has_not_started_holds_everything_back(failed_over: BinlogHistory) -> None:
    (failed_over.archive_dir("w2") / "binlog.000001").unlink()
    assert failed_over.restorable_until(at(200)) < at(75), "nothing after w2 became the writer is known"
    with pytest.raises(HistoryError, match="archive of w2 has not started"):
        failed_over.plan("0-101-2", at(65))  # w1's lost 6 (60 ms) cannot be told from the history yet


def test_a_gap_in_the_archive_is_an_error_not_a_shorter_restore(failed_over: BinlogHistory) -> None:
    binlog(failed_over.archive_dir("w2") / "binlog.000001", [(101, 2)], [(101, 3), (102, 7), (102, 8)])
    with pytest.raises(HistoryError, match="lacks transactions 0-\\*-4..6"):
        failed_over.plan("0-101-2", at(95))


def test_a_write_the_server_died_before_recording_takes_the_next_record(tmp_path: Path) -> None:
    history = BinlogHistory(tmp_path)
    history.clock_root.mkdir(parents=True)
    first = binlog(history.archive_dir("w1") / "binlog.000001", [], [(101, 1), (101, 2)])
    second = binlog(history.archive_dir("w1") / "binlog.000002", [(101, 2)], [(101, 3)])
    # Killed after writing 2 and before recording it; crash recovery commits it; the restart's
    # new file is recorded at 50 ms, then 3 at 60 ms.
    clock(history.clock_path("w1"), [(1, first[0], 10), (2, 60, 50), (2, second[0], 60)])
    history._writers_file.write_text(f"w1 {BASE}\n")
    assert history.plan("", at(20)).position == "0-101-1"
    assert history.plan("", at(55)).position == "0-101-2"
    assert history.restorable_until(datetime.now(timezone.utc)) is not None
