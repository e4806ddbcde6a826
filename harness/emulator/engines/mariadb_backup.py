"""Continuous backup and point-in-time restore for Aurora MySQL on MariaDB.

The continuous backup is the cluster's binlog archive: `mariadb-binlog --read-from-remote-server
--raw --stop-never` streams the writer's binlog into `volume/binlog-archive/<history>/` (one
directory per writer the cluster has had, named `writers` in the order they became the writer),
byte for byte as the writer wrote it.

Where to stop replaying is the hard part. MariaDB stamps binlog events to the second, and a
ROW-format transaction carries no finer time: there is no BEGIN query event (the GTID event
stands for it), and `SET TIMESTAMP=<s>.<us>` appears only for statement-logged queries that
used sub-second time. So every server runs with the binlog clock (`mariadb_binlog_clock.c`,
preloaded): each `write()` to its own binlog appends (binlog number, end offset, time in ns)
to `volume/binlog-clock/<history>.clock` before the write returns. A transaction reaches the
binlog during its COMMIT, after its statements began and before the client is told it
committed, so "the writer's binlog as it stood at T" holds every commit acknowledged by T and
nothing that began after T: that prefix, found by bisecting the clock, is where replay stops.
Its resolution is the clock's (nanoseconds, reported as datetime's microsecond).

A history is one data directory's binlog: it begins when a data directory is created (a new
cluster, a reader's clone, a restore) and follows it through restarts; its name is in the data
directory (`HISTORY_MARKER`). After a failover the new writer's binlog holds the old writer's
transactions it replicated (with their original GTIDs) and then its own, so the cluster's
history is stitched by GTID: each sequence number comes from the latest writer whose archive
has it (an old writer's commits that never reached a reader are dropped, as the failover
dropped them), and its time from the earliest binlog that wrote it (the one it committed on).
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import shlex
import struct
import subprocess
import threading
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import groupby
from pathlib import Path

from harness.emulator.engines.mariadb_timeline import Link, Timeline

log = logging.getLogger(__name__)

BINLOG_BASE = "binlog"  # the engine's `log_bin`
HISTORY_MARKER = "gameday-history"  # in a data directory: the history its binlog belongs to
CLOCK_SOURCE = Path(__file__).with_name("mariadb_binlog_clock.c")
CLOCK_ENV = "GAMEDAY_BINLOG_CLOCK"
ONE_MICROSECOND = timedelta(microseconds=1)
DOMAIN = 0  # every writer logs in GTID domain 0, so sequence numbers order the whole history

# --- binlog events (MariaDB's v4 format) ------------------------------------------------------------
HEADER = struct.Struct("<IBIIIH")  # timestamp, type, server id, event size, end position, flags
QUERY, STOP, ROTATE, XID, XA_PREPARE, GTID, GTID_LIST = 2, 3, 4, 16, 38, 162, 163
GTID_BODY = struct.Struct("<QIB")  # sequence number, domain, flags
FL_STANDALONE = 0x01  # a GTID event whose transaction is one query event (DDL)
QUERY_POST_HEADER = 13  # thread id 4, exec time 4, db length 1, error code 2, status vars length 2
CLOCK_RECORD = struct.Struct("<IIQq")  # binlog number, reserved, end offset, unix time in ns
OFFSET_BITS = 40  # binlog files are at most 1 GiB (max_binlog_size): (number, end) packs in an int64


class HistoryError(RuntimeError):
    """The continuous backup cannot restore what was asked (a gap, a missing clock, a point too late)."""


def gtid_seq(gtid: str | None) -> int:
    """Sequence number of domain 0 in a GTID position such as '0-3-1234' (0 when empty)."""
    for part in (gtid or "").split(","):
        part = part.strip()
        if part.startswith(f"{DOMAIN}-"):
            return int(part.rsplit("-", 1)[1])
    return 0


def domain_gtid(position: str | None) -> str:
    """The domain-0 GTID of a position such as '0-3-1234,1-5-6' ('' when it has none)."""
    return next((part.strip() for part in (position or "").split(",") if part.strip().startswith(f"{DOMAIN}-")), "")


def binlog_number(name: str) -> int:
    """binlog.000042 -> 42."""
    return int(name.rsplit(".", 1)[1])


def binlog_files(directory: Path) -> list[Path]:
    """The binlog files in a directory (a data directory or an archive), in order."""
    found = [p for p in directory.glob(f"{BINLOG_BASE}.*") if p.suffix[1:].isdigit()]
    return sorted(found, key=lambda p: binlog_number(p.name))


def to_ns(moment: datetime) -> int:
    """A datetime (naive means UTC) as Unix nanoseconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def from_ns(ns: int) -> datetime:
    """Unix nanoseconds as a UTC datetime, rounded down to the microsecond."""
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=ns // 1_000)


