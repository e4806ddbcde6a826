"""Pure-logic tests for the fabric's toxic model (no sockets, no event loop)."""

from __future__ import annotations

import math
import random

import pytest

from harness.emulator.fabric.toxics import (
    PASSTHROUGH,
    LatencyClock,
    Pacer,
    ToxicityDice,
    build_plan,
    kbps_to_bytes,
    parse_toxic,
)


def toxic(type_: str, name: str = "t", **fields: object):
    return parse_toxic({"name": name, "type": type_, **fields})


# --------------------------------------------------------------------------- parsing


def test_parse_defaults_and_round_trip() -> None:
    t = toxic("latency", attributes={"latency_ms": 200})
    assert (t.stream, t.toxicity) == ("both", 1.0)
    assert t.attributes == {"latency_ms": 200.0, "jitter_ms": 0.0}
    again = parse_toxic(t.to_json())
    assert again.to_json() == t.to_json()
    assert again.uid != t.uid  # a re-added toxic is a new toxic


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"name": "x", "type": "slow"}, "unknown toxic type 'slow'"),
        ({"name": "x", "type": "latency"}, "needs attribute 'latency_ms'"),
        ({"name": "x", "type": "latency", "attributes": {"latency_ms": -1}}, "latency.latency_ms"),
        ({"name": "x", "type": "latency", "attributes": {"latency_ms": "5"}}, "must be a number"),
        ({"name": "x", "type": "latency", "attributes": {"latency_ms": True}}, "must be a number"),
        ({"name": "x", "type": "latency", "attributes": {"latency_ms": 1, "lat": 2}}, "unknown attribute(s) lat"),
        ({"name": "x", "type": "blackhole", "stream": "sideways"}, "stream must be one of"),
        ({"name": "x", "type": "blackhole", "toxicity": 1.5}, "toxicity must be between 0 and 1"),
        ({"name": "x", "type": "bandwidth"}, "needs attribute 'rate_kbps'"),
        ({"name": "", "type": "blackhole"}, "non-empty string 'name'"),
        ({"name": "x", "type": "blackhole", "colour": "red"}, "unknown toxic field(s): colour"),
        ("latency", "toxic must be an object"),
    ],
)
def test_parse_rejects_with_a_precise_message(raw: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_toxic(raw)
    assert message in str(info.value)


def test_reset_defaults_to_immediate() -> None:
    assert toxic("reset").attributes == {"timeout_ms": 0.0}


# --------------------------------------------------------------------------- plans


def test_plan_without_toxics_is_passthrough() -> None:
    assert build_plan([], "upstream") is PASSTHROUGH
    assert PASSTHROUGH.passthrough


def test_plan_respects_stream_direction() -> None:
    hole = toxic("blackhole", stream="downstream")
    assert build_plan([hole], "downstream").blackhole
    assert build_plan([hole], "upstream").passthrough


def test_plan_combines_toxics() -> None:
    toxics = [
        toxic("latency", "a", attributes={"latency_ms": 100, "jitter_ms": 10}),
        toxic("latency", "b", stream="upstream", attributes={"latency_ms": 50}),
        toxic("bandwidth", "c", attributes={"rate_kbps": 80}),
        toxic("bandwidth", "d", attributes={"rate_kbps": 8}),
        toxic("reset", "e", attributes={"timeout_ms": 5}),
    ]
    up = build_plan(toxics, "upstream")
    assert up.latency_s == pytest.approx(0.15)
    assert up.jitter_s == pytest.approx(0.01)
    assert up.rate_bytes == kbps_to_bytes(8) == 1000.0  # the slowest link wins
    assert not up.blackhole and not up.passthrough
    assert build_plan(toxics, "downstream").latency_s == pytest.approx(0.1)
    assert build_plan([toxics[-1]], "upstream").passthrough  # reset is not a stream toxic


# --------------------------------------------------------------------------- toxicity


def test_toxicity_is_rolled_once_per_connection_and_toxic() -> None:
    dice = ToxicityDice(random.Random(7))
    half = toxic("blackhole", toxicity=0.5)
    first = dice.applies(half)
    assert all(dice.applies(half) == first for _ in range(50))
    assert dice.applies(toxic("blackhole", toxicity=1.0))
    assert not dice.applies(toxic("blackhole", toxicity=0.0))


def test_toxicity_spreads_across_connections() -> None:
    rng = random.Random(1)
    half = toxic("blackhole", toxicity=0.5)
    hits = sum(ToxicityDice(rng).applies(half) for _ in range(1000))
    assert 400 < hits < 600


def test_toxicity_forgets_removed_toxics() -> None:
    dice = ToxicityDice(random.Random(3))
    kept, gone = toxic("blackhole", "kept"), toxic("blackhole", "gone")
    dice.applies(kept), dice.applies(gone)
    dice.retain([kept.uid])
    assert set(dice._rolls) == {kept.uid}


# --------------------------------------------------------------------------- latency


def test_latency_delays_every_chunk() -> None:
    clock = LatencyClock(random.Random(0))
    assert clock.schedule(10.0, 0.2) == pytest.approx(10.2)
    assert clock.schedule(11.0, 0.2) == pytest.approx(11.2)


def test_jitter_never_reorders() -> None:
    clock = LatencyClock(random.Random(42))
    arrivals = [i * 0.001 for i in range(2000)]
    deliveries = [clock.schedule(t, 0.05, 0.04) for t in arrivals]
    assert deliveries == sorted(deliveries)
    assert all(d >= t + 0.01 - 1e-9 for t, d in zip(arrivals, deliveries))


def test_jitter_varies_delay_both_ways_for_spaced_chunks() -> None:
    clock = LatencyClock(random.Random(42))
    delays = [clock.schedule(t, 0.05, 0.04) - t for t in range(200)]  # a second apart
    assert min(delays) < 0.03 and max(delays) > 0.07
    assert all(0.01 - 1e-9 <= d <= 0.09 + 1e-9 for d in delays)


def test_chunks_after_toxic_removal_queue_behind_delayed_ones() -> None:
    clock = LatencyClock(random.Random(0))
    delayed = clock.schedule(0.0, 1.0)
    undelayed = clock.schedule(0.5, 0.0)  # latency removed; an earlier chunk is still queued
    assert undelayed == delayed == 1.0
    assert clock.schedule(2.0, 0.0) == 2.0  # once the queue drained, no delay at all


# --------------------------------------------------------------------------- bandwidth


def test_zero_rate_never_admits() -> None:
    assert Pacer(0).admit(10, 0.0) == (0, math.inf)


def test_pacer_spreads_bytes_at_the_rate() -> None:
    pacer = Pacer(1000.0)  # bytes per second: 50-byte slices
    now, sent, sends = 0.0, 0, 0
    while sent < 1000:
        count, retry = pacer.admit(1000 - sent, now)
        if count:
            sent += count
            sends += 1
            assert count <= 50
        else:
            assert retry > now
        now = retry
    assert now == pytest.approx(1.0)  # 1000 bytes at 1000 B/s
    assert sends == 20


def test_pacer_waits_while_link_busy_and_grants_no_idle_credit() -> None:
    pacer = Pacer(100.0)
    assert pacer.admit(5, 0.0) == (5, pytest.approx(0.05))
    assert pacer.admit(5, 0.01) == (0, pytest.approx(0.05))
    count, free_at = pacer.admit(500, 100.0)  # long idle: still one slice only
    assert count == 5 and free_at == pytest.approx(100.05)
