"""The documented-targets catalog: AWS's published numbers a measurement is judged against.

The catalog is data (`harness/data/targets.json`), so an auditor can read every limit next to
the sentence it came from. Kinds keep promises apart from expectations:

- `documented-limit`: a fact or hard bound AWS states (RPO 0 for a switchover, the 300 s default
  switchover timeout, the 5 s DNS TTL of Aurora zones);
- `documented-typical`: what AWS says *typically* or *usually* happens (failover under 60 s);
- `documented-guidance`: a figure that holds when the client follows AWS's recommendation;
- `interpreted`: AWS states no number; the entry's `note` says how this project chose one.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}
SYMBOLS = {"<=": "≤", "<": "<", ">=": "≥", ">": ">"}
KINDS = ("documented-limit", "documented-typical", "documented-guidance", "interpreted")

_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_FIELDS = {"id", "title", "metric", "limit", "unit", "comparison", "kind", "source", "note"}
_SOURCE_FIELDS = {"title", "section", "wording", "url", "quoted"}


class TargetCatalogError(ValueError):
    """The catalog file is malformed; the message names the offending entry."""


@dataclass(frozen=True)
class Source:
    title: str
    wording: str
    section: str | None = None
    url: str | None = None
    quoted: bool = True  # False: `wording` paraphrases the source (the entry's note says so)


@dataclass(frozen=True)
class Target:
    id: str
    title: str
    metric: str
    limit: float
    unit: str
    comparison: str
    kind: str
    source: Source
    note: str | None = None

    @property
    def bound(self) -> str:
        """The limit as a reader says it, e.g. "< 60 s"."""
        return f"{SYMBOLS[self.comparison]} {quantity(self.limit, self.unit)}"


def load_targets(path: Path | None = None) -> dict[str, Target]:
    """The catalog shipped in the package (or the file at `path`), by id, validated."""
    if path is None:
        text = resources.files("harness").joinpath("data/targets.json").read_text("utf-8")
        where = "harness/data/targets.json"
    else:
        text, where = Path(path).read_text(encoding="utf-8"), str(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TargetCatalogError(f"{where}: not valid JSON: {exc}") from exc
    return parse_targets(data)


def parse_targets(data: Any) -> dict[str, Target]:
    if not isinstance(data, Mapping) or not isinstance(data.get("targets"), list):
        raise TargetCatalogError('the catalog must be an object with a "targets" list')
    targets: dict[str, Target] = {}
    for index, entry in enumerate(data["targets"]):
        target = _parse_entry(entry, index)
        if target.id in targets:
            raise TargetCatalogError(f"target {target.id!r}: duplicate id")
        targets[target.id] = target
    return targets


def format_targets(targets: Mapping[str, Target]) -> str:
    """A fixed-width table for `gameday targets`: what each target limits, and its source."""
    rows = [("ID", "LIMIT", "METRIC", "KIND", "SOURCE")]
    rows += [(t.id, t.bound, t.metric, t.kind, t.source.title) for t in targets.values()]
    return table(rows)


def quantity(value: float, unit: str) -> str:
    """A number as a person reads it: 60 s, 0.1 s, 12.4 s, 0 writes."""
    if float(value).is_integer():
        number = str(int(value))
    elif abs(value) >= 1:
        number = f"{value:.3f}".rstrip("0").rstrip(".")
    else:
        number = f"{value:.3g}"
    return f"{number} {unit}" if unit else number


def table(rows: list[tuple[str, ...]]) -> str:
    """Left-aligned fixed-width columns, two spaces apart; the first row is the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    )


def _parse_entry(entry: Any, index: int) -> Target:
    if not isinstance(entry, Mapping):
        raise TargetCatalogError(f"target #{index}: must be an object")
    name = f"target {entry['id']!r}" if isinstance(entry.get("id"), str) else f"target #{index}"
    _check_keys(name, entry, _FIELDS, required=_FIELDS - {"note"})
    for field in ("id", "title", "metric", "unit", "kind", "comparison"):
        _check_text(name, field, entry[field])
    if not _ID.match(entry["id"]):
        raise TargetCatalogError(f"{name}: id must be kebab-case (a-z, 0-9, '-')")
    if entry["comparison"] not in COMPARISONS:
        raise TargetCatalogError(
            f"{name}: unknown comparison {entry['comparison']!r}; use one of {list(COMPARISONS)}"
        )
    if entry["kind"] not in KINDS:
        raise TargetCatalogError(f"{name}: unknown kind {entry['kind']!r}; use one of {KINDS}")
    limit = entry["limit"]
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not math.isfinite(limit):
        raise TargetCatalogError(f"{name}: limit must be a finite number, got {limit!r}")
    if entry.get("note") is not None:
        _check_text(name, "note", entry["note"])
    return Target(
        id=entry["id"],
        title=entry["title"],
        metric=entry["metric"],
        limit=float(limit),
        unit=entry["unit"],
        comparison=entry["comparison"],
        kind=entry["kind"],
        source=_parse_source(name, entry["source"]),
        note=entry.get("note"),
    )


def _parse_source(name: str, source: Any) -> Source:
    if not isinstance(source, Mapping):
        raise TargetCatalogError(f"{name}: source must be an object")
    _check_keys(f"{name} source", source, _SOURCE_FIELDS, required={"title", "wording"})
    for field in ("title", "wording", "section", "url"):
        if field in source:
            _check_text(name, f"source.{field}", source[field])
    quoted = source.get("quoted", True)
    if not isinstance(quoted, bool):
        raise TargetCatalogError(f"{name}: source.quoted must be true or false")
    return Source(
        title=source["title"],
        wording=source["wording"],
        section=source.get("section"),
        url=source.get("url"),
        quoted=quoted,
    )


def _check_keys(name: str, entry: Mapping[str, Any], known: set[str], required: set[str]) -> None:
    missing = sorted(required - entry.keys())
    if missing:
        raise TargetCatalogError(f"{name}: missing {', '.join(missing)}")
    unknown = sorted(entry.keys() - known)
    if unknown:
        raise TargetCatalogError(f"{name}: unknown field {', '.join(unknown)}")


def _check_text(name: str, field: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise TargetCatalogError(f"{name}: {field} must be a non-empty string, got {value!r}")