@dataclass(frozen=True)
class Transaction:
    """One transaction of a binlog file: its GTID (domain 0) and where its bytes are."""

    seq: int
    server_id: int
    file: str
    start: int  # offset of its GTID event
    end: int  # offset just past its last event (its end position on the writer)
    standalone: bool = False  # a single statement, not a transaction of row events: DDL

    @property
    def gtid(self) -> str:
        return f"{DOMAIN}-{self.server_id}-{self.seq}"


def _mapped(path: Path) -> Iterator[memoryview | bytes]:
    """A file's bytes without reading it all into memory (an empty file maps to b'')."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            yield b""
            return
        with mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                yield view
            finally:
                view.release()


def _query_is_commit(buf: memoryview | bytes, pos: int) -> bool:
    """Does the query event at `pos` end a transaction (COMMIT, ROLLBACK)?"""
    body = pos + HEADER.size
    db_length = buf[body + 8]
    status_length = struct.unpack_from("<H", buf, body + 11)[0]
    start = body + QUERY_POST_HEADER + status_length + db_length + 1
    text = bytes(buf[start:start + 8]).upper()
    return text.startswith(b"COMMIT") or text.startswith(b"ROLLBACK")


def read_transactions(path: Path) -> list[Transaction]:
    """The complete domain-0 transactions of a binlog file, in order.

    A transaction starts at its GTID event and ends after its XID event, its COMMIT / ROLLBACK
    query, its only query (a standalone GTID: DDL), or, failing those, where the next GTID event
    starts. The end of an archive file still being written may cut one short: it is left out.
    """
    found: list[Transaction] = []
    for buf in _mapped(path):
        size = len(buf)
        pos, current = 4, None  # after the magic number
        while pos + HEADER.size <= size:
            _, kind, server, length, _, _ = HEADER.unpack_from(buf, pos)
            if length < HEADER.size or pos + length > size:
                break  # an event still being written
            end = pos + length
            if kind == GTID:
                if current is not None:
                    found.append(Transaction(current[0], current[1], path.name, current[2], pos,
                                             bool(current[3] & FL_STANDALONE)))
                seq, domain, flags = GTID_BODY.unpack_from(buf, pos + HEADER.size)
                current = (seq, server, pos, flags) if domain == DOMAIN else None
            elif current is not None:
                if kind in (XID, XA_PREPARE) or (kind == QUERY and (current[3] & FL_STANDALONE
                                                                    or _query_is_commit(buf, pos))):
                    found.append(Transaction(current[0], current[1], path.name, current[2], end,
                                             bool(current[3] & FL_STANDALONE)))
                    current = None
                elif kind in (ROTATE, STOP):
                    current = None
            pos = end
    return found


def first_gtid_list_seq(path: Path) -> int | None:
    """The domain-0 sequence number in a binlog file's opening Gtid_list event: every transaction
    in the files before it is at or below it (None if the file has no such event yet)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    pos = 4
    while pos + HEADER.size <= len(head):
        _, kind, _, length, _, _ = HEADER.unpack_from(head, pos)
        if length < HEADER.size or pos + length > len(head):
            return None
        if kind == GTID_LIST:
            count = struct.unpack_from("<I", head, pos + HEADER.size)[0] & 0x0FFFFFFF
            best = 0
            for index in range(count):
                domain, _, seq = struct.unpack_from("<IIQ", head, pos + HEADER.size + 4 + 16 * index)
                if domain == DOMAIN:
                    best = max(best, seq)
            return best
        if kind == GTID:
            return None
        pos += length
    return None


