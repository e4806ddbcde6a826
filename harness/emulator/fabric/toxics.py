"""The toxic model of the network fabric: validation and the pure timing logic.

Toxics follow Toxiproxy's shape (``name``, ``type``, ``stream``, ``toxicity``,
``attributes``).  Everything here is free of sockets and event loops so the
rules (ordering under latency, bandwidth pacing, per-connection toxicity) can
be unit-tested with a fake clock; ``server.py`` only applies the results.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

UPSTREAM = "upstream"  # client -> server bytes
DOWNSTREAM = "downstream"  # server -> client bytes
STREAMS = (UPSTREAM, DOWNSTREAM, "both")

# type -> {attribute: default}; a default of None means the attribute is required.
TOXIC_ATTRIBUTES: dict[str, dict[str, float | None]] = {
    "latency": {"latency_ms": None, "jitter_ms": 0.0},
    "blackhole": {},
    "reset": {"timeout_ms": 0.0},
    "bandwidth": {"rate_kbps": None},
    # Holds (buffers, never drops) the stream for `percent`% of every `period_ms`: a link that
    # stops passing traffic part of the time, and catches up when it passes again.
    "stall": {"percent": 100.0, "period_ms": 1000.0},
    # Delays `percent`% of chunks by a random time in [min_ms, max_ms] (order is kept).
    "congestion": {"min_ms": None, "max_ms": None, "percent": 100.0},
}

# Bandwidth is paced in slices of this many seconds' worth of bytes, so a large
# chunk trickles out smoothly instead of in one burst followed by a long pause.
PACE_SLICE_S = 0.05
MAX_SLICE_BYTES = 64 * 1024

_uids = itertools.count(1)


@dataclass(frozen=True)
class Toxic:
    """A validated toxic.  ``uid`` tells apart a toxic re-added under the same name."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: Mapping[str, float]
    uid: int = field(default_factory=lambda: next(_uids), compare=False)
    # When the toxic was made (time.monotonic()): a stall's duty cycle starts here.
    epoch: float = field(default_factory=time.monotonic, compare=False)

    def applies_to(self, direction: str) -> bool:
        """True if the toxic acts on ``direction`` ("upstream" or "downstream")."""
        return self.stream in (direction, "both")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }


