"""The load's history: per-second aggregates, merging workers, and the join into the timeline."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness.load import histogram
from harness.load.history import HistoryFeed, Second, to_records
from harness.timeline import Timeline, read_timeline

OFFSET = 1_000.0  # wall − monotonic in these tests


def to_monotonic(wall: float) -> float:
    return wall - OFFSET


@pytest.mark.parametrize(("ms", "key"), [(2.37, "2.4"), (23.7, "24"), (237, "240"), (2370, "2400"),
                                         (0.237, "0.24"), (9.96, "10"), (0, "0"), (1, "1")])
def test_response_times_keep_two_significant_digits(ms: float, key: str) -> None:
    assert histogram.bucket_of(ms) == key


def test_histogram_percentiles_are_nearest_rank_and_merge_exactly() -> None:
    values = [random.Random(7).uniform(0.5, 900) for _ in range(1000)]
    whole: histogram.Histogram = {}
    halves: list[histogram.Histogram] = [{}, {}]
    for index, value in enumerate(values):
        histogram.add(whole, value)
        histogram.add(halves[index % 2], value)
    assert histogram.merge(halves) == whole
    ordered = sorted(float(histogram.bucket_of(v)) for v in values)
    assert histogram.percentile(whole, 0.95) == ordered[949]
    assert histogram.percentile(whole, 0.5) == ordered[499]
    assert histogram.maximum(whole) == ordered[-1]
    assert histogram.percentile({}, 0.95) is None


def observed(events: list[tuple[str, float, str | None, float]]) -> Second:
    second = Second()
    for name, ms, error, end in events:
        second.observe("cluster endpoint", name, ms, error, end, users=5)
    return second


def test_a_master_merging_workers_seconds_gets_what_one_process_would_have_recorded() -> None:
    rng = random.Random(3)
    events = [(rng.choice(["place order", "pay order"]), rng.uniform(1, 50),
               rng.choice([None, None, "08006: lost", "25006: read-only"]), 100 + rng.random()) for _ in range(300)]
    alone = observed(events).as_dict(100)
    master = Second()
    # two workers; the first ships its part of the second in two reports
    for worker, part in (("w1", events[:50]), ("w1", events[50:120]), ("w2", events[120:])):
        master.absorb(json.loads(json.dumps(observed(part).as_dict(100))), worker)
    merged = master.as_dict(100)
    assert (merged["users"], merged["workers"]) == (10, 2) and alone["users"] == 5  # users add up across workers
    merged.update(users=alone["users"], workers=alone["workers"])
    assert merged == alone


def test_a_second_counts_by_name_keeps_successes_latencies_and_the_first_and_last_failure() -> None:
    second = observed([("place order", 3.0, None, 100.1), ("place order", 5000.0, "08006: lost", 100.4),
                       ("pay order", 2.0, "08006: lost", 100.2), ("pay order", 4.0, None, 100.9)]).as_dict(100)
    assert (second["requests"], second["failures"]) == (4, 2)
    assert second["response_times"] == {"3": 1, "4": 1}  # a failure's time is not a latency
    assert second["names"] == [{"request_type": "cluster endpoint", "name": "pay order", "requests": 2, "failures": 1},
                               {"request_type": "cluster endpoint", "name": "place order", "requests": 2,
                                "failures": 1}]
    (pay, place) = second["failure_groups"]
    assert (pay["occurrences"], pay["first"], pay["last"]) == (1, 100.2, 100.2)
    assert (place["name"], place["error"], place["first"]) == ("place order", "08006: lost", 100.4)


def line(seconds: list[Second], first: int, until: float, stopped: float | None = None,
         final: bool = False) -> dict:
    entry = {"until": until, "users": 5, "seconds": [s.as_dict(first + i) for i, s in enumerate(seconds)]}
    if stopped is not None:
        entry["stopped"] = stopped
    if final:
        entry["final"] = True
    return entry


def test_a_line_becomes_a_load_record_per_second_and_a_record_per_failure_group() -> None:
    busy = observed([("place order", 2.0, None, 1100.2), ("place order", 9.0, None, 1100.3),
                     ("pay order", 1.0, "08006: lost", 1100.5), ("pay order", 1.0, "08006: lost", 1100.7)])
    records = to_records(line([busy, Second()], 1100, until=1102.0), "oltp/naive", to_monotonic)
    kinds = [kind for kind, *_ in records]
    assert kinds == ["load", "load-failure", "load"]
    kind, t, m, load = records[0]
    assert (t, m, load["start"], load["end"]) == (1100.0, 100.0, 100.0, 101.0)
    assert (load["requests"], load["failures"], load["rps"], load["users"], load["workers"]) == (4, 2, 4.0, 5, 0)
    assert (load["p50_ms"], load["p95_ms"], load["max_ms"]) == (2.0, 9.0, 9.0)
    assert (load["first_failure"], load["last_failure"]) == pytest.approx((100.5, 100.7))
    _, t, m, failure = records[1]
    assert (failure["occurrences"], failure["second"], failure["error"]) == (2, 100.0, "08006: lost")
    assert (t, m) == (1100.5, pytest.approx(100.5)) and failure["last"] == pytest.approx(100.7)
    assert records[2][3]["p95_ms"] is None and records[2][3]["first_failure"] is None


def test_the_last_second_ends_when_the_users_were_told_to_stop() -> None:
    records = to_records(line([observed([("pay order", 1.0, None, 1200.1)])], 1200, until=1201.3, stopped=1200.4),
                         "oltp/naive", to_monotonic)
    assert records[0][3]["end"] == pytest.approx(200.4)
    assert to_records({"until": 1.0, "users": 0, "seconds": []}, "x") == []


def test_the_feed_joins_lines_as_they_are_written_even_in_pieces(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    timeline = Timeline(tmp_path / "timeline.jsonl")
    feed = HistoryFeed(history, timeline, "oltp/naive")
    feed.read()  # no file yet: nothing, no error
    first = json.dumps(line([observed([("pay order", 1.0, None, 1300.5)])], 1300, until=1301.2)) + "\n"
    second = json.dumps(line([observed([("pay order", 1.0, "08006: lost", 1301.5)])], 1301, until=1302.3,
                             stopped=1301.8, final=True)) + "\n"
    with open(history, "w") as out:
        out.write(first + second[:25])
    feed.read()
    assert (feed.requests, feed.failures, feed.until, feed.users, feed.final) == (1, 0, 1301.2, 5, False)
    with open(history, "a") as out:
        out.write(second[25:])
    feed.read()
    assert (feed.requests, feed.failures, feed.until, feed.final) == (2, 1, 1302.3, True)
    timeline.close()
    records = read_timeline(timeline.path)
    assert [r["kind"] for r in records] == ["load", "load", "load-failure"]
    assert all(r["load"] == "oltp/naive" for r in records)
