"""The figures a game day measures, each declared once, beside the checker that produces it.

A metric's name (`rto_s`), label ("RTO") and unit ("s") live in one `Metric`, declared by the
checker module that computes it (`METRICS = declare("rto", ...)`). Verdicts take their wording
from here and targets may judge any declared metric, so a new figure is one declaration next to
its checker, not an edit in four places.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Metric", "REGISTRY", "by_checker", "declare", "label", "unit"]


@dataclass(frozen=True)
class Metric:
    name: str  # unique across checkers: a target's `metric` names exactly one figure
    label: str  # how a report says it
    unit: str  # "s", "ms", "writes", "requests", "" for a ratio or a count without a unit
    checker: str = ""  # the checker (a key of `measure_all`'s output) that computes it
    higher_is_better: bool = False


REGISTRY: dict[str, Metric] = {}


def declare(checker: str, *metrics: Metric) -> tuple[Metric, ...]:
    """Register the metrics `checker` computes; a name declared twice is a programming error."""
    declared = []
    for metric in metrics:
        metric = Metric(metric.name, metric.label, metric.unit, checker, metric.higher_is_better)
        known = REGISTRY.get(metric.name)
        if known is not None and known != metric:
            raise ValueError(f"metric {metric.name!r} is declared by both {known.checker!r} and {checker!r}")
        REGISTRY[metric.name] = metric
        declared.append(metric)
    return tuple(declared)


def label(name: str) -> str:
    metric = REGISTRY.get(name)
    return metric.label if metric else name


def unit(name: str) -> str:
    metric = REGISTRY.get(name)
    return metric.unit if metric else ""


def by_checker() -> dict[str, frozenset[str]]:
    """{checker: its metric names}, for every declared metric."""
    grouped: dict[str, set[str]] = {}
    for metric in REGISTRY.values():
        grouped.setdefault(metric.checker, set()).add(metric.name)
    return {checker: frozenset(names) for checker, names in grouped.items()}


# Figures a target may judge that no timeline checker computes: they are read from DNS, a
# client's settings or the RDS API by the judgement that uses them.
declare(
    "elsewhere",
    Metric("dns_ttl_s", "DNS TTL", "s"),
    Metric("client_dns_ttl_s", "client DNS cache TTL", "s"),
    Metric("latest_restorable_lag_s", "latest restorable time lag", "s"),
)
