"""Response-time histograms: how the Locust side records latencies and the checkers read them.

A second of load can hold thousands of requests; a histogram of rounded response times keeps it
small enough to ship from a worker to the master every few seconds and to store per second on
the timeline, and histograms add up exactly, so the percentiles of a whole phase come from the
merged histogram (never from averaging per-second percentiles, which is wrong).

Rounding keeps two significant digits (2.37 ms → 2.4, 237 ms → 240): at most 2.5 % off, and
fine enough at the millisecond latencies of a healthy cluster, where Locust's own whole-ms
rounding would blur p50 and p95 together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

Histogram = dict[str, int]  # rounded milliseconds (as JSON keys) → count


def bucket_of(milliseconds: float) -> str:
    """The histogram key of a response time: two significant digits, as a short string."""
    if milliseconds <= 0:
        return "0"
    digits = 1 - math.floor(math.log10(milliseconds))
    return f"{round(milliseconds, digits):g}" if digits > 0 else str(int(round(milliseconds, digits)))


def add(histogram: Histogram, milliseconds: float, count: int = 1) -> None:
    key = bucket_of(milliseconds)
    histogram[key] = histogram.get(key, 0) + count


def merge(histograms: Iterable[Mapping[str, int]]) -> Histogram:
    merged: Histogram = {}
    for histogram in histograms:
        for key, count in histogram.items():
            merged[key] = merged.get(key, 0) + count
    return merged


def percentile(histogram: Mapping[str, int], q: float) -> float | None:
    """Nearest-rank percentile (0 < q <= 1) in milliseconds; None for an empty histogram."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for key, count in sorted(histogram.items(), key=lambda item: float(item[0])):
        seen += count
        if seen >= rank:
            return float(key)
    raise AssertionError("unreachable: ranks never exceed the total")


def maximum(histogram: Mapping[str, int]) -> float | None:
    return max((float(key) for key, count in histogram.items() if count), default=None)
