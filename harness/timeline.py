"""The timeline: what probes observed, one JSON record per line, flushed as it is written.

Record first, judge later (Jepsen's design): probes only append observations here and the
checkers in `harness.measure` turn a timeline into numbers afterwards, so a killed run still
leaves its evidence and every figure in a report can be recomputed from the raw file.

Every record carries `kind`, `t` (wall clock, epoch seconds, for humans and AWS event dates)
and `m` (monotonic seconds, for durations). Kinds and their fields:

- `write`: one write-probe attempt: `seq`, `start`, `end` (monotonic), `outcome`
  (`acknowledged`: COMMIT returned; `failed`: certainly not committed; `unknown`: the
  connection died after the statement was sent, so it may or may not have committed),
  `server` (instance that answered, when known), `error`.
- `read`: one read-probe attempt: `probe` (e.g. `reader:db-2`, `reader-endpoint`), `start`,
  `end`, `outcome` (`ok` | `failed`), `max_seq` (highest ledger seq visible), `server`, `error`.
- `fault`: a fault was injected: `name`, `start` (issued), `end` (call returned), `detail`.
- `topology`: the cluster as the API showed it: `status`, `writer`, `readers`, `members`.
- `event`: an RDS event: `date` (epoch seconds), `source`, `message`, `categories`.
- `phase`: a scenario phase began: `name` (e.g. `steady-state`, `fault`, `recovery`).
- `ledger`: the final read after recovery: `ranges` of present seqs ([[first, last], ...])
  and `duplicates` ({seq: count} for seqs stored more than once).
- `load`: one wall-clock second of a Locust load, by the requests that ended in it (joined from
  Locust's history as the load runs; `t` is the second's wall-clock start): `load` (its name,
  e.g. `oltp/naive`), `start`, `end` (monotonic; the last second ends when the load stopped),
  `users`, `workers` (Locust workers that reported it; 0 for a single process), `requests`,
  `failures`, `rps`, `p50_ms` / `p95_ms` / `p99_ms` / `max_ms` and the `response_times`
  histogram behind them ({milliseconds to two significant digits: count}, successful requests
  only), `names` ([{`request_type`, `name`, `requests`, `failures`}]; the request type is the
  endpoint), and `first_failure` / `last_failure` (monotonic, or null).
- `load-failure`: identical failures of one load in one second: `load`, `second` (that second's
  monotonic start), `request_type`, `name`, `error` (one line, never the password),
  `occurrences`, `first`, `last` (monotonic instants of the first and last of them).
- `abort`: a stop condition held the fault back: `reason`, `load`, `error_rate` (of the load's
  steady state, 0..1, or null when it made no request), `ceiling`, `fault` (its name).
- `note`: anything else worth keeping (`text`).

Records observed elsewhere (Locust's seconds) carry their own `t`, mapped to `m` by
`monotonic_of`; the file is in the order records were written, not strictly by `m`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

Record = dict[str, Any]

WRITE_OUTCOMES = ("acknowledged", "failed", "unknown")
READ_OUTCOMES = ("ok", "failed")


class Timeline:
    """Append-only JSONL writer shared by all probes of a scenario (thread-safe).

    Each record is flushed to the OS as soon as it is written, so a run killed with SIGKILL
    keeps everything recorded up to that moment.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", buffering=1, encoding="utf-8")
        self._lock = threading.Lock()

    def record(self, kind: str, **fields: Any) -> Record:
        return self.record_at(kind, time.time(), time.monotonic(), **fields)

    def record_at(self, kind: str, t: float, m: float, **fields: Any) -> Record:
        """A record of something observed elsewhere, at its own time (e.g. a second of Locust's load)."""
        entry = {"kind": kind, "t": t, "m": m, **fields}
        line = json.dumps(entry, default=str, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
        return entry

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()

    def __enter__(self) -> Timeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def monotonic_of(wall: float) -> float:
    """This machine's monotonic time of a wall-clock instant (another process's, or a worker's
    on a machine whose clock NTP keeps in step with ours)."""
    return wall - (time.time() - time.monotonic())


def read_timeline(path: Path) -> list[Record]:
    """All complete records of a timeline; a torn last line (killed mid-write) is skipped."""
    records = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def of_kind(records: Iterable[Record], kind: str) -> Iterator[Record]:
    return (r for r in records if r["kind"] == kind)


def to_ranges(seqs: Iterable[int]) -> list[list[int]]:
    """Compact a set of integers as sorted [first, last] ranges."""
    ranges: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return ranges


def from_ranges(ranges: Iterable[Iterable[int]]) -> set[int]:
    present: set[int] = set()
    for first, last in ranges:
        present.update(range(first, last + 1))
    return present