class BinlogClock:
    """One history's clock: when its binlog held how many bytes. Records are in write order, so
    (binlog number, end offset) and time both only grow: lookups bisect the file in place."""

    def __init__(self, path: Path):
        try:
            self.data = path.read_bytes()
        except FileNotFoundError:
            self.data = b""
        self.count = len(self.data) // CLOCK_RECORD.size
        self._arrays: tuple[array, array] | None = None

    def _key(self, index: int) -> tuple[int, int]:
        number, _, end, _ = CLOCK_RECORD.unpack_from(self.data, index * CLOCK_RECORD.size)
        return number, end

    def _time(self, index: int) -> int:
        return CLOCK_RECORD.unpack_from(self.data, index * CLOCK_RECORD.size)[3]

    def _first(self, holds: Callable[[tuple[int, int]], bool]) -> int:
        """Index of the first record for which `holds` is true (it is false, then true)."""
        low, high = 0, self.count
        while low < high:
            middle = (low + high) // 2
            if holds(self._key(middle)):
                high = middle
            else:
                low = middle + 1
        return low

    def _decoded(self) -> tuple[array, array]:
        """Every record's (number, end) as one sortable integer, and its time (for bulk lookups)."""
        if self._arrays is None:
            keys, times = array("q"), array("q")
            for number, _, end, ns in CLOCK_RECORD.iter_unpack(self.data[:self.count * CLOCK_RECORD.size]):
                keys.append(number << OFFSET_BITS | end)
                times.append(ns)
            self._arrays = keys, times
        return self._arrays

    def written_by(self, number: int, end: int) -> int | None:
        """When the binlog held `end` bytes of file `number` (ns): the first record at or past
        them, even in a later file (a server killed between a write and its record leaves that
        write unrecorded; the transaction, never acknowledged, is placed at the next record,
        which is still after it began); None if nothing was recorded since."""
        keys, times = self._decoded()
        index = bisect_left(keys, number << OFFSET_BITS | end)
        return times[index] if index < len(keys) else None

    def last_by(self, ns: int) -> tuple[int, int, int] | None:
        """The last record written at or before `ns`: (binlog number, end offset, time)."""
        low, high = 0, self.count
        while low < high:
            middle = (low + high) // 2
            if self._time(middle) > ns:
                high = middle
            else:
                low = middle + 1
        return (*self._key(low - 1), self._time(low - 1)) if low else None

    def first_not_in(self, archive: dict[int, int], since: int = 0) -> int | None:
        """When, at or after `since` (ns), the binlog first held bytes the archive (file number ->
        size) lacks; None when the archive has all of it. The archive holds a prefix of the
        binlog (files before its oldest were archived, then pruned)."""
        oldest = min(archive, default=None)

        def lacking(key: tuple[int, int]) -> bool:
            return oldest is None or (key[0] >= oldest and archive.get(key[0], -1) < key[1])

        low, high = 0, self.count  # the first record written at or after `since`
        while low < high:
            middle = (low + high) // 2
            if self._time(middle) >= since:
                high = middle
            else:
                low = middle + 1
        index = max(self._first(lacking), low)
        return self._time(index) if index < self.count else None


@dataclass(frozen=True)
class Segment:
    """A byte range of one writer's archived binlog to replay: from `start` in `files[0]` to
    `stop` in `files[-1]` (each the boundary of a transaction)."""

    files: tuple[Path, ...]
    start: int
    stop: int
    size: int  # bytes of binlog replayed


@dataclass(frozen=True)
class ReplayPlan:
    """What to replay on top of a base backup to reach a point in time."""

    segments: tuple[Segment, ...]
    last: Transaction | None  # the last transaction replayed (None: the backup already is the point)
    position: str  # the GTID position the restored volume ends at
    transactions: int

    @property
    def size(self) -> int:
        return sum(segment.size for segment in self.segments)

    def command(self, binlog_tool: Path, *, logged: bool = False) -> str:
        """Shell words that print the plan's SQL: one `mariadb-binlog` per segment, one session.
        `logged` keeps the replayed transactions in the server's own binlog (a new writer's
        catch-up, which its readers and its archive must see); a restore replays unlogged."""
        parts = [] if logged else ["printf 'SET SESSION sql_log_bin = 0;\\n'"]
        for segment in self.segments:
            parts.append(shlex.join([str(binlog_tool), "--no-defaults", f"--start-position={segment.start}",
                                     f"--stop-position={segment.stop}", *map(str, segment.files)]))
        return "{ " + "; ".join(parts) + "; }"


