"""The Aurora PostgreSQL cluster volume: six WAL-only storage nodes with a 4-of-6 write quorum.

Each storage node is a `pg_receivewal --synchronous` process (two per AZ) listed in the
writer's `synchronous_standby_names = 'ANY 4 (...)'`: a commit is acknowledged only once four
nodes have flushed it, so losing one AZ (two nodes) keeps writes going and losing a third
node halts them, as Aurora's quorum does. Their WAL is also what a promoted reader replays
before it takes writes, which is why no acknowledged commit is lost in a failover, and the
cluster's continuous backup: base backups plus this WAL restore to any moment.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

WAL_SEGMENT_BYTES = 16 * 1024 * 1024
WAL_PAGE_BYTES = 8192
QUORUM = 4
NODES_PER_AZ = 2


@dataclass(frozen=True)
class WalFile:
    """One WAL segment file held by a storage node, and how much of it is written."""

    name: str  # 24 hex digits: timeline, log, segment
    path: Path
    complete: bool
    valid_bytes: int

    @property
    def segno(self) -> int:
        return int(self.name[8:16], 16) * 0x100 + int(self.name[16:24], 16)

    @property
    def end_lsn(self) -> int:
        """Where the WAL this file holds ends."""
        return self.segno * WAL_SEGMENT_BYTES + self.valid_bytes

    def better_than(self, other: WalFile) -> bool:
        return (self.complete, self.valid_bytes) > (other.complete, other.valid_bytes)


def is_wal_name(name: str) -> bool:
    """24 hex digits: timeline, log, segment."""
    return len(name) == 24 and all(c in "0123456789ABCDEF" for c in name)


def segno_of(lsn: str) -> int:
    """WAL segment number of an LSN such as '0/60E29E8'."""
    high, low = lsn.split("/")
    return ((int(high, 16) << 32) | int(low, 16)) // WAL_SEGMENT_BYTES


def lsn_value(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def written_bytes(path: Path) -> int:
    """Bytes of real WAL in a zero-padded `.partial` segment.

    pg_receivewal pre-fills each segment with zeros; every written 8 kB WAL page starts with a
    non-zero magic number, so a binary search over page headers finds the end in ~11 reads.
    """
    size = path.stat().st_size
    with open(path, "rb") as wal:
        def page_written(index: int) -> bool:
            wal.seek(index * WAL_PAGE_BYTES)
            return wal.read(2) not in (b"", b"\0\0")

        low, high = 0, size // WAL_PAGE_BYTES  # invariant: pages < low written, >= high not
        while low < high:
            mid = (low + high) // 2
            if page_written(mid):
                low = mid + 1
            else:
                high = mid
        if low == 0:
            return 0
        wal.seek((low - 1) * WAL_PAGE_BYTES)
        last_page = wal.read(WAL_PAGE_BYTES)
    return (low - 1) * WAL_PAGE_BYTES + len(last_page.rstrip(b"\0"))


@dataclass
class StorageNodeWal:
    """Reads the WAL a storage node holds on disk."""

    directory: Path

    def files(self, min_segno: int = 0) -> list[WalFile]:
        found = []
        for entry in self.directory.iterdir():
            name = entry.name.removesuffix(".partial")
            if not is_wal_name(name):
                continue
            complete = not entry.name.endswith(".partial")
            wal = WalFile(name, entry, complete, WAL_SEGMENT_BYTES if complete else 0)
            if wal.segno < min_segno:
                continue
            if not complete:
                wal = WalFile(name, entry, False, written_bytes(entry))
            found.append(wal)
        return found

    @staticmethod
    def parse(file_name: str) -> tuple[int, int, bool] | None:
        """(timeline, segment number, complete) of a segment file's name; None for other files."""
        name = file_name.removesuffix(".partial")
        if not is_wal_name(name):
            return None
        return int(name[:8], 16), int(name[8:16], 16) * 0x100 + int(name[16:24], 16), name == file_name

    def history_files(self) -> list[Path]:
        return [p for p in self.directory.glob("*.history")]


def best_wal(node_dirs: list[Path], min_segno: int) -> tuple[dict[str, WalFile], dict[str, Path]]:
    """The most complete copy of every WAL segment from `min_segno` on that any of the storage nodes
    holds, and every timeline history file: together, every quorum-acknowledged commit."""
    best: dict[str, WalFile] = {}
    histories: dict[str, Path] = {}
    for directory in node_dirs:
        if not directory.is_dir():
            continue
        node = StorageNodeWal(directory)
        for wal in node.files(min_segno):
            if wal.name not in best or wal.better_than(best[wal.name]):
                best[wal.name] = wal
        for history in node.history_files():
            histories.setdefault(history.name, history)
    return best, histories


