"""Judgement calls as data (`verdict.json`) and their replay: how an auditor recomputes a verdict."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness.gameday import GameDay
from harness.judgements import writes
from harness.judgements.replay import ReplayError, judgement_call, replay, resolve
from harness.targets import load_targets
from harness.timeline import read_timeline
from harness.verdicts import BREACHED, MET
from tests.unit.certify_support import MEMBERS, failover_records, make_run
from tests.unit.test_actions import FakeEnvironment


def test_verdict_json_records_each_call_and_its_replay_gives_the_recorded_verdicts(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "r1")
    (verdict_file,) = run_dir.glob("scenarios/*/*/verdict.json")
    recorded = json.loads(verdict_file.read_text())["verdicts"]
    assert [(v["judgement"], v["call"]) for v in recorded] == [
        ("harness.judgements.writes:recovery", 0), ("harness.judgements.writes:data_loss", 1),
        ("harness.judgements.writer:promoted_by_tier", 2)]
    assert recorded[0]["arguments"] == {"limit": 5.0}
    assert recorded[1]["arguments"] == {"target": {"$target": "in-region-acknowledged-writes"}}
    assert recorded[2]["arguments"]["members_at_fault"][0] == {"$member": {
        "identifier": "db-1", "is_writer": True, "promotion_tier": 1, "status": "available",
        "availability_zone": "us-east-1a", "instance_class": "db.r6g.large", "address": "127.0.0.1", "port": 5432}}
    records = read_timeline(verdict_file.with_name("timeline.jsonl"))
    for verdict in recorded:
        (again,) = replay(verdict, records)
        assert {k: verdict[k] for k in again.as_dict()} == again.as_dict()


def test_a_judgement_is_replayed_over_the_timeline_it_saw_not_the_final_one(tmp_path: Path) -> None:
    """Judged while writes were still down, the RTO was not measured (breached); the final timeline
    would say otherwise, and replay must give what the judgement really saw."""
    day = GameDay(FakeEnvironment(), "early judge", tmp_path / "early")  # type: ignore[arg-type]
    day.provide_cluster(readers=1)
    records = failover_records(3.0)
    for record in records[:4]:  # up to the failed write
        day.timeline.record_at(record["kind"], record["t"], record["m"],
                               **{k: v for k, v in record.items() if k not in ("kind", "t", "m")})
    (early,) = day.judge(writes.recovery, finish=False, limit=5.0)
    for record in records[4:]:
        day.timeline.record_at(record["kind"], record["t"], record["m"],
                               **{k: v for k, v in record.items() if k not in ("kind", "t", "m")})
    (late,) = day.judge(writes.recovery, finish=False, limit=5.0)
    day.close()
    assert (early.status, late.status) == (BREACHED, MET)
    first, second = json.loads((tmp_path / "early" / "verdict.json").read_text())["verdicts"]
    final = read_timeline(tmp_path / "early" / "timeline.jsonl")
    assert first["timeline_records"] < second["timeline_records"] <= len(final)
    assert replay(first, final)[0].status == BREACHED and replay(second, final)[0].status == MET


def test_arguments_get_a_json_form_and_objects_without_one_are_said_to_be_unreplayable() -> None:
    target = load_targets()["failover-with-replicas"]
    call = judgement_call(writes.recovery, {"target": target, "limit": None, "members": tuple(MEMBERS[:1]),
                                            "loads": ["oltp/naive"], "until": 12.5},
                          timeline_records=7, call=3)
    assert call == {"judgement": "harness.judgements.writes:recovery", "timeline_records": 7, "call": 3,
                    "arguments": {"target": {"$target": "failover-with-replicas"}, "limit": None,
                                  "members": [{"$member": {**MEMBERS[0].__dict__}}], "loads": ["oltp/naive"],
                                  "until": 12.5}}
    json.dumps(call, allow_nan=False)
    for odd in (object(), math.inf):
        unreplayable = judgement_call(writes.recovery, {"limit": odd}, timeline_records=1, call=0)
        assert unreplayable["arguments"] is None and "no JSON form" in unreplayable["unreplayable"]
        with pytest.raises(ReplayError, match="no JSON form"):
            replay(unreplayable, [])


@pytest.mark.parametrize("reference", ["os:system", "harness.measure.rto:measure_rto", "harness.judgements:Evidence",
                                       "harness.judgements.writes:Evidence", "harness.judgements.writes:judge",
                                       "harness.judgements.writes.x:recovery", "harness.judgements.nowhere:recovery",
                                       "harness.judgements.writes:recovery()"])
def test_replay_runs_nothing_but_a_public_judgement(reference: str) -> None:
    """A bundle is untrusted: the judgement it names must be one of the harness's own."""
    with pytest.raises(ReplayError):
        resolve(reference)
    assert resolve("harness.judgements.writes:recovery") is writes.recovery


def test_replay_refuses_what_it_cannot_reproduce() -> None:
    call = {"judgement": "harness.judgements.writes:recovery", "arguments": {"limit": 5.0}, "timeline_records": 9}
    with pytest.raises(ReplayError, match="saw 9 timeline records; the timeline has 2"):
        replay(call, [{}, {}])
    with pytest.raises(ReplayError, match="no target 'no-such-target'"):
        replay({**call, "arguments": {"target": {"$target": "no-such-target"}}, "timeline_records": 0}, [])
    with pytest.raises(ReplayError, match="unknown form"):
        replay({**call, "arguments": {"limit": {"$eval": "1"}}, "timeline_records": 0}, [])
    with pytest.raises(ReplayError, match="how many timeline records"):
        replay({**call, "timeline_records": None}, [])
