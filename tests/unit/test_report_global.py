"""The global game day's report: a lane per Region, the RPO table and the RTO per fault and driver."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from harness.report.global_database import global_tables_html, global_timeline_svg
from tests.unit.test_judgements_global import EAST, WEST, outage_then_failover, topology
from tests.unit.test_measure import write


def history() -> list:
    records = outage_then_failover()
    records[0]["m"] = 0.5
    outage = next(r for r in records if r.get("name") == "region-outage")
    outage["detail"] = {"region": EAST}
    back = {"kind": "action", "t": 0, "m": 17.0, "name": "region-returns", "start": 16.5, "end": 17.0}
    return [topology(0.5, EAST, {EAST: "", WEST: "connected"}), *records,
            topology(15.0, WEST, {EAST: "pending-resync", WEST: ""}), back,
            topology(18.0, WEST, {EAST: "connected", WEST: ""})]


def test_a_lane_per_region_with_roles_writes_and_the_faults() -> None:
    svg = global_timeline_svg(history(), "Failover")
    ElementTree.fromstring(svg)  # well-formed
    assert ">us-east-1<" in svg and ">us-west-2<" in svg
    for role in (f"{EAST}: writer", f"{EAST}: out", f"{EAST}: resyncing", f"{EAST}: secondary",
                 f"{WEST}: secondary", f"{WEST}: writer"):
        assert f"<title>{role}</title>" in svg, role
    assert ">region-outage<" in svg and ">global-failover<" in svg
    assert global_timeline_svg([write(1, 0, 1)], "one cluster") is None


def test_the_rpo_table_names_the_lost_writes_and_the_rto_is_given_per_fault() -> None:
    html = global_tables_html(history())
    assert "<td>plain</td><td>3 of 13</td><td>2.000 s</td><td>2.000 s</td><td>8, 9, 10</td>" in html
    assert "4.500 s" in html and "1.500 s" in html  # from the outage, from the failover call
    assert global_tables_html([write(1, 0, 1)]) == ""