def gather_catchup(node_dirs: list[Path], catchup_dir: Path, min_segno: int, held_to: int = 0) -> int:
    """Put the most complete copy of every WAL segment from `min_segno` on into `catchup_dir`.

    A promoted reader's restore_command reads from there, so before taking writes it replays
    everything any storage node holds, which includes every quorum-acknowledged commit.
    A copy that ends at or before `held_to` (the LSN up to which the reader holds WAL of its own:
    it can stream ahead of the nodes) is left out: recovery would put it in place of the reader's
    longer segment, and the end of recovery re-reads the last replayed record from there, a PANIC
    ("invalid record length") when that record is gone. Returns the number of segment files provided.
    """
    best, histories = best_wal(node_dirs, min_segno)
    clear_catchup(catchup_dir)
    best = {name: wal for name, wal in best.items() if wal.end_lsn > held_to}
    for name, wal in best.items():
        _link_or_copy(wal.path, catchup_dir / name)
    for name, path in histories.items():
        _link_or_copy(path, catchup_dir / name)
    return len(best)


def archive_wal(node_dirs: list[Path], archive: Path, min_segno: int, attempts: int = 3) -> int:
    """A restore's own copy of the storage nodes' WAL from `min_segno` on, taken while they run:
    complete segments are linked (never written again), partial ones copied (their node is still
    writing them). Returns the number of bytes of WAL provided."""
    for attempt in range(attempts):
        clear_catchup(archive)
        try:
            best, histories = best_wal(node_dirs, min_segno)
            for name, wal in best.items():
                if wal.complete:
                    _link_or_copy(wal.path, archive / name)
                else:
                    shutil.copyfile(wal.path, archive / name)
            for name, path in histories.items():
                _link_or_copy(path, archive / name)
        except FileNotFoundError:  # a node completed a segment (renamed its .partial) meanwhile
            if attempt == attempts - 1:
                raise
            continue
        return sum(wal.valid_bytes for wal in best.values())
    return 0


def prune_wal(node_dirs: list[Path], before: float) -> int:
    """Remove WAL segments last written before `before` (epoch seconds) from the storage nodes:
    no restore from a base backup started after that can need them. Returns how many went."""
    removed = 0
    for directory in node_dirs:
        if not directory.is_dir():
            continue
        for entry in directory.iterdir():
            if not is_wal_name(entry.name.removesuffix(".partial")):
                continue
            try:
                if entry.stat().st_mtime < before:
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:  # completed (renamed) meanwhile: it is recent
                pass
    return removed


def follow_timeline(node_dir: Path, timeline: int, fork_lsn: str) -> bool:
    """Make a storage node resume on the new writer's `timeline`, which forked at `fork_lsn`.

    pg_receivewal resumes at its highest segment, on that segment's timeline. On the old timeline
    it cannot start exactly at the fork (the server answers with the next timeline instead of a
    stream, and pg_receivewal gives up) nor beyond it (WAL that an unsafe promotion discarded),
    so such a node would never acknowledge a commit of the new writer and every commit would
    wait for the quorum for ever. It then drops its old-timeline segments that lie wholly past
    the fork and gets an empty `.partial` of the fork's segment on the new timeline, where it
    resumes. Returns whether anything changed (a node resuming before the fork streams across
    it by itself).
    """
    fork = lsn_value(fork_lsn)
    files = [(entry, StorageNodeWal.parse(entry.name)) for entry in node_dir.iterdir()] if node_dir.is_dir() else []
    held = [(entry, parsed) for entry, parsed in files if parsed is not None]
    if not held or any(tli >= timeline for _, (tli, _, _) in held):
        return False
    _, (_, segno, complete) = max(held, key=lambda item: (item[1][1], item[1][0]))
    if (segno + 1 if complete else segno) * WAL_SEGMENT_BYTES < fork:
        return False
    for entry, (_, segno, _) in held:
        if segno * WAL_SEGMENT_BYTES >= fork:
            entry.unlink()
    fork_segno = fork // WAL_SEGMENT_BYTES
    name = f"{timeline:08X}{fork_segno // 0x100:08X}{fork_segno % 0x100:08X}.partial"
    with open(node_dir / name, "wb") as segment:  # pg_receivewal only resumes in a full-size one
        segment.truncate(WAL_SEGMENT_BYTES)
    owner = node_dir.stat()
    os.chown(node_dir / name, owner.st_uid, owner.st_gid)  # the node runs as the engine's account
    return True


def clear_catchup(catchup_dir: Path) -> None:
    """Empty the catch-up area, so a later recovery never replays stale WAL from it."""
    catchup_dir.mkdir(parents=True, exist_ok=True)
    for entry in catchup_dir.iterdir():
        entry.unlink()


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
