"""Data loss (RPO): acknowledged writes the recovered cluster no longer holds.

Per driver: each write probe has its own run id and final ledger read (`driver` on both).

Judged against the last `ledger` record (the final read after recovery). A seq's outcome is its
best attempt (acknowledged > unknown > failed), so a retried seq is judged by its success.

- `lost`: acknowledged seqs absent from the ledger. Only COMMIT-returned writes can be lost: an
  `unknown` attempt may legitimately be absent (`unknown_absent`) or present
  (`unknown_committed`), and neither is loss (Jepsen's rule for indeterminate operations).
- `failed_but_present`: a `failed` attempt that is stored anyway, i.e. the probe called
  "certainly not committed" something that committed. It is a probe bug to report, not loss.
- `duplicates`: seqs stored more than once (a retry of a write that had in fact committed).
- `lost_window_s`: from the ack (`end`) of the earliest lost write to the ack of the latest one.
- `rpo_s`: AWS's RPO is how much recent data, measured in time, a recovery gives up (as
  `AuroraGlobalDBRPOLag` measures how far a secondary is behind the primary's user
  transactions). Here: from R, the ack of the earliest lost write (the cluster holds nothing
  acknowledged from R on, at best), to N, the newest data it should hold: the last write
  acknowledged at or before the fault's `start`, or the last lost write if loss went on
  after the fault (an old writer still acknowledging commits that were then discarded).
  rpo_s = N − R; with no fault record, N is the last lost write's ack, so rpo_s = lost_window_s.
  0 when nothing acknowledged is lost. The true recovery point lies between R and the ack of the
  surviving write just before it, so rpo_s is exact to one write-probe interval (a lower bound).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.measure.common import PLAIN, NotMeasured, ack_times, clean, ledgers_of, writes_of
from harness.measure.faults import FaultRecord
from harness.measure.metrics import Metric, declare
from harness.timeline import Record, from_ranges

METRICS = declare(
    "data_loss",
    Metric("lost_count", "data loss", "writes"),
    Metric("lost_window_s", "lost-write window", "s"),
    Metric("rpo_s", "RPO", "s"),
    Metric("unknown_committed", "unknown writes found committed", "writes"),
    Metric("unknown_absent", "unknown writes found absent", "writes"),
    Metric("failed_but_present", "misclassified failed writes", "writes"),
)

LOST_SHOWN = 1000
_RANK = {"failed": 0, "unknown": 1, "acknowledged": 2}


@dataclass(frozen=True)
class DataLoss:
    acknowledged: int
    lost: tuple[int, ...]
    lost_count: int
    lost_window_s: float
    rpo_s: float
    unknown_committed: int
    unknown_absent: int
    failed_but_present: int
    duplicates: tuple[tuple[int, int], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "acknowledged": self.acknowledged,
            "lost_count": self.lost_count,
            "lost": list(self.lost),
            "lost_window_s": self.lost_window_s,
            "rpo_s": self.rpo_s,
            "unknown_committed": self.unknown_committed,
            "unknown_absent": self.unknown_absent,
            "failed_but_present": self.failed_but_present,
            "duplicates": dict(self.duplicates),
        }


def measure_data_loss(records: list[Record], fault: FaultRecord | None, driver: str = PLAIN) -> DataLoss | NotMeasured:
    """Every write attempt of `driver`'s write probe against the last `ledger` record of its run id;
    `fault` bounds the RPO (the newest data the cluster should hold was acknowledged before it)."""
    ledgers = ledgers_of(records, driver)
    if not ledgers:
        return NotMeasured("no ledger record: the final read after recovery did not run")
    ledger = ledgers[-1]
    present = from_ranges(ledger["ranges"])

    outcome: dict[int, str] = {}
    for write in writes_of(records, driver):
        seq = int(write["seq"])
        best = outcome.get(seq)
        if best is None or _RANK[write["outcome"]] > _RANK[best]:
            outcome[seq] = write["outcome"]
    acked_at = ack_times(records, driver)

    lost = sorted(seq for seq in acked_at if seq not in present)
    unknown = [seq for seq, o in outcome.items() if o == "unknown"]
    unknown_committed = sum(1 for seq in unknown if seq in present)
    failed_present = sum(1 for seq, o in outcome.items() if o == "failed" and seq in present)
    window, rpo = _loss_span([acked_at[seq] for seq in lost], acked_at, fault)
    return DataLoss(
        acknowledged=len(acked_at),
        lost=tuple(lost[:LOST_SHOWN]),
        lost_count=len(lost),
        lost_window_s=window,
        rpo_s=rpo,
        unknown_committed=unknown_committed,
        unknown_absent=len(unknown) - unknown_committed,
        failed_but_present=failed_present,
        duplicates=_duplicates(ledger),
    )


def _duplicates(ledger: Record) -> tuple[tuple[int, int], ...]:
    """The ledger's {seq: count}; seqs arrive as strings once the record went through JSON."""
    stored = ledger.get("duplicates") or {}
    return tuple(sorted((int(seq), int(count)) for seq, count in stored.items()))


def _loss_span(
    lost_acks: list[float], acked_at: dict[int, float], fault: FaultRecord | None
) -> tuple[float, float]:
    """(lost_window_s, rpo_s) as defined in the module docstring."""
    if not lost_acks:
        return 0.0, 0.0
    earliest, latest = min(lost_acks), max(lost_acks)
    newest = latest
    if fault is not None:
        before = [ack for ack in acked_at.values() if ack <= fault.start]
        newest = max([latest, *before])
    return clean(latest - earliest), clean(newest - earliest)
