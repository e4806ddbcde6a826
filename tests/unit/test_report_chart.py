"""The timeline chart: one axis, every kind of record visible, sane with any timeline."""

from __future__ import annotations

import random
from bisect import bisect_right
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from harness.measure import measure_visibility_lag
from harness.report.chart import lag_samples, timeline_svg

Record = dict[str, Any]
T0, M0 = 1_700_000_000.0, 2_000.0
SVG = "{http://www.w3.org/2000/svg}"


def at(kind: str, seconds: float, **fields: Any) -> Record:
    return {"kind": kind, "t": T0 + seconds, "m": M0 + seconds, **fields}


def failover_timeline(writes: int = 400, interval: float = 0.05) -> list[Record]:
    """Writes and two read probes around a failover at 10 s; writes fail for 4 s, db-2 stalls."""
    records = [at("topology", 0.0, status="available", writer="db-1", readers=["db-2", "db-3"]),
               at("phase", 0.0, name="steady-state")]
    acked_seqs: list[int] = [0]
    acked_ends: list[float] = [float("-inf")]
    for seq in range(1, writes + 1):
        end = seq * interval
        outcome = "acknowledged" if not 10.0 < end < 14.0 else ("unknown" if seq % 7 == 0 else "failed")
        records.append(at("write", end, seq=seq, start=M0 + end - 0.004, end=M0 + end, outcome=outcome,
                          server="db-1", error=None if outcome == "acknowledged" else "connection reset"))
        if outcome == "acknowledged":
            acked_seqs.append(seq)
            acked_ends.append(end)
        for probe, delay in (("reader-endpoint", 0.01), ("reader:db-2", 0.5 if 14 < end < 16 else 0.02)):
            failed = 10.0 < end < 12.0
            visible = acked_seqs[bisect_right(acked_ends, end - delay) - 1]
            records.append(at("read", end + 0.002, probe=probe, start=M0 + end, end=M0 + end + 0.002,
                              outcome="failed" if failed else "ok", max_seq=None if failed else visible,
                              server="db-2", error="refused" if failed else None))
    records += [
        at("phase", 9.99, name="fault"),
        at("fault", 10.2, name="failover", description="FailoverDBCluster", start=M0 + 10.0, end=M0 + 10.2, detail={}),
        at("topology", 10.5, status="failing-over", writer="db-1", readers=["db-2", "db-3"]),
        at("event", 11.0, date=T0 + 10.6, source="gd-1", source_type="db-cluster",
           message="Started cross AZ failover to DB instance: db-2", categories=["failover"]),
        at("topology", 13.8, status="available", writer="db-2", readers=["db-1", "db-3"]),
        at("phase", 14.0, name="recovery"),
    ]
    return sorted(records, key=lambda r: r["m"])


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(node.itertext()) for node in root.iter(f"{SVG}text")]


def titles(root: ET.Element) -> list[str]:
    return [node.text or "" for node in root.iter(f"{SVG}title")]


def test_failover_chart_shows_every_kind_of_record() -> None:
    root = parse(timeline_svg(failover_timeline(), "Managed failover"))
    labels = texts(root)
    assert "Managed failover" in labels
    assert "⚡ failover @ 10 s" in labels  # the fault marker, on the axis of seconds since the first record
    assert "writer db-1 → db-2" in labels
    for lane in ("cluster status / writer", "RDS events", "write attempts", "reader-endpoint", "reader:db-2",
                 "visibility lag"):
        assert lane in labels
    for phase in ("steady-state", "fault", "recovery"):
        assert phase in labels
    assert any("Started cross AZ failover to DB instance: db-2" in t for t in titles(root))
    assert any(t.startswith("phase fault") for t in titles(root))


def test_legend_names_every_mark_and_each_probes_lag_line() -> None:
    root = parse(timeline_svg(failover_timeline(), "legend"))
    legend = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "legend")
    entries = texts(legend)
    for entry in ("write acknowledged", "write failed", "write outcome unknown", "read ok", "read failed",
                  "fault injected", "writer change", "RDS event", "lag reader-endpoint", "lag reader:db-2"):
        assert entry in entries


def test_write_outcomes_are_counted_per_bucket() -> None:
    tips = titles(parse(timeline_svg(failover_timeline(), "counts")))
    assert any(re.search(r": 0 acknowledged, [1-9]\d* failed", t) for t in tips)  # the outage
    assert any(re.search(r"[1-9]\d* unknown$", t) for t in tips)
    assert any(re.search(r": [1-9]\d* acknowledged, 0 failed, 0 unknown$", t) for t in tips)


def test_ten_thousand_attempts_stay_light() -> None:
    svg = timeline_svg(failover_timeline(writes=10_000, interval=0.002), "dense")
    root = parse(svg)
    assert sum(1 for _ in root.iter(f"{SVG}rect")) < 3000
    assert len(svg) < 600_000


@pytest.mark.parametrize("records", [[], [at("note", 0.0, text="cluster gd-1 on emulator")]],
                         ids=["empty", "one-record"])
def test_empty_and_tiny_timelines_render(records: list[Record]) -> None:
    root = parse(timeline_svg(records, "nothing yet"))
    labels = texts(root)
    assert "nothing yet" in labels and "legend" in labels
    assert ("no records in this timeline" in labels) == (not records)


def test_svg_is_self_contained() -> None:
    svg = timeline_svg(failover_timeline(), 'a <title> & "quotes"')
    parse(svg)
    assert "<script" not in svg and "href" not in svg and "url(" not in svg


def test_lag_samples_agree_with_the_lag_checker() -> None:
    """The chart's per-sample lags reproduce the checker's figures on a messy history."""
    rng = random.Random(7)
    records: list[Record] = []
    acked: list[tuple[int, float]] = []
    for seq in range(1, 600):
        end = seq * 0.01 + rng.random() * 0.005
        outcome = rng.choice(["acknowledged"] * 8 + ["failed", "unknown"])
        records.append(at("write", end, seq=seq, start=M0 + end - 0.003, end=M0 + end, outcome=outcome))
        if outcome == "acknowledged":
            acked.append((seq, end))
    for probe in ("reader:db-2", "reader:db-3"):
        for step in range(0, 700):
            start = step * 0.009
            stalled = 2.0 < start < 3.5 and probe == "reader:db-2"
            seen = [s for s, a in acked if a <= start - (1.0 if stalled else rng.random() * 0.05)]
            ok = rng.random() > 0.1
            records.append(at("read", start + 0.002, probe=probe, start=M0 + start, end=M0 + start + 0.002,
                              outcome="ok" if ok else "failed", max_seq=max(seen, default=0) if ok else None))
    samples = lag_samples(records)
    checked = measure_visibility_lag(records)
    for probe, result in checked.items():
        lags = sorted(lag for _, lag in samples[probe])
        assert len(lags) == result.samples
        assert lags[-1] == pytest.approx(result.lag_max_s, abs=1e-6)


def test_long_instance_names_keep_their_distinguishing_tail() -> None:
    probe = "reader:gd-managed-failover-promotes-the-reader-aur-1-2"
    records = [at("read", 1.0, probe=probe, start=M0 + 0.9, end=M0 + 1.0, outcome="ok", max_seq=0)]
    root = parse(timeline_svg(records, "long names"))
    assert "reader:…-reader-aur-1-2" in texts(root)
    assert probe in titles(root)
