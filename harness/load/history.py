"""The load's history: its per-second format, and how it joins the scenario timeline.

`Second` is what one wall-clock second of load holds; `harness.load.recorder` (inside Locust)
fills seconds from Locust's request events, merges workers' seconds on the master, and writes
them as JSON lines. `to_records` turns a line into timeline records, a pure function of the
line and a wall→monotonic mapping, so the join is testable with hand-made lines. `HistoryFeed`
tails the file in a thread while the load runs, so the timeline fills as it goes (a killed run
keeps what was joined) and the stop condition can judge the steady state before the fault.

Per second of load, one `load` record (requests, failures, percentiles, the histogram behind
them, counts per request name, the first and last failure); per group of identical failures in
that second, one `load-failure` record with the exact time of its first and last occurrence.
The last second ends when the load stopped, so the last, partial second does not read as a
drop in throughput.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.drivers import PLAIN
from harness.load import histogram
from harness.timeline import Timeline, monotonic_of

Entry = tuple[str, float, float, dict[str, Any]]  # kind, t, m, fields
POLL_S = 0.2


@dataclass
class Second:
    """What happened in one wall-clock second, by requests that ended in it.

    On a master, a second is the sum of what each worker shipped of it (a worker may ship one
    second in several reports): counts and histograms add up; users add up across workers only.
    """

    requests: int = 0
    failures: int = 0
    users: int = 0  # running when the second's requests ended
    response_times: histogram.Histogram = field(default_factory=dict)  # successful requests only
    names: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (type, name) → [requests, failures]
    failure_groups: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)  # → [count, first, last]
    workers: dict[str, int] = field(default_factory=dict)  # on a master: worker → its users in this second

    def observe(self, request_type: str, name: str, response_ms: float, error: str | None, end: float,
                users: int) -> None:
        self.requests += 1
        self.users = max(self.users, users)
        counts = self.names.setdefault((request_type, name), [0, 0])
        counts[0] += 1
        if error is None:
            histogram.add(self.response_times, response_ms)
            return
        self.failures += 1
        counts[1] += 1
        group = self.failure_groups.setdefault((request_type, name, error), [0, end, end])
        group[0] += 1
        group[1], group[2] = min(group[1], end), max(group[2], end)

    def absorb(self, other: dict[str, Any], worker: str) -> None:
        """Add what `worker` shipped of this second."""
        self.requests += other["requests"]
        self.failures += other["failures"]
        self.workers[worker] = max(self.workers.get(worker, 0), other["users"])
        self.users = sum(self.workers.values())
        self.response_times = histogram.merge([self.response_times, other["response_times"]])
        for entry in other["names"]:
            counts = self.names.setdefault((entry["request_type"], entry["name"]), [0, 0])
            counts[0] += entry["requests"]
            counts[1] += entry["failures"]
        for entry in other["failure_groups"]:
            key = (entry["request_type"], entry["name"], entry["error"])
            group = self.failure_groups.setdefault(key, [0, entry["first"], entry["last"]])
            group[0] += entry["occurrences"]
            group[1], group[2] = min(group[1], entry["first"]), max(group[2], entry["last"])

    def as_dict(self, second: int) -> dict[str, Any]:
        return {
            "second": second, "requests": self.requests, "failures": self.failures, "users": self.users,
            "workers": len(self.workers), "response_times": self.response_times,
            "names": [{"request_type": t, "name": n, "requests": r, "failures": f}
                      for (t, n), (r, f) in sorted(self.names.items())],
            "failure_groups": [{"request_type": t, "name": n, "error": e, "occurrences": int(c), "first": first,
                                "last": last} for (t, n, e), (c, first, last) in sorted(self.failure_groups.items())],
        }


def to_records(line: dict[str, Any], load: str, to_monotonic: Callable[[float], float] = monotonic_of,
               driver: str = PLAIN) -> list[Entry]:
    """The timeline records of one history line (none for a line that only says how far it got);
    each `load` record names the driver its users ran on."""
    entries: list[Entry] = []
    stopped = to_monotonic(line["stopped"]) if line.get("stopped") else float("inf")
    for second in line["seconds"]:
        start = to_monotonic(second["second"])
        groups, times = second["failure_groups"], second["response_times"]
        entries.append(("load", float(second["second"]), start, {
            "load": load, "driver": driver, "start": start, "end": max(start, min(start + 1.0, stopped)),
            "users": second["users"],
            "workers": second["workers"],
            "requests": second["requests"], "failures": second["failures"], "rps": float(second["requests"]),
            "p50_ms": histogram.percentile(times, 0.50), "p95_ms": histogram.percentile(times, 0.95),
            "p99_ms": histogram.percentile(times, 0.99), "max_ms": histogram.maximum(times),
            "response_times": times, "names": second["names"],
            "first_failure": to_monotonic(min(g["first"] for g in groups)) if groups else None,
            "last_failure": to_monotonic(max(g["last"] for g in groups)) if groups else None,
        }))
        for group in groups:
            first = to_monotonic(group["first"])
            entries.append(("load-failure", float(group["first"]), first, {
                "load": load, "second": start, "request_type": group["request_type"], "name": group["name"],
                "error": group["error"], "occurrences": group["occurrences"], "first": first,
                "last": to_monotonic(group["last"]),
            }))
    return entries


class HistoryFeed(threading.Thread):
    """Tails one load's history file into the timeline; knows how far the history is complete."""

    def __init__(self, path: Path, timeline: Timeline, load: str, driver: str = PLAIN):
        super().__init__(name=f"load-feed-{load}", daemon=True)
        self.path, self.timeline, self.load, self.driver = Path(path), timeline, load, driver
        self.until = 0.0  # wall time up to which every request is on the timeline
        self.users = 0
        self.requests = 0
        self.failures = 0
        self.final = False
        self._halt = threading.Event()
        self._offset = 0
        self._partial = b""

    def run(self) -> None:
        while not self._halt.is_set():
            self.read()
            self._halt.wait(POLL_S)

    def read(self) -> None:
        """Join every complete line written since the last read."""
        try:
            with open(self.path, "rb") as file:
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for raw in lines:
            line = json.loads(raw)
            for kind, t, m, fields in to_records(line, self.load, driver=self.driver):
                self.timeline.record_at(kind, t, m, **fields)
            self.requests += sum(s["requests"] for s in line["seconds"])
            self.failures += sum(s["failures"] for s in line["seconds"])
            self.users, self.until = line["users"], line["until"]
            self.final = self.final or bool(line.get("final"))

    def stop(self) -> None:
        """Stop tailing and join what is left (call once the Locust processes have exited)."""
        self._halt.set()
        self.join(10)
        self.read()

    def wait(self, condition: Callable[[HistoryFeed], bool], timeout: float, alive: Callable[[], bool]) -> bool:
        """Poll until `condition(self)`; False on timeout or when `alive()` turns false first."""
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline or not alive():
                return condition(self)
            time.sleep(POLL_S / 2)
        return True
