"""Probes: background observers that write what clients saw to the timeline.

- the write probe appends to the ledger through the cluster endpoint, as fast as it can,
  recording every attempt with its outcome (acknowledged / failed / unknown);
- a read probe per reader (and one on the reader endpoint) reads the highest ledger seq it
  can see, which is how visibility lag is measured;
- the topology probe polls the RDS API for the cluster's status, writer and events;
- the surface probe asks Aurora's SQL (through the cluster endpoint) for the writer and each
  reader's replica lag, as Aurora-aware drivers do; after a failover it may disagree with the API.

Each probe reconnects with short timeouts, like a careful application. Probes never judge:
the checkers in `harness.measure` do that afterwards from the timeline.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from harness.cluster import AuroraCluster
from harness.dialects.base import Credentials, Dialect, Outcome
from harness.timeline import Timeline, to_ranges

log = logging.getLogger("harness.probes")


@dataclass(frozen=True)
class ProbeSettings:
    connect_timeout: float = 1.0
    statement_timeout: float = 2.0
    write_pause: float = 0.0  # between write attempts; 0 = back to back
    read_pause: float = 0.01
    retry_pause: float = 0.005  # after a failed attempt: the probe's blind spot, so keep it short
    topology_interval: float = 0.5
    events_interval: float = 2.0


@dataclass(frozen=True)
class Target:
    """Where a probe connects: a named endpoint."""

    name: str
    host: str
    port: int


class Probe(threading.Thread):
    """A daemon thread that loops until stopped."""

    def __init__(self, name: str, timeline: Timeline, settings: ProbeSettings):
        super().__init__(name=f"probe-{name}", daemon=True)
        self.timeline, self.settings = timeline, settings
        self.halt = threading.Event()

    def stop(self, timeout: float = 10.0) -> None:
        self.halt.set()
        self.join(timeout)


class WriteProbe(Probe):
    """Small INSERTs through the cluster endpoint; every attempt recorded with its outcome."""

    def __init__(self, timeline: Timeline, settings: ProbeSettings, dialect: Dialect, target: Target,
                 credentials: Credentials, run_id: str):
        super().__init__("write", timeline, settings)
        self.dialect, self.target, self.credentials, self.run_id = dialect, target, credentials, run_id
        self.seqs = itertools.count(1)
        self.acknowledged = 0

    def run(self) -> None:
        conn = None
        while not self.halt.is_set():
            seq, start, sent = next(self.seqs), time.monotonic(), False
            try:
                if conn is None:
                    conn = self.dialect.connect(self.target.host, self.target.port, self.credentials,
                                                connect_timeout=self.settings.connect_timeout,
                                                statement_timeout=self.settings.statement_timeout,
                                                application_name="gameday-write-probe")
                sent = True
                server = self.dialect.insert(conn, self.run_id, seq)
            except Exception as error:  # any failure is an observation, never a crash of the probe
                outcome = self.dialect.classify(error, sent)
                self.timeline.record("write", seq=seq, start=start, end=time.monotonic(), outcome=outcome.value,
                                     endpoint=self.target.name, error=self.dialect.describe_error(error))
                conn = _close(conn)
                self.halt.wait(self.settings.retry_pause)
                continue
            self.acknowledged += 1
            self.timeline.record("write", seq=seq, start=start, end=time.monotonic(),
                                 outcome=Outcome.ACKNOWLEDGED.value, endpoint=self.target.name, server=server)
            if self.settings.write_pause:
                self.halt.wait(self.settings.write_pause)
        _close(conn)


class ReadProbe(Probe):
    """Reads the highest visible ledger seq on one endpoint, to measure visibility lag."""

    def __init__(self, timeline: Timeline, settings: ProbeSettings, dialect: Dialect, target: Target,
                 credentials: Credentials, run_id: str):
        super().__init__(f"read-{target.name}", timeline, settings)
        self.dialect, self.target, self.credentials, self.run_id = dialect, target, credentials, run_id

    def run(self) -> None:
        conn, server = None, None
        while not self.halt.is_set():
            start = time.monotonic()
            try:
                if conn is None:
                    conn = self.dialect.connect(self.target.host, self.target.port, self.credentials,
                                                connect_timeout=self.settings.connect_timeout,
                                                statement_timeout=self.settings.statement_timeout,
                                                application_name="gameday-read-probe")
                    server = self.dialect.instance_name(conn)
                max_seq = self.dialect.max_seq(conn, self.run_id)
            except Exception as error:
                self.timeline.record("read", probe=self.target.name, start=start, end=time.monotonic(),
                                     outcome="failed", error=self.dialect.describe_error(error))
                conn = _close(conn)
                self.halt.wait(self.settings.retry_pause)
                continue
            self.timeline.record("read", probe=self.target.name, start=start, end=time.monotonic(), outcome="ok",
                                 max_seq=max_seq, server=server)
            self.halt.wait(self.settings.read_pause)
        _close(conn)


class TopologyProbe(Probe):
    """The cluster as the RDS API reports it: status and writer changes, and RDS events."""

    def __init__(self, timeline: Timeline, settings: ProbeSettings, cluster: AuroraCluster):
        super().__init__("topology", timeline, settings)
        self.cluster = cluster
        self.since = datetime.now(timezone.utc)
        self.seen_events: set[tuple[str, str, str]] = set()

    def run(self) -> None:
        last, next_events = None, 0.0
        while not self.halt.is_set():
            try:
                topology = self.cluster.topology()
                if topology != last:
                    self.timeline.record("topology", **topology)
                    last = topology
                if time.monotonic() >= next_events:
                    self.poll_events()
                    next_events = time.monotonic() + self.settings.events_interval
            except Exception as error:  # an API hiccup is worth noting, not fatal
                self.timeline.record("note", text=f"topology probe: {type(error).__name__}: {error}")
            self.halt.wait(self.settings.topology_interval)
        try:
            self.poll_events()
        except Exception as error:
            self.timeline.record("note", text=f"topology probe: {type(error).__name__}: {error}")

    def poll_events(self) -> None:
        for event in self.cluster.events(self.since):
            key = (event["Date"].isoformat(), event["SourceIdentifier"], event["Message"])
            if key in self.seen_events:
                continue
            self.seen_events.add(key)
            self.timeline.record("event", date=event["Date"].timestamp(), source=event["SourceIdentifier"],
                                 source_type=event["SourceType"], message=event["Message"],
                                 categories=event.get("EventCategories", []))


class SurfaceProbe(Probe):
    """The topology as Aurora's own SQL reports it: `aurora_replica_status()` on PostgreSQL,
    `information_schema.replica_host_status` on MySQL, read through the cluster endpoint."""

    def __init__(self, timeline: Timeline, settings: ProbeSettings, dialect: Dialect, target: Target,
                 credentials: Credentials):
        super().__init__("surface", timeline, settings)
        self.dialect, self.target, self.credentials = dialect, target, credentials

    def run(self) -> None:
        conn, last_error = None, None
        while not self.halt.is_set():
            try:
                if conn is None:
                    conn = self.dialect.connect(self.target.host, self.target.port, self.credentials,
                                                connect_timeout=self.settings.connect_timeout,
                                                statement_timeout=self.settings.statement_timeout,
                                                application_name="gameday-surface-probe")
                rows = self.dialect.replica_status(conn)
                writers = [sid for sid, is_writer, _ in rows if is_writer]
                self.timeline.record("surface", writer=writers[0] if len(writers) == 1 else None,
                                     lag_ms={sid: lag for sid, is_writer, lag in rows if not is_writer})
                last_error = None
            except Exception as error:  # noted once per distinct error: a failover makes several
                described = self.dialect.describe_error(error)
                if described != last_error:
                    self.timeline.record("note", text=f"surface probe: {described}")
                last_error = described
                conn = _close(conn)
            self.halt.wait(self.settings.topology_interval)
        _close(conn)


class ProbeSet:
    """All probes of a scenario, started and stopped together."""

    def __init__(self, probes: list[Probe]):
        self.probes = probes

    @property
    def write_probe(self) -> WriteProbe | None:
        return next((p for p in self.probes if isinstance(p, WriteProbe)), None)

    def start(self) -> ProbeSet:
        for probe in self.probes:
            probe.start()
        return self

    def stop(self) -> None:
        for probe in self.probes:
            probe.halt.set()
        for probe in self.probes:
            probe.join(15)


def record_ledger(timeline: Timeline, dialect: Dialect, target: Target, credentials: Credentials,
                  run_id: str) -> dict[int, int]:
    """The final read after recovery: which seqs the writer holds, and any duplicates."""
    conn = dialect.connect(target.host, target.port, credentials, connect_timeout=5, statement_timeout=60,
                           application_name="gameday-ledger-check")
    try:
        counts = dialect.ledger_counts(conn, run_id)
        server = dialect.instance_name(conn)
    finally:
        conn.close()
    timeline.record("ledger", ranges=to_ranges(counts), duplicates={str(s): c for s, c in counts.items() if c > 1},
                    rows=sum(counts.values()), server=server)
    return counts


def _close(conn: Any) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:
            pass
    return None
