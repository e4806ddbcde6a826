"""The Aurora PostgreSQL cluster volume: six WAL-only storage nodes with a 4-of-6 write quorum.

Each storage node is a `pg_receivewal --synchronous` process (two per AZ) listed in the
writer's `synchronous_standby_names = 'ANY 4 (...)'`: a commit is acknowledged only once four
nodes have flushed it, so losing one AZ (two nodes) keeps writes going and losing a third
node halts them, as Aurora's quorum does. Their WAL is also what a promoted reader replays
before it takes writes, which is why no acknowledged commit is lost in a failover.
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

    def better_than(self, other: WalFile) -> bool:
        return (self.complete, self.valid_bytes) > (other.complete, other.valid_bytes)


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
            if len(name) != 24 or not all(c in "0123456789ABCDEF" for c in name):
                continue
            complete = not entry.name.endswith(".partial")
            wal = WalFile(name, entry, complete, WAL_SEGMENT_BYTES if complete else 0)
            if wal.segno < min_segno:
                continue
            if not complete:
                wal = WalFile(name, entry, False, written_bytes(entry))
            found.append(wal)
        return found

    def history_files(self) -> list[Path]:
        return [p for p in self.directory.glob("*.history")]


def gather_catchup(node_dirs: list[Path], catchup_dir: Path, min_segno: int) -> int:
    """Put the most complete copy of every WAL segment from `min_segno` on into `catchup_dir`.

    A promoted reader's restore_command reads from there, so before taking writes it replays
    everything any storage node holds, which includes every quorum-acknowledged commit.
    Returns the number of segment files provided.
    """
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
    clear_catchup(catchup_dir)
    for name, wal in best.items():
        _link_or_copy(wal.path, catchup_dir / name)
    for name, path in histories.items():
        _link_or_copy(path, catchup_dir / name)
    return len(best)


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
