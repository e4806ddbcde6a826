"""The documented-targets catalog: what ships, and how a malformed catalog is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.measure import METRICS
from harness.targets import (
    KINDS,
    Target,
    TargetCatalogError,
    format_targets,
    load_targets,
    parse_targets,
    quantity,
)

# Metrics measured outside the timeline checkers (DNS lookups, client settings, the RDS API).
MEASURED_ELSEWHERE = {"dns_ttl_s", "client_dns_ttl_s", "latest_restorable_lag_s"}


def entry(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "failover-with-replicas",
        "title": "Writes are back within a minute",
        "metric": "rto_s",
        "limit": 60,
        "unit": "s",
        "comparison": "<",
        "kind": "documented-typical",
        "source": {"title": "High availability for Amazon Aurora", "wording": "..."},
    }
    base.update(changes)
    return base


# --------------------------------------------------------------------------- the shipped catalog


def test_shipped_catalog_holds_the_documented_targets() -> None:
    targets = load_targets()
    expected = {
        "failover-with-replicas": ("rto_s", 60, "<", "documented-typical"),
        "failover-db-cluster-typical": ("rto_s", 35, "<", "documented-typical"),
        "failover-without-replicas": ("rto_s", 600, "<", "documented-typical"),
        "whitepaper-failover": ("rto_s", 30, "<=", "documented-typical"),
        "in-cluster-replica-lag": ("lag_p99_s", 0.1, "<", "documented-typical"),
        "global-database-replication-latency": ("lag_p99_s", 1, "<", "documented-typical"),
        "global-database-switchover-rpo": ("lost_count", 0, "<=", "documented-limit"),
        "global-database-rto": ("rto_s", 300, "<=", "interpreted"),
        "global-database-failover-rpo": ("rpo_s", 60, "<", "interpreted"),
        "blue-green-switchover-rpo": ("lost_count", 0, "<=", "documented-limit"),
        "blue-green-switchover-downtime": ("outage_s", 60, "<", "documented-typical"),
        "blue-green-switchover-timeout": ("rto_s", 300, "<=", "documented-limit"),
        "aurora-dns-ttl": ("dns_ttl_s", 5, "<=", "documented-limit"),
        "client-dns-cache-ttl": ("client_dns_ttl_s", 30, "<", "documented-guidance"),
        "pitr-latest-restorable-time": ("latest_restorable_lag_s", 300, "<=", "documented-typical"),
        "backtrack-duration": ("rto_s", 3600, "<", "interpreted"),
        "tcp-keepalive-detection": ("first_failure_after_fault_s", 5, "<=", "documented-guidance"),
        "in-region-acknowledged-writes": ("lost_count", 0, "<=", "interpreted"),
    }
    assert {
        tid: (t.metric, t.limit, t.comparison, t.kind) for tid, t in targets.items()
    } == expected


def test_every_target_cites_its_source_and_judges_a_known_metric() -> None:
    measured = set().union(*METRICS.values()) | MEASURED_ELSEWHERE
    for target in load_targets().values():
        assert target.metric in measured, target.id
        assert target.source.title and target.source.wording, target.id
        assert target.kind in KINDS
        if target.kind == "interpreted" or not target.source.quoted:
            assert target.note, f"{target.id}: say how the number was chosen"


def test_catalog_quotes_the_user_guide_exactly() -> None:
    target = load_targets()["failover-with-replicas"]
    assert target.source.section == "Fault tolerance for an Aurora DB cluster"
    assert target.source.wording.endswith(
        "service is typically restored in less than 60 seconds, and often less than 30 seconds."
    )
    assert load_targets()["in-region-acknowledged-writes"].source.quoted is False


def test_format_targets_is_an_aligned_table() -> None:
    text = format_targets(load_targets())
    lines = text.splitlines()
    assert lines[0].split() == ["ID", "LIMIT", "METRIC", "KIND", "SOURCE"]
    row = next(line for line in lines if line.startswith("in-cluster-replica-lag "))
    cells = [cell.strip() for cell in row.split("  ") if cell.strip()]
    assert cells == [
        "in-cluster-replica-lag", "< 0.1 s", "lag_p99_s", "documented-typical",
        "Replication with Amazon Aurora",
    ]
    metric_column = lines[0].index("METRIC")
    assert all(line[metric_column - 2 : metric_column] == "  " for line in lines)
    assert len(lines) == 1 + len(load_targets())


def test_quantity_reads_like_a_person_wrote_it() -> None:
    assert [quantity(v, "s") for v in (60, 60.0, 0.1, 12.4, 72.12345, 0.0004)] == [
        "60 s", "60 s", "0.1 s", "12.4 s", "72.123 s", "0.0004 s"
    ]
    assert quantity(0.995, "") == "0.995"


# --------------------------------------------------------------------------- validation


def test_parse_builds_typed_targets() -> None:
    targets = parse_targets({"targets": [entry(note="why")]})
    target = targets["failover-with-replicas"]
    assert isinstance(target, Target)
    assert (target.limit, target.bound, target.note, target.source.quoted) == (
        60.0, "< 60 s", "why", True
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"comparison": "=="}, "target 'failover-with-replicas': unknown comparison '=='"),
        ({"limit": "60"}, "'failover-with-replicas': limit must be a finite number"),
        ({"limit": True}, "limit must be a finite number, got True"),
        ({"limit": float("inf")}, "limit must be a finite number"),
        ({"kind": "promise"}, "unknown kind 'promise'"),
        ({"id": "Aurora_Failover"}, "target 'Aurora_Failover': id must be kebab-case"),
        ({"metric": ""}, "metric must be a non-empty string"),
        ({"comparision": "<"}, "unknown field comparision"),
        ({"source": {"title": "t"}}, "source: missing wording"),
        ({"source": {"title": "t", "wording": "w", "quoted": "no"}}, "source.quoted must be"),
    ],
)
def test_invalid_entries_are_refused_by_name(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(TargetCatalogError, match=message.replace("(", r"\(")):
        parse_targets({"targets": [entry(**changes)]})


def test_missing_fields_and_unnamed_entries() -> None:
    broken = entry()
    del broken["limit"]
    with pytest.raises(TargetCatalogError, match="'failover-with-replicas': missing limit"):
        parse_targets({"targets": [broken]})
    nameless = entry()
    del nameless["id"]
    with pytest.raises(TargetCatalogError, match="target #1: missing id"):
        parse_targets({"targets": [entry(id="first"), nameless]})
    with pytest.raises(TargetCatalogError, match="target #0: must be an object"):
        parse_targets({"targets": ["aurora"]})
    with pytest.raises(TargetCatalogError, match='"targets" list'):
        parse_targets([entry()])


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(TargetCatalogError, match="'failover-with-replicas': duplicate id"):
        parse_targets({"targets": [entry(), entry(limit=30)]})


def test_load_targets_from_a_file_names_it_when_it_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "targets.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(TargetCatalogError, match="targets.json: not valid JSON"):
        load_targets(path)