@dataclass(frozen=True)
class FlashbackPlan(ReplayPlan):
    """The transactions a backtrack passes over, undone newest first: `mariadb-binlog --flashback`
    turns each ROW event into its inverse (the binlog keeps full row images), so the data goes back
    to `position` in time proportional to the change undone, as Aurora's backtrack does."""

    def command(self, binlog_tool: Path, *, logged: bool = False) -> str:
        """As ReplayPlan's, segments newest first, each reversed; never logged (the rewound writer's
        binlog starts afresh at the point)."""
        parts = ["printf 'SET SESSION sql_log_bin = 0;\\n'"]
        for segment in reversed(self.segments):
            parts.append(shlex.join([str(binlog_tool), "--no-defaults", "--flashback",
                                     f"--start-position={segment.start}", f"--stop-position={segment.stop}",
                                     *map(str, segment.files)]))
        return "{ " + "; ".join(parts) + "; }"


class BinlogHistory:
    """A cluster's continuous backup on disk: the writers' archives, in order, and every
    history's clock. Reads files only, so a restore needs nothing of the running source."""

    def __init__(self, volume_dir: Path):
        self.archive_root = volume_dir / "binlog-archive"
        self.clock_root = volume_dir / "binlog-clock"
        self._writers_file = self.archive_root / "writers"
        self.timeline = Timeline(self.archive_root / "epochs")  # the branches backtracks made
        self._lock = threading.Lock()

    # --- bookkeeping (the engine calls these as instances come and go) ------------------------------
    def clock_path(self, history: str) -> Path:
        return self.clock_root / f"{history}.clock"

    def archive_dir(self, history: str) -> Path:
        return self.archive_root / history

    def new_history(self, identifier: str) -> str:
        """A name no history of this cluster has had: the instance's, numbered if it is taken."""
        with self._lock:
            self.clock_root.mkdir(parents=True, exist_ok=True)
            name, number = identifier, 1
            while self.clock_path(name).exists() or self.archive_dir(name).exists():
                number += 1
                name = f"{identifier}.{number}"
            self.clock_path(name).touch()
            return name

    def _writer_log(self) -> list[tuple[str, int]]:
        try:
            lines = self._writers_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [(name, int(ns)) for name, ns in (line.split() for line in lines if line.strip())]

    def writers(self) -> list[str]:
        """The histories that have been the writer, in the order they last became it."""
        log = [name for name, _ in self._writer_log()]
        return [name for index, name in enumerate(log) if name not in log[index + 1:]]

    def writer_since(self) -> dict[str, int]:
        """When each history first became the writer (ns)."""
        since: dict[str, int] = {}
        for name, ns in self._writer_log():
            since.setdefault(name, ns)
        return since

    def became_writer(self, history: str | None) -> None:
        """Record that the history's server is the writer now (from here on its binlog is the
        cluster's), unless it already was the last one."""
        if history is None:
            return
        with self._lock:
            self.archive_dir(history).mkdir(parents=True, exist_ok=True)
            log = self._writer_log()
            if not log or log[-1][0] != history:
                with open(self._writers_file, "a") as handle:
                    handle.write(f"{history} {time.time_ns()}\n")

    def clock_records(self) -> int:
        """How many binlog writes the writers' clocks recorded (file sizes only: answers at once)."""
        total = 0
        for history in self.writer_since():
            try:
                total += self.clock_path(history).stat().st_size // CLOCK_RECORD.size
            except FileNotFoundError:
                pass
        return total

    def unarchived_writers(self) -> list[str]:
        """Writers whose archive has received nothing yet (just promoted: the monitor starts it).
        Until it has, the history after an old writer's last replicated commit is undecided."""
        return [history for history in self.writers() if not self.archived_sizes(history)]

    def archived_sizes(self, history: str) -> dict[int, int]:
        directory = self.archive_dir(history)
        return {binlog_number(p.name): p.stat().st_size for p in binlog_files(directory)} if directory.is_dir() else {}

    # --- LatestRestorableTime ---------------------------------------------------------------------------
    def restorable_until(self, now: datetime) -> datetime | None:
        """The latest moment up to which the archive holds everything the writers wrote: `now`
        when it is caught up, else just before the first write it lacks (None: never a writer)."""
        since = self.writer_since()
        if not since:
            return None
        lacking = []
        for history, became in since.items():
            archived = self.archived_sizes(history)
            if not archived:  # its archive has not started: nothing after it became the writer is known
                lacking.append(became)
                continue
            first = BinlogClock(self.clock_path(history)).first_not_in(archived, became)
            if first is not None:
                lacking.append(first)
        if not lacking:
            return now
        return min(now, from_ns(min(lacking)) - ONE_MICROSECOND)

    # --- stitching and the cut ----------------------------------------------------------------------
    def _transactions_after(self, history: str, after: int, through: int | None = None) -> list[Transaction]:
        """A writer's archived transactions with a sequence number above `after` (and, if given,
        up to `through`: files past it are not read)."""
        files = binlog_files(self.archive_dir(history))
        wanted = []
        for index, path in enumerate(files):
            following = first_gtid_list_seq(files[index + 1]) if index + 1 < len(files) else None
            if following is not None and following <= after:
                continue  # everything in this file is at or before `after`
            starting = first_gtid_list_seq(path)
            if through is not None and starting is not None and starting >= through:
                break  # everything from here on is past `through`
            wanted.extend(t for t in read_transactions(path) if after < t.seq and (through is None or t.seq <= through))
        return wanted

    def _archives_after(self, after: int, through: int | None = None, histories: list[str] | None = None
                        ) -> dict[str, list[Transaction]]:
        """Every writer's archived transactions above `after` (of `histories` only, if given: one
        epoch's), in the order they became the writer."""
        writers = [h for h in self.writers() if histories is None or h in histories]
        return {history: self._transactions_after(history, after, through) for history in writers}

    @staticmethod
    def _lineage(archives: dict[str, list[Transaction]], after: int) -> list[tuple[str, Transaction]]:
        """The cluster's transactions above `after`, in order, each from the latest writer whose
        archive has it (so commits a failover dropped are not in it); a gap is an error."""
        chosen: dict[int, tuple[str, Transaction]] = {}
        for history in reversed(list(archives)):
            below = min(chosen, default=None)  # what later writers already supply
            for tx in archives[history]:
                if below is None or tx.seq < below:
                    chosen.setdefault(tx.seq, (history, tx))
        ordered = [chosen[seq] for seq in sorted(chosen)]
        for expected, (_, tx) in enumerate(ordered, start=after + 1):
            if tx.seq != expected:
                raise HistoryError(f"the binlog archive lacks transactions {DOMAIN}-*-{expected}..{tx.seq - 1}")
        return ordered

    def _commit_times(self, archives: dict[str, list[Transaction]]) -> dict[str, int]:
        """When each GTID reached the binlog of the writer it committed on: the earliest clock time
        over every archived binlog holding it (a replica's binlog wrote it later)."""
        earliest: dict[str, int] = {}
        for history, transactions in archives.items():
            clock = BinlogClock(self.clock_path(history))
            for tx in transactions:
                ns = clock.written_by(binlog_number(tx.file), tx.end)
                if ns is not None and ns < earliest.get(tx.gtid, ns + 1):
                    earliest[tx.gtid] = ns
        return earliest

    def _history_after(self, after: str, through: int | None = None, histories: list[str] | None = None
                       ) -> tuple[list[tuple[str, Transaction]], dict[str, int]]:
        """The lineage after a GTID position and the commit times of it and of the position's own
        transaction (so a caller can check a backup is not newer than a point)."""
        floor = gtid_seq(after)
        archives = self._archives_after(max(floor - 1, 0), through, histories)
        later = {history: [tx for tx in txs if tx.seq > floor] for history, txs in archives.items()}
        return self._lineage(later, floor), self._commit_times(archives)

    def first_commit_after(self, after: str) -> int | None:
        """When the first transaction after GTID position `after` reached its writer's binlog (ns;
        None if there is none yet): a base backup at `after` is the data as of just before it."""
        lineage, times = self._history_after(after, through=gtid_seq(after) + 1)
        return times.get(lineage[0][1].gtid) if lineage else None

    def plan(self, after: str, point: datetime, backup_started: datetime | None = None) -> ReplayPlan:
        """Everything after `after` (a base backup's GTID position, the backup begun at
        `backup_started`) that the writers' binlogs held at `point`, as byte ranges of the archive:
        the point-in-time cut. Commit times only grow along the history, so the cut is before the
        first transaction written after the point. After backtracks the history is the timeline's
        chain for the point (`mariadb_timeline.py`): each link's epoch replayed up to its moment."""
        if self.unarchived_writers():
            raise HistoryError(f"the binlog archive of {', '.join(self.unarchived_writers())} has not started yet")
        links = self.timeline.chain(to_ns(point))
        start = self._backup_link(links, backup_started, point)
        since = self.writer_since()
        kept: list[tuple[str, Transaction]] = []
        position = after
        for index, link in enumerate(links[start:], start):
            histories = self.timeline.histories(link.epoch, since)
            if index > start and gtid_seq(position) != gtid_seq(link.epoch.fork):
                raise HistoryError(f"replay reaches {position or 'nothing'}, not {link.epoch.fork} where the "
                                   f"backtrack of epoch {link.epoch.index} started")
            cut = self._cut(position if index == start else link.epoch.fork, link, histories, point,
                            check_backup=index == start)
            kept += cut
            position = cut[-1][1].gtid if cut else position
        if not kept:
            return ReplayPlan((), None, after, 0)
        return ReplayPlan(tuple(self._segments(kept)), kept[-1][1], kept[-1][1].gtid, len(kept))

    def passed_over(self, cut: str, point: datetime) -> FlashbackPlan | None:
        """What a backtrack to `point` (reaching GTID position `cut`) passes over, as a flashback of
        the current writer's archive, when one can undo it: the point is on the current epoch's own
        branch, every transaction since the cut is in the current writer's archive, and none is DDL
        (a flashback reverses row events only). None otherwise: the backtrack rebuilds instead."""
        epochs = self.timeline.epochs()
        writers = self.writers()
        if not writers or self.timeline.chain(to_ns(point))[-1].epoch != epochs[-1]:
            return None
        current = writers[-1]
        histories = self.timeline.histories(epochs[-1], self.writer_since())
        if current not in histories or gtid_seq(cut) < gtid_seq(epochs[-1].fork):
            return None
        try:
            lineage, _ = self._history_after(cut, histories=histories)
        except HistoryError:
            return None
        if any(history != current or tx.standalone for history, tx in lineage):
            return None
        if not lineage:
            return FlashbackPlan((), None, cut, 0)
        return FlashbackPlan(tuple(self._segments(lineage)), lineage[-1][1], cut, len(lineage))

    def _backup_link(self, links: list[Link], backup_started: datetime | None, point: datetime) -> int:
        """Which link of the chain a base backup belongs to (its epoch's); the first when unknown."""
        if backup_started is None:
            return 0
        epoch = self.timeline.epoch_at(self.timeline.epochs(), to_ns(backup_started))
        for index, link in enumerate(links):
            if link.epoch.index == epoch.index:
                return index
        raise HistoryError(f"the base backup begun at {backup_started.isoformat()} is on a branch a backtrack "
                           f"left, not in the history of {point.isoformat()}")

    def _cut(self, after: str, link: Link, histories: list[str], point: datetime, check_backup: bool
             ) -> list[tuple[str, Transaction]]:
        """One epoch's transactions after `after` written by `link.until_ns`."""
        limit = link.until_ns
        lineage, times = self._history_after(after, histories=histories)
        own = domain_gtid(after)
        if check_backup and own and times.get(own, limit) > limit:
            raise HistoryError(f"the base backup (at {own}) holds commits made after {point.isoformat()}")
        kept: list[tuple[str, Transaction]] = []
        for history, tx in lineage:
            if tx.gtid not in times:
                raise HistoryError(f"no binlog clock record for {tx.gtid}: it cannot be placed in time")
            if times[tx.gtid] > limit:
                break
            kept.append((history, tx))
        if len(kept) == len(lineage):
            self._check_archived_at(limit, point, histories)
        return kept

    def plan_beyond(self, after: str) -> ReplayPlan:
        """Everything the cluster volume holds after GTID position `after` in the current epoch,
        whatever its time: what a reader being promoted lacks of the old writer's commits (say,
        those acknowledged while a replica failure cut every reader off, which Aurora's volume keeps)."""
        histories = self.timeline.histories(self.timeline.epochs()[-1], self.writer_since())
        lineage, _ = self._history_after(after, histories=histories)
        if not lineage:
            return ReplayPlan((), None, after, 0)
        return ReplayPlan(tuple(self._segments(lineage)), lineage[-1][1], lineage[-1][1].gtid, len(lineage))

    def _check_archived_at(self, limit: int, point: datetime, histories: list[str] | None = None) -> None:
        """Nothing archived lies beyond the point: then the writers' binlogs as they stood at the
        point must be archived whole (not yet received, or pruned, would restore too little)."""
        for history, since in self.writer_since().items():
            if histories is not None and history not in histories:
                continue
            last = BinlogClock(self.clock_path(history)).last_by(limit)
            if last is not None and last[2] >= since and self.archived_sizes(history).get(last[0], -1) < last[1]:
                raise HistoryError(f"the binlog archive lacks what {history} wrote by {point.isoformat()}")

    def _segments(self, kept: Sequence[tuple[str, Transaction]]) -> Iterator[Segment]:
        """Runs of consecutive transactions from one writer's archive, as byte ranges."""
        for history, run in groupby(kept, key=lambda item: item[0]):
            transactions = [tx for _, tx in run]
            first, last = binlog_number(transactions[0].file), binlog_number(transactions[-1].file)
            files = tuple(p for p in binlog_files(self.archive_dir(history))
                          if first <= binlog_number(p.name) <= last)
            yield Segment(files, transactions[0].start, transactions[-1].end,
                          sum(tx.end - tx.start for tx in transactions))

    # --- retention ----------------------------------------------------------------------------------
    def prune(self, before: datetime) -> int:
        """Delete archived binlog files that were complete before `before` (the writer had begun
        the next one by then), so no base backup taken since needs them; each writer keeps its
        newest file. Returns how many went."""
        limit, removed = to_ns(before), 0
        for history in self.writers():
            clock = BinlogClock(self.clock_path(history))
            files = binlog_files(self.archive_dir(history))
            for path, following in zip(files, files[1:]):
                began = clock.written_by(binlog_number(following.name), 0)
                if began is None or began >= limit:
                    break
                path.unlink()
                removed += 1
        return removed