def _number(value: object, what: str, *, lo: float = 0.0, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not (lo <= number <= hi) or math.isnan(number):
        raise ValueError(f"{what} must be between {lo:g} and {hi:g}, got {value!r}")
    return number


def parse_toxic(raw: object) -> Toxic:
    """Validate a toxic from JSON; raises ValueError saying exactly what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError("toxic must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("toxic needs a non-empty string 'name'")
    kind = raw.get("type")
    if kind not in TOXIC_ATTRIBUTES:
        known = ", ".join(TOXIC_ATTRIBUTES)
        raise ValueError(f"unknown toxic type {kind!r} (known: {known})")
    unknown_keys = set(raw) - {"name", "type", "stream", "toxicity", "attributes"}
    if unknown_keys:
        raise ValueError(f"unknown toxic field(s): {', '.join(sorted(unknown_keys))}")
    stream = raw.get("stream", "both")
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {', '.join(STREAMS)}, got {stream!r}")
    toxicity = _number(raw.get("toxicity", 1.0), "toxicity", hi=1.0)
    given = raw.get("attributes") or {}
    if not isinstance(given, dict):
        raise ValueError("attributes must be an object")
    spec = TOXIC_ATTRIBUTES[kind]
    extra = set(given) - set(spec)
    if extra:
        expected = ", ".join(spec) or "none"
        raise ValueError(
            f"unknown attribute(s) {', '.join(sorted(extra))} for {kind} toxic (expected: {expected})"
        )
    attributes: dict[str, float] = {}
    for key, default in spec.items():
        if key not in given:
            if default is None:
                raise ValueError(f"{kind} toxic needs attribute {key!r}")
            attributes[key] = default
        else:
            attributes[key] = _number(given[key], f"{kind}.{key}")
    _check_relations(kind, attributes)
    return Toxic(name=name, type=kind, stream=stream, toxicity=toxicity, attributes=attributes)


def _check_relations(kind: str, attributes: Mapping[str, float]) -> None:
    """Rules that span one attribute's range or several attributes."""
    if "percent" in attributes and attributes["percent"] > 100:
        raise ValueError(f"{kind}.percent must be between 0 and 100, got {attributes['percent']:g}")
    if kind == "stall" and attributes["period_ms"] <= 0:
        raise ValueError(f"stall.period_ms must be greater than 0, got {attributes['period_ms']:g}")
    if kind == "congestion" and attributes["max_ms"] < attributes["min_ms"]:
        raise ValueError(f"congestion.max_ms ({attributes['max_ms']:g}) must not be less than "
                         f"congestion.min_ms ({attributes['min_ms']:g})")


def stall_phase(toxic: Toxic, now: float) -> tuple[bool, float]:
    """Is a stall toxic holding its stream at `now`, and when does that next change?

    The duty cycle starts at the toxic's epoch: held for the first `percent`% of each period,
    passing for the rest. 0% never holds and 100% always does (the change time is then inf).
    """
    share = toxic.attributes["percent"] / 100.0
    if share >= 1.0:
        return True, math.inf
    if share <= 0.0:
        return False, math.inf
    period = toxic.attributes["period_ms"] / 1000.0
    position = (now - toxic.epoch) % period
    held_for = share * period
    if position < held_for:
        return True, now + (held_for - position)
    return False, now + (period - position)


def next_change(toxics: Iterable[Toxic], now: float) -> float:
    """The earliest time a stall toxic among `toxics` flips (inf if none ever does)."""
    return min((stall_phase(t, now)[1] for t in toxics if t.type == "stall"), default=math.inf)


@dataclass(frozen=True)
class DirectionPlan:
    """What the active toxics do to one direction of one connection.

    ``passthrough`` is precomputed because the forwarding hot path checks it
    for every chunk.
    """

    blackhole: bool = False
    latency_s: float = 0.0
    jitter_s: float = 0.0
    rate_bytes: float | None = None  # bytes per second; None = unthrottled, 0 = blocked
    stalled: bool = False  # held: chunks wait (in order) until a plan without the stall
    spike_share: float = 0.0  # congestion: the share of chunks delayed ...
    spike_min_s: float = 0.0  # ... by a random time in [spike_min_s, spike_max_s]
    spike_max_s: float = 0.0
    passthrough: bool = field(init=False, default=True)

    def __post_init__(self) -> None:
        idle = (
            not self.blackhole
            and self.latency_s == 0
            and self.jitter_s == 0
            and self.rate_bytes is None
            and not self.stalled
            and self.spike_share == 0
        )
        object.__setattr__(self, "passthrough", idle)

    def extra_delay(self, rng: random.Random) -> float:
        """Congestion's delay for one chunk: 0 for the chunks it spares."""
        if self.spike_share <= 0 or (self.spike_share < 1.0 and rng.random() >= self.spike_share):
            return 0.0
        return rng.uniform(self.spike_min_s, self.spike_max_s)


PASSTHROUGH = DirectionPlan()


def kbps_to_bytes(rate_kbps: float) -> float:
    """``rate_kbps`` is kilobits per second (network convention): 1 kbps = 125 B/s."""
    return rate_kbps * 1000.0 / 8.0


def build_plan(toxics: Iterable[Toxic], direction: str, now: float | None = None) -> DirectionPlan:
    """Fold the toxics that apply to one connection into a plan for ``direction``.

    Latencies add up (as with chained Toxiproxy toxics); the slowest bandwidth
    wins; any blackhole swallows the direction; a stall in its holding phase
    (at ``now``, default the current monotonic time) holds it; of several
    congestions the strongest share and the widest band win.  ``reset`` is per
    connection, not per direction, so it does not appear here.
    """
    blackhole = stalled = False
    latency = jitter = 0.0
    rate: float | None = None
    share = spike_min = spike_max = 0.0
    when = time.monotonic() if now is None else now
    for toxic in toxics:
        if not toxic.applies_to(direction):
            continue
        attrs = toxic.attributes
        if toxic.type == "blackhole":
            blackhole = True
        elif toxic.type == "latency":
            latency += attrs["latency_ms"] / 1000.0
            jitter += attrs["jitter_ms"] / 1000.0
        elif toxic.type == "bandwidth":
            candidate = kbps_to_bytes(attrs["rate_kbps"])
            rate = candidate if rate is None else min(rate, candidate)
        elif toxic.type == "stall":
            stalled = stalled or stall_phase(toxic, when)[0]
        elif toxic.type == "congestion" and attrs["percent"] > 0:
            share = max(share, attrs["percent"] / 100.0)
            spike_min = max(spike_min, attrs["min_ms"] / 1000.0)
            spike_max = max(spike_max, attrs["max_ms"] / 1000.0)
    if not (blackhole or latency or jitter or rate is not None or stalled or share):
        return PASSTHROUGH
    return DirectionPlan(blackhole=blackhole, latency_s=latency, jitter_s=jitter, rate_bytes=rate,
                         stalled=stalled, spike_share=share, spike_min_s=spike_min, spike_max_s=spike_max)


class ToxicityDice:
    """Decides once per (connection, toxic) whether a toxic applies, like Toxiproxy.

    The roll is remembered so a connection does not flip in and out of a
    toxic every time the toxic set changes.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._rolls: dict[int, bool] = {}

    def applies(self, toxic: Toxic) -> bool:
        roll = self._rolls.get(toxic.uid)
        if roll is None:
            roll = toxic.toxicity >= 1.0 or self._rng.random() < toxic.toxicity
            self._rolls[toxic.uid] = roll
        return roll

    def retain(self, uids: Iterable[int]) -> None:
        """Forget rolls for toxics that no longer exist."""
        keep = set(uids)
        for uid in [uid for uid in self._rolls if uid not in keep]:
            del self._rolls[uid]


class LatencyClock:
    """Delivery times for delayed chunks that never reorder them.

    delivery = max(previous delivery, arrival + latency ± jitter): jitter can
    shorten one chunk's delay but never lets it overtake an earlier chunk.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._last = -math.inf

    def schedule(self, arrival: float, latency_s: float, jitter_s: float = 0.0) -> float:
        delay = latency_s
        if jitter_s:
            delay += self._rng.uniform(-jitter_s, jitter_s)
        delivery = max(self._last, arrival + max(0.0, delay))
        self._last = delivery
        return delivery


class Pacer:
    """Bandwidth pacing on a virtual "link busy until" clock.

    ``admit`` says how many bytes may go out now and when to try again.  Idle
    time earns no credit (no burst after a quiet period).
    """

    def __init__(self, rate_bytes: float) -> None:
        self.rate_bytes = rate_bytes
        self._free_at = -math.inf

    def admit(self, nbytes: int, now: float) -> tuple[int, float]:
        """Return (bytes to send now, earliest time for the next send)."""
        if self.rate_bytes <= 0:
            return 0, math.inf
        if now < self._free_at:
            return 0, self._free_at
        slice_bytes = int(self.rate_bytes * PACE_SLICE_S)
        count = min(nbytes, max(1, min(slice_bytes, MAX_SLICE_BYTES)))
        self._free_at = now + count / self.rate_bytes
        return count, self._free_at
