"""Judgements of a restore: exactly the writes before its point, the bad change gone, how long it took."""

from __future__ import annotations

from dataclasses import replace

from harness.errors import ScenarioError
from harness.judgements import Evidence
from harness.measure.common import NotMeasured
from harness.measure.restore import RestoreExactness, measure_restore
from harness.targets import Target
from harness.timeline import of_kind
from harness.verdicts import Verdict, judge, judge_fact, judge_target

__all__ = ["backtrack_duration", "bad_change_present", "bad_change_undone", "latest_restorable_time", "nothing_leaked",
           "nothing_lost", "refused", "restore_time"]

SHOWN = 10


def _exactness(evidence: Evidence) -> RestoreExactness:
    result = measure_restore(evidence.records)
    if isinstance(result, NotMeasured):
        raise ScenarioError(f"there is no restore to judge: {result.reason}")
    return result


def _boundary(result: RestoreExactness) -> str:
    window = ("at its point" if result.boundary_low == result.boundary_high
              else f"in its {result.boundary_high - result.boundary_low:.3f} s window")
    return (f"boundary {window}, tolerance {result.tolerance_s * 1000:g} ms (engine {result.engine_resolution_s * 1000:g} "
            f"ms, clock {result.clock_uncertainty_s * 1000:g} ms); {result.present} acknowledged before it present, "
            f"{result.ambiguous} in flight across it, {result.unknown_not_counted} of unknown outcome not counted")


def nothing_lost(evidence: Evidence) -> Verdict:
    """Every write acknowledged before the restore point is in the restored cluster."""
    result = _exactness(evidence)
    verdict = judge("restore_lost_count", result.lost_count, 0, "<=", check="restore keeps every write before its point")
    named = f"; missing seqs {', '.join(map(str, result.lost[:SHOWN]))}{' …' if result.lost_count > SHOWN else ''}" \
        if result.lost_count else ""
    return _explained(verdict, f"{_boundary(result)}{named}")


def nothing_leaked(evidence: Evidence) -> Verdict:
    """No write that began after the restore point is in the restored cluster."""
    result = _exactness(evidence)
    verdict = judge("restore_leaked_count", result.leaked_count, 0, "<=",
                    check="restore holds nothing after its point")
    named = f"; present though begun after it: seqs {', '.join(map(str, result.leaked[:SHOWN]))}" \
        if result.leaked_count else ""
    return _explained(verdict, f"{_boundary(result)}{named}")


def restore_time(evidence: Evidence, *, limit_s: float) -> Verdict:
    """From the restore request to the restored writer's first acknowledged write."""
    result = _exactness(evidence)
    return judge("restore_time_s", result.restore_time_s, limit_s, "<=", check="restore time",
                 reason="the restored writer acknowledged no write")


def latest_restorable_time(evidence: Evidence, *, target: Target) -> Verdict:
    """How far the latest restorable time trailed the request, against the documented target, with
    the acknowledged writes that choice gave up."""
    result = _exactness(evidence)
    if result.kind != "latest":
        raise ScenarioError("the last restore was not to the latest restorable time")
    verdict = judge_target(target, result.accepted_loss_window_s, check="latest restorable time")
    return _explained(verdict, f"restoring to it gave up {result.accepted_loss} acknowledged write(s), the last "
                               f"{result.accepted_loss_window_s:.3f} s before the request")


def bad_change_undone(evidence: Evidence) -> Verdict:
    """The orders the bad change deleted are back in the restored cluster."""
    changes = list(of_kind(evidence.records, "bad-change"))
    reads = list(of_kind(evidence.records, "restore-ledger"))
    if not changes or not reads:
        raise ScenarioError("judging the bad change needs a bad change and a restore after it")
    deleted, restored = changes[-1]["rows"], reads[-1]["orders"] or 0
    return judge_fact("bad change undone", restored > 0,
                      f"the bad change deleted {deleted} orders; the restored cluster holds {restored} of this run's "
                      f"orders{'' if restored else ': the bad change is in it'}")


def _explained(verdict: Verdict, detail: str) -> Verdict:
    return replace(verdict, explanation=f"{verdict.explanation}; {detail}")


def bad_change_present(evidence: Evidence) -> Verdict:
    """After moving forward again (a backtrack to after the bad change), the bad change is back:
    of this run's orders created before it, the cluster holds no more than the bad change left
    (those in flight across it). Orders the load placed since are not the bad change's business."""
    changes = list(of_kind(evidence.records, "bad-change"))
    reads = list(of_kind(evidence.records, "restore-ledger"))
    if not changes or not reads or reads[-1].get("orders_before_bad_change") is None:
        raise ScenarioError("judging the bad change needs a load's orders, a bad change and a restore or backtrack "
                            "after it")
    before, left = reads[-1]["orders_before_bad_change"], changes[-1].get("survivors", 0)
    return judge_fact("bad change present again", before <= left,
                      f"the cluster holds {before} of this run's orders created before the bad change (it deleted "
                      f"{changes[-1]['rows']}, {left} in flight across it survived it)")


def backtrack_duration(evidence: Evidence, *, target: Target) -> Verdict:
    """The backtrack's own duration (request to completed) against the documented target."""
    result = _exactness(evidence)
    if result.kind != "backtrack":
        raise ScenarioError("the last rewind was not a backtrack")
    verdict = judge_target(target, result.duration_s, check="backtrack duration",
                           reason="the backtrack did not complete")
    asked = "" if result.requested_point is None or result.requested_point == result.boundary_low else (
        f"; asked for {result.requested_point:.6f}, Aurora's nearest consistent point was {result.boundary_low:.6f}")
    return _explained(verdict, f"rewound to the server's {result.boundary_low:.6f}{asked}")


def refused(evidence: Evidence, *, operation: str, code: str) -> Verdict:
    """The operation was refused with the error AWS answers (a backtrack out of its window, or on
    Aurora PostgreSQL), and the game day went on with nothing changed."""
    refusals = [r for r in of_kind(evidence.records, "refusal") if r.get("operation") == operation]
    if not refusals:
        return judge_fact(f"{operation} refused", False, f"{operation} was not refused: it ran")
    last = refusals[-1]
    return judge_fact(f"{operation} refused", last["code"] == code,
                      f"{operation} was refused with {last['code']} ({last.get('message', '')}); expected {code}")