# --- the clock library ------------------------------------------------------------------------------------
_built: dict[Path, Path | None] = {}
_build_lock = threading.Lock()


def clock_library(directory: Path) -> Path | None:
    """The binlog clock, compiled with the machine's `cc` into `directory` (which the engine
    account can read) on first use; None when it cannot be built (no compiler): then the
    engine still takes base backups and snapshots but refuses point-in-time restores."""
    with _build_lock:
        if directory in _built and (_built[directory] is None or _built[directory].exists()):
            return _built[directory]
        code = CLOCK_SOURCE.read_bytes()
        library = directory / f"mariadb-binlog-clock-{hashlib.sha256(code).hexdigest()[:16]}.so"
        if not library.exists():
            partial = directory / f".{library.name}.{os.getpid()}.tmp"
            try:
                done = subprocess.run(["cc", "-O2", "-Wall", "-shared", "-fPIC", "-x", "c", "-o", str(partial), "-",
                                       "-ldl"], input=code, capture_output=True, timeout=120, check=False)
                if done.returncode != 0:
                    raise OSError(done.stderr.decode(errors="replace").strip()[-500:])
                os.chmod(partial, 0o755)
                os.replace(partial, library)
            except (OSError, subprocess.TimeoutExpired) as exc:
                log.warning("the MariaDB binlog clock cannot be built (%s): point-in-time restore is off", exc)
                partial.unlink(missing_ok=True)
                _built[directory] = None
                return None
        _built[directory] = library
        return library
