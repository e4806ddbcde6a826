"""Verdicts: a measured value against a limit, in AWS Resilience Hub's vocabulary.

`PolicyMet` / `PolicyBreached` are the statuses Resilience Hub reports for its own estimates, so
a game day's evidence lines up with them. A value that was never measured (writes that never
recovered, a checker with no data) is breached: nothing shows the target was met.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from harness.measure import metrics
from harness.targets import COMPARISONS, SYMBOLS, Target, quantity, table

MET = "PolicyMet"
BREACHED = "PolicyBreached"
Status = Literal["PolicyMet", "PolicyBreached"]

NEGATED = {"<=": ">", "<": "≥", ">=": "<", ">": "≤"}
@dataclass(frozen=True)
class Verdict:
    check: str
    metric: str
    measured: float | None
    limit: float
    unit: str
    comparison: str
    status: Status
    target_id: str | None  # None: the limit was written in the scenario
    source_title: str | None
    explanation: str

    @property
    def met(self) -> bool:
        return self.status == MET

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(
    metric: str,
    measured: float | None,
    limit: float,
    comparison: str,
    unit: str | None = None,
    target: Target | None = None,
    check: str | None = None,
    reason: str | None = None,
) -> Verdict:
    """Judge `measured` against `limit`; `reason` says why `measured` is None, for the report.

    The metric's label and unit are the ones its checker declared (`harness.measure.metrics`)."""
    if comparison not in COMPARISONS:
        raise ValueError(f"unknown comparison {comparison!r}; use one of {list(COMPARISONS)}")
    if target is not None and target.metric != metric:
        raise ValueError(f"target {target.id!r} judges {target.metric}, not {metric}")
    label = metrics.label(metric)
    unit = metrics.unit(metric) if unit is None else unit
    bound = f"{SYMBOLS[comparison]} {quantity(limit, unit)}"
    cited = target.source.title if target else "limit set in the scenario"
    if measured is None:
        met = False
        why = f": {reason}" if reason else ""
        sentence = f"{label} has no measured value{why}, so it is not shown {bound}"
    else:
        met = COMPARISONS[comparison](measured, limit)
        shown = quantity(measured, unit)
        sentence = (
            f"{label} {shown} {bound}"
            if met
            else f"{label} {shown} {NEGATED[comparison]} {quantity(limit, unit)}, breaching {bound}"
        )
    return Verdict(
        check=check or label,
        metric=metric,
        measured=measured,
        limit=limit,
        unit=unit,
        comparison=comparison,
        status=MET if met else BREACHED,
        target_id=target.id if target else None,
        source_title=target.source.title if target else None,
        explanation=f"{sentence} ({cited})",
    )


def judge_target(
    target: Target, measured: float | None, check: str | None = None, reason: str | None = None
) -> Verdict:
    """Judge `measured` against a catalog target's own metric, limit and comparison."""
    return judge(
        target.metric,
        measured,
        target.limit,
        target.comparison,
        target.unit,
        target=target,
        check=check,
        reason=reason,
    )


def judge_fact(check: str, holds: bool, explanation: str) -> Verdict:
    """A yes/no observation stated in words, e.g. which reader became the writer."""
    return Verdict(check=check, metric="fact", measured=1.0 if holds else 0.0, limit=1.0, unit="",
                   comparison=">=", status=MET if holds else BREACHED, target_id=None, source_title=None,
                   explanation=explanation)


def overall_status(verdicts: Sequence[Verdict]) -> Status:
    """Breached if any verdict is; a scenario that judged nothing has breached nothing."""
    return BREACHED if any(not v.met for v in verdicts) else MET


def write_verdict_file(
    path: Path, scenario: str, verdicts: Sequence[Verdict], measurements: Mapping[str, Any],
    aborted: str | None = None, provenance: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """`verdict.json`: the scenario's overall status, every verdict, and the numbers behind them;
    `aborted` says why a stop condition held the fault back (null when it did not); `provenance`,
    one entry per verdict, is merged into it: the judgement call that made it, so an auditor can
    recompute it from the timeline (`harness.judgements.replay`)."""
    document = {
        "scenario": scenario,
        "status": overall_status(verdicts),
        "aborted": aborted,
        "verdicts": [{**v.as_dict(), **(provenance[i] if i < len(provenance) else {})}
                     for i, v in enumerate(verdicts)],
        "measurements": measurements,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def format_verdict_table(verdicts: Sequence[Verdict]) -> str:
    """The terminal view: one row per check, then the overall status."""
    rows = [("STATUS", "CHECK", "MEASURED", "TARGET", "SOURCE")]
    for v in verdicts:
        rows.append((
            "✓ MET" if v.met else "✗ BREACHED",
            v.check,
            "not measured" if v.measured is None else quantity(v.measured, v.unit),
            f"{SYMBOLS[v.comparison]} {quantity(v.limit, v.unit)}",
            v.source_title or "scenario",
        ))
    breached = sum(1 for v in verdicts if not v.met)
    summary = f"{overall_status(verdicts)}: {breached} of {len(verdicts)} checks breached"
    return f"{table(rows)}\n{summary}"
