"""The cluster's timeline across backtracks (Aurora MySQL on MariaDB): which history holds the data
as of any moment.

A backtrack rewinds the cluster in place: from the moment it begins, the cluster's data is what it
was at the point asked for, and new writes continue from there with the same GTID sequence numbers
the abandoned branch used. The abandoned branch is not thrown away: Aurora lets a user backtrack
again to a later time within the window ("back and forth"), so its change records stay in the
binlog archive and the timeline says which branch a moment belongs to.

The timeline is a list of epochs, one per backtrack (epoch 0 is the cluster's life before its
first one). Epoch k began at the moment its backtrack began, starts from the data as of its
`target` (a moment of an earlier epoch, itself resolved through the timeline) at GTID position
`fork`, and holds the transactions its writers committed from then on. The data as of a moment t
is therefore a chain: t in epoch k, k's target in an earlier epoch, and so on down to epoch 0;
a restore replays each link's transactions up to the link's moment. A writer history belongs to
the epoch it first became the writer in (every instance gets a new history when a backtrack
rebuilds it, so no history spans two epochs).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Epoch:
    """A stretch of the cluster's history between two backtracks."""

    index: int
    began_ns: int  # wall clock (Unix ns) the backtrack that began it began; 0 for the first
    target_ns: int | None  # the moment that backtrack rewound to (None for the first epoch)
    fork: str  # the GTID position the epoch starts from ('' for the first: whatever its volume held)


@dataclass(frozen=True)
class Link:
    """One step of a chain: the epoch's transactions up to `until_ns`."""

    epoch: Epoch
    until_ns: int


class Timeline:
    """The epochs of one cluster, kept beside its binlog archive (`epochs`, one line each)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def epochs(self) -> list[Epoch]:
        found = [Epoch(0, 0, None, "")]
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return found
        for line in lines:
            if not line.strip():
                continue
            began, target, *fork = line.split()
            found.append(Epoch(len(found), int(began), int(target), fork[0] if fork else ""))
        return found

    def begin(self, target_ns: int, fork: str) -> Epoch:
        """A backtrack to `target_ns` that reached GTID position `fork` begins a new epoch now."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            began = time.time_ns()
            with open(self.path, "a") as handle:
                handle.write(f"{began} {target_ns} {fork}".rstrip() + "\n")
            return self.epochs()[-1]

    @staticmethod
    def epoch_at(epochs: list[Epoch], ns: int) -> Epoch:
        """The epoch a moment belongs to: the last one begun at or before it."""
        return epochs[max(bisect_right([e.began_ns for e in epochs], ns) - 1, 0)]

    def chain(self, ns: int) -> list[Link]:
        """How the data as of `ns` came about, oldest link first."""
        epochs = self.epochs()
        links = [Link(self.epoch_at(epochs, ns), ns)]
        while links[-1].epoch.target_ns is not None:
            target = links[-1].epoch.target_ns
            earlier = self.epoch_at(epochs, target)
            if earlier.index >= links[-1].epoch.index:  # a target is always before its backtrack began
                raise ValueError(f"epoch {links[-1].epoch.index} rewound to a moment that is not before it")
            links.append(Link(earlier, target))
        return links[::-1]

    def histories(self, epoch: Epoch, writer_since: dict[str, int]) -> list[str]:
        """The writer histories of an epoch (given when each first became the writer), in order."""
        epochs = self.epochs()
        return [h for h, since in sorted(writer_since.items(), key=lambda item: item[1])
                if self.epoch_at(epochs, since).index == epoch.index]
